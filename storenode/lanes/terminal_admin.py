"""A lane's card terminal beyond single payments: a supervisor setting aside a payment the terminal cannot
settle, and the terminal's end of day.

Setting aside is the one way out of a card payment in doubt that the terminal itself does not decide. It is
deliberate (a supervisor's number and PIN, and a reason), it asks the terminal one last time first (so
nothing it can still settle is set aside), and it is journaled with the sale as what it is: an attempt whose
outcome is unknown, to be checked on the terminal's own journal. It is never recorded as paid; the sale
stays open for another tender.

End of day can take as long as the acquirer needs, longer than a till waits for an answer, so the lane runs
it beside itself like a card call and the report goes to the till that asked when it is in (a
`TerminalReport` with the command's ref).

As in storenode.lanes.payments, these are decisions the lane applies (storenode.lanes.effects) and questions
to the terminal; the lane checks the supervisor's PIN and carries out the rest.
"""

from __future__ import annotations

import logging

import msgspec
import trio

from devices.terminal import PaymentResult, PaymentTerminal, Report
from protocol.frames import Error, RecordPayment, SetAside, TerminalReport, TerminalTotal
from protocol.money import format_money
from runtime.mailbox import Rejected
from storenode.lanes import basket, payments
from storenode.lanes.basket import READY, LaneState
from storenode.lanes.effects import Effect, Publish, Save, SetAsideAtTerminal, StartEndOfDay

log = logging.getLogger(__name__)

SET_ASIDE = "set aside, outcome unknown: check the terminal's journal"


# -- set aside ------------------------------------------------------------------------------------------


def aside_reason(state: LaneState, command: SetAside, money_running: bool) -> str:
    """Why the payment in doubt is set aside, after refusing a request that cannot set one aside; checked
    before the supervisor's PIN, the terminal or the state is touched."""
    payments.card_in_doubt(state, money_running)
    reason = command.reason.strip()
    if not reason:
        raise Rejected("bad_request", "say why the payment in doubt is set aside")
    return reason


async def ask_once_more(terminal: PaymentTerminal | None, pending: RecordPayment, lane: int) -> PaymentResult | None:
    """The attempt settled by the terminal's last transaction, or None when the terminal still cannot say."""
    if terminal is None:
        return None
    terminal.adopt_unknown(payments.result_of(pending))
    try:
        with trio.fail_after(payments.TERMINAL_QUESTION):
            last = await terminal.last_transaction()
    except (Rejected, trio.TooSlowError) as exc:
        log.warning("lane %d: terminal %s cannot settle %s: %s", lane, terminal.name, pending.reference, exc)
        return None
    if last is None or last.reference != pending.reference or not last.settled:
        return None
    return last


def set_aside(state: LaneState, command: SetAside, reason: str, currency: str) -> list[Effect]:
    """The terminal could not settle the payment in doubt: the supervisor's decision ends the attempt as
    unknown, journaled with the sale, which stays open for another tender."""
    pending = state.pending
    assert pending is not None
    decision = f"{reason} (supervisor {command.operator})"
    entry = msgspec.structs.replace(pending, outcome="unknown", message=f"{SET_ASIDE}; {decision}")
    after = basket.end_payment(state, entry, cancelling=False)
    log.error("lane %d: card %s %s %s: %s", state.lane, pending.kind, pending.reference, SET_ASIDE, decision)
    amount = format_money(pending.amount, currency)
    message = f"card {pending.kind} {amount} {SET_ASIDE}; take another tender"
    return [SetAsideAtTerminal(decision), Save(after, ref=command.ref, message=message, durable=True)]


# -- end of day -----------------------------------------------------------------------------------------


def end_of_day(state: LaneState, terminal: str | None, money_running: bool, ref: int) -> list[Effect]:
    """Start the end of day of the lane's terminal (named `terminal`; None: the lane has none)."""
    basket.require_operator(state)
    if state.status != READY:
        raise Rejected("sale_open", "finish the sale before the terminal's end of day")
    name = payments.terminal_of(terminal, state.lane)
    if money_running:
        raise Rejected("terminal_busy", f"terminal {name} is busy")
    return [StartEndOfDay(ref), Publish(f"end of day running at terminal {name}")]


async def run_end_of_day(terminal: PaymentTerminal, lane: int, seconds: float, ref: int) -> TerminalReport | Error:
    """Runs beside the lane: the terminal's report, or why there is none (not done within `seconds`), for
    the till that asked (`ref`)."""
    try:
        with trio.fail_after(seconds):
            return _report(lane, terminal.name, await terminal.end_of_day(), ref)
    except Rejected as refusal:
        return Error(code=refusal.code, message=refusal.message, ref=ref)
    except trio.TooSlowError:
        message = f"terminal {terminal.name} did not finish its end of day; print its last receipt to see"
        return Error(code="terminal_timeout", message=message, ref=ref)


def _report(lane: int, name: str, report: Report, ref: int) -> TerminalReport:
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
        ref=ref,
    )


def end_of_day_message(frame: TerminalReport | Error, currency: str) -> str:
    """What the tills show beside the basket once the end of day is over."""
    if isinstance(frame, Error):
        return f"end of day failed: {frame.message}"
    outcome = "done" if frame.ok else f"failed: {frame.message}"
    return f"end of day {outcome}: {frame.count} card payments, {format_money(frame.total, currency)}"
