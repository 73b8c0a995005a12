"""What a lane's decisions ask the lane to do, as plain data.

Payments, refunds to tenders and the terminal's administration are decided by plain functions of the lane's
state and what was read or heard (storenode.lanes.payments, storenode.lanes.terminal_admin); they answer with
a list of these effects and the lane (storenode.lanes.lane) carries them out, in order, in one place. So the
lane is the only owner of its state, its database row, its tills and its devices, and a decision can be
checked without a store node: its answer is data to compare.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.frames import GiftCardMove, RecordPayment, RecordTender
from storenode.lanes.basket import LaneState


@dataclass(frozen=True)
class Save:
    """Persist the lane's next state, then adopt it and show it to the tills with `message` (unless `quiet`)."""

    state: LaneState
    ref: int = 0
    message: str = ""
    durable: bool = False  # money is about to move, or just moved: synchronous=FULL before anything else
    checked: bool = False  # a refund of a receipt: refunds.check in the same job refuses an over-refund
    moves: tuple[GiftCardMove, ...] = ()  # gift card moves queued for central in the same commit
    quiet: bool = False  # shown later, or never: the till hears central's answer or a refusal instead


@dataclass(frozen=True)
class Close:
    """Journal the sale ("sale") or the cancelled sale ("cancel"), queue it for central, clear the lane (one
    durable commit, storenode.lanes.closing), then hand out the receipt."""

    state: LaneState
    kind: str
    ref: int
    tendered: int = 0  # cash handed over, in the store's currency
    cash: RecordTender | None = None  # foreign cash closing the sale
    moves: tuple[GiftCardMove, ...] = ()  # gift card moves (voids, offline ones) queued in the same commit


@dataclass(frozen=True)
class StartCard:
    """Send an attempt already saved as pending to the lane's terminal, beside the lane; its outcome comes
    back through the mailbox and is settled (payments.settle)."""

    pending: RecordPayment


@dataclass(frozen=True)
class ContinueCancel:
    """A cancel undoes one card payment at a time: after a reversal, the same cancel takes its next step."""

    ref: int


@dataclass(frozen=True)
class Publish:
    """Show the tills the lane as it is, with a message."""

    message: str
    ref: int = 0


@dataclass(frozen=True)
class Refuse:
    """Answer the till with this refusal once the effects before it are done (a declined gift card is
    recorded with the sale first)."""

    code: str
    message: str


@dataclass(frozen=True)
class SetAsideAtTerminal:
    """The terminal stops holding its attempt of unknown outcome, if it holds one (a supervisor set it aside)."""

    reason: str


@dataclass(frozen=True)
class StartEndOfDay:
    """Run the terminal's end of day beside the lane; its report goes to the till that asked (`ref`)."""

    ref: int


Effect = Save | Close | StartCard | ContinueCancel | Publish | Refuse | SetAsideAtTerminal | StartEndOfDay
