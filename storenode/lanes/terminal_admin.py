"""A lane's card terminal beyond single payments: a supervisor setting aside a payment the terminal cannot
settle, and the terminal's end of day.

Setting aside is the one way out of a card payment in doubt that the terminal itself does not decide. It is
deliberate (a supervisor's number and PIN, and a reason), it asks the terminal one last time first (so
nothing it can still settle is set aside), and it is journaled with the sale as what it is: an attempt whose
outcome is unknown, to be checked on the terminal's own journal. It is never recorded as paid; the sale
stays open for another tender.

End of day can take as long as the acquirer needs, longer than a till waits for an answer, so it runs beside
the lane like a card call and the report goes to the till that asked when it is in (a `TerminalReport` with
the command's ref).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec
import trio

from devices.terminal import PaymentResult, PaymentTerminal, Report
from protocol.frames import Error, SetAside, TerminalReport, TerminalTotal
from runtime.mailbox import Rejected
from storenode.lanes import basket, payments
from storenode.lanes.basket import READY
from storenode.lanes.saved import save_state

if TYPE_CHECKING:
    from storenode.lanes.lane import Lane, Subscriber

log = logging.getLogger(__name__)

SET_ASIDE = "set aside, outcome unknown: check the terminal's journal"


@dataclass
class TerminalDone:
    """The end of day ran beside the lane: its report (or why there is none) for the till that asked."""

    ref: int
    conn: Subscriber | None
    report: TerminalReport | None = None
    error: Error | None = None


# -- set aside ------------------------------------------------------------------------------------------


async def set_aside(lane: Lane, command: SetAside) -> None:
    state = lane.state
    pending = payments.card_in_doubt(lane)
    reason = command.reason.strip()
    if not reason:
        raise Rejected("bad_request", "say why the payment in doubt is set aside")
    await lane.check_pin(command.operator, command.pin)  # before the terminal or the state is touched
    terminal = lane.devices.terminal
    last = await _ask_once_more(lane, terminal, pending.reference)
    if last is not None:  # the terminal knew after all: settled as any answer of it
        await payments.settle(lane, last, ref=command.ref)
        return
    decision = f"{reason} (supervisor {command.operator})"
    if terminal is not None and terminal.unresolved is not None:
        terminal.abandon_unknown(decision)
    entry = msgspec.structs.replace(pending, outcome="unknown", message=f"{SET_ASIDE}; {decision}")
    after = basket.end_payment(state, entry, cancelling=False)
    await lane.ctx.db.write(lambda c: save_state(c, after), durable=True)
    lane.state = after
    log.error("lane %d: card %s %s %s: %s", lane.number, pending.kind, pending.reference, SET_ASIDE, decision)
    lane._publish(
        ref=command.ref, message=f"card {pending.kind} {lane._money(pending.amount)} {SET_ASIDE}; take another tender"
    )


async def _ask_once_more(lane: Lane, terminal: PaymentTerminal | None, reference: str) -> PaymentResult | None:
    """The attempt settled by the terminal's last transaction, or None when the terminal still cannot say."""
    if terminal is None:
        return None
    terminal.adopt_unknown(payments.result_of(lane.state.pending))  # type: ignore[arg-type]
    try:
        with trio.fail_after(payments.TERMINAL_QUESTION):
            last = await terminal.last_transaction()
    except (Rejected, trio.TooSlowError) as exc:
        log.warning("lane %d: terminal %s cannot settle %s: %s", lane.number, terminal.name, reference, exc)
        return None
    if last is None or last.reference != reference or not last.settled:
        return None
    return last


# -- end of day -----------------------------------------------------------------------------------------


async def end_of_day(lane: Lane, ref: int, conn: Subscriber | None) -> None:
    state = lane.state
    basket.require_operator(state)
    if state.status != READY:
        raise Rejected("sale_open", "finish the sale before the terminal's end of day")
    terminal = payments.lane_terminal(lane)
    if lane.money_running:
        raise Rejected("terminal_busy", f"terminal {terminal.name} is busy")
    lane.start_money(_run_end_of_day, terminal, ref, conn)
    lane._publish(message=f"end of day running at terminal {terminal.name}")


async def _run_end_of_day(lane: Lane, terminal: PaymentTerminal, ref: int, conn: Subscriber | None) -> None:
    done = TerminalDone(ref=ref, conn=conn)
    try:
        with trio.fail_after(lane.devices.payment_timeout):
            done.report = _report(lane.number, terminal.name, await terminal.end_of_day())
    except Rejected as refusal:
        done.error = Error(code=refusal.code, message=refusal.message, ref=ref)
    except trio.TooSlowError:
        message = f"terminal {terminal.name} did not finish its end of day; print its last receipt to see"
        done.error = Error(code="terminal_timeout", message=message, ref=ref)
    await lane.mailbox.tell(done)


def _report(lane: int, name: str, report: Report) -> TerminalReport:
    return TerminalReport(
        lane=lane,
        terminal=name,
        ok=report.ok,
        currency=report.currency,
        total=report.total,
        count=report.count,
        totals=[TerminalTotal(card=t.card, count=t.count, amount=t.amount) for t in report.totals if t.count],
        terminal_id=report.terminal_id,
        trace=report.terminal_txn,
        message=report.message,
        text="\n".join(report.print_lines),
    )


def report(lane: Lane, done: TerminalDone) -> None:
    """Hand the end of day to the till that asked (every till, if it is gone) and say it beside the basket."""
    frame = done.report or done.error
    assert frame is not None
    frame.ref = done.ref
    if done.conn is not None and done.conn in lane.subscribers:
        done.conn.push(frame)
    else:
        lane._broadcast(frame)
    if done.report is not None:
        r = done.report
        outcome = "done" if r.ok else f"failed: {r.message}"
        lane._publish(message=f"end of day {outcome}: {r.count} card payments, {lane._money(r.total)}")
    else:
        lane._publish(message=f"end of day failed: {frame.message}")
