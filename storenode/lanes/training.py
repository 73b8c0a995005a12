"""Training mode (issue 14, Deliver 7): a lane where a new cashier practises on the real till, and nothing
they do counts.

Switching it on needs a supervisor (a trainee's sales must not be mistaken for real ones, nor real sales
made in training); switching it off does not (leaving training only makes things real again, which the
supervisor wants). Neither while a sale is open: a sale is wholly training or wholly real. Each switch is
journaled as a `training_on`/`training_off` event in the same transaction as the lane's new mode, so a
`kill -9` leaves the lane and the journal agreeing.

While on, every sale is journaled with `training` set and is marked TRAINING / ÖVNING on the till and
on the printed receipt. A training sale moves no stock (storenode.lanes.closing), is not counted in
central's sales figures (central.registers.sales) and moves no real money: only cash is taken, because
the drawer is the trainee's own to count back; card, gift card and invoice are refused rather than
simulated, since each of them would move money outside the store (a terminal's batch, central's gift
card balances, a customer's invoice) where a training mark cannot follow. Stock moves and counts are
refused too: the stock is real. A training receipt is refunded
only in training, and a real receipt only outside it: the refund's record must be of the same kind as
the sale it pays back, or a training refund would use up a real receipt's balance (or real cash would
go back for a training sale).
"""

from __future__ import annotations

import sqlite3

import msgspec

from protocol.frames import (
    CardTender,
    Command,
    GiftCardTender,
    InvoiceTender,
    RecordApproval,
    RecordEvent,
    SaleRecord,
    StockCount,
    StockMove,
)
from runtime.mailbox import Rejected
from storenode.journal.chain import Signer
from storenode.lanes import approval, basket
from storenode.lanes.basket import OPEN, PAYING, TENDER, LaneState
from storenode.lanes.events import journal_event
from storenode.lanes.saved import save_state

_NOT_REAL = {CardTender: "card", GiftCardTender: "gift card", InvoiceTender: "invoice"}
_STOCK = (StockMove, StockCount)


def switched(state: LaneState, on: bool) -> LaneState:
    """The lane with its training mode switched, or the refusal."""
    basket.require_operator(state)
    if state.status in (OPEN, TENDER, PAYING):
        raise Rejected("sale_open", f"finish, park or cancel sale {state.sale_id} before switching training mode")
    if state.training == on:
        raise Rejected("training_already", f"lane {state.lane} is {'already' if on else 'not'} in training mode")
    return msgspec.structs.replace(state, training=on)


def needed(lane: int, on: bool) -> approval.Needed | None:
    """Switching training on is a supervisor's; switching it off is anyone's."""
    if not on:
        return None
    return approval.Needed(
        "training",
        f"switching lane {lane} into training mode",
        "sales made in training are not real sales",
        f"lane {lane}",
    )


def record(
    conn: sqlite3.Connection,
    new: LaneState,
    given: RecordApproval | None,
    *,
    store: str,
    currency: str,
    at: int,
    signer: Signer,
) -> None:
    """Journal the switch and save the lane's new mode, in the caller's transaction. The event itself is
    a real one (training=False): that the lane went into training is a fact the store's day must show."""
    code = "training_on" if new.training else "training_off"
    event = RecordEvent(code=code, approver=given.approver if given else "", detail=f"lane {new.lane}")
    journal_event(
        conn, event, store=store, lane=new.lane, operator=new.operator, currency=currency, at=at, signer=signer
    )
    save_state(conn, new)


def check_real(state: LaneState, command: Command) -> None:
    """In training only cash is taken (see the module for why card, gift card and invoice are refused),
    and no stock is moved or counted: the store's stock is real whoever stands at the till."""
    if not state.training:
        return
    if isinstance(command, _STOCK):
        raise Rejected(
            "training_stock", f"lane {state.lane} is in training mode: stock is not moved or counted in training"
        )
    kind = _NOT_REAL.get(type(command))
    if kind is not None:
        raise Rejected(
            "training_tender",
            f"lane {state.lane} is in training mode: no {kind} payment, only cash; "
            "leave training mode to take real payments",
        )


def check_refund(state: LaneState, original: SaleRecord) -> None:
    """A refund is of the same kind (training or real) as the sale it pays back."""
    if original.training and not state.training:
        raise Rejected("training_receipt", "that receipt is a training sale: it cannot be refunded as a real sale")
    if state.training and not original.training:
        raise Rejected(
            "training_mode", f"lane {state.lane} is in training mode: a real receipt is refunded outside training"
        )
