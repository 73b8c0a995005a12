"""The terminal administration's decisions as plain functions (setting a card payment in doubt aside, the
terminal's end of day): state in, effects out, no store node or terminal. The flows end to end are in
test_terminal_admin.py."""

from __future__ import annotations

from typing import Any

import pytest

from protocol.frames import CardTender, Error, SetAside, TerminalReport
from runtime.mailbox import Rejected
from storenode.lanes import basket, payments, terminal_admin
from storenode.lanes.basket import PAYING, READY, TENDER, Item, LaneState
from storenode.lanes.effects import Publish, Save, SetAsideAtTerminal, StartEndOfDay
from storenode.lanes.payments import TerminalNow

SEK = "SEK"
COFFEE = Item(item="COFF", name="Coffee", price=6995, vat_rate=2500)
ASIDE = SetAside(operator="9", pin="1234", reason="terminal replaced", ref=4)


def rejected(code: str) -> Any:
    return pytest.raises(Rejected, match=f"^{code}: ")


def ready() -> LaneState:
    return LaneState(lane=3, status=READY, operator="7")


def in_doubt() -> LaneState:
    """A sale whose card payment's outcome is unknown (its terminal went away mid-call)."""
    state = basket.to_total(basket.add_line(basket.open_sale(ready(), "sale-1", 0), COFFEE, COFFEE.item, 1))
    pending = payments.card(state, CardTender(), SEK, TerminalNow(in_doubt=False, baseline="000041"), {})
    save = payments.start_card(state, pending, 0, SEK)[0]
    assert isinstance(save, Save)
    return save.state


def test_setting_aside_needs_a_card_in_doubt_the_terminal_is_not_being_asked_about_and_a_reason() -> None:
    assert (
        terminal_admin.aside_reason(in_doubt(), SetAside(operator="9", pin="1", reason=" broken "), False) == "broken"
    )
    with rejected("bad_request"):
        terminal_admin.aside_reason(in_doubt(), SetAside(operator="9", pin="1", reason="  "), False)
    with rejected("payment_in_progress"):
        terminal_admin.aside_reason(in_doubt(), ASIDE, True)
    with rejected("nothing_unresolved"):
        terminal_admin.aside_reason(ready(), ASIDE, False)


def test_a_payment_set_aside_is_journaled_unknown_never_paid_and_the_sale_stays_open() -> None:
    state = in_doubt()
    assert state.status == PAYING
    release, save = terminal_admin.set_aside(state, ASIDE, "terminal replaced", SEK)
    assert release == SetAsideAtTerminal("terminal replaced (supervisor 9)")
    assert isinstance(save, Save) and save.durable and save.ref == 4
    after = save.state
    assert (after.status, after.pending, after.tenders, after.cancelling) == (TENDER, None, [], False)
    [entry] = after.payments
    assert entry.outcome == "unknown"
    assert entry.message == f"{terminal_admin.SET_ASIDE}; terminal replaced (supervisor 9)"
    assert save.message == f"card payment 69.95 {terminal_admin.SET_ASIDE}; take another tender"


def test_the_end_of_day_runs_beside_the_lane_between_sales_only() -> None:
    assert terminal_admin.end_of_day(ready(), "T1", False, 8) == [
        StartEndOfDay(8),
        Publish("end of day running at terminal T1"),
    ]
    with rejected("not_logged_in"):
        terminal_admin.end_of_day(LaneState(lane=3), "T1", False, 8)
    with rejected("sale_open"):
        terminal_admin.end_of_day(in_doubt(), "T1", False, 8)
    with rejected("no_terminal"):
        terminal_admin.end_of_day(ready(), None, False, 8)
    with rejected("terminal_busy"):
        terminal_admin.end_of_day(ready(), "T1", True, 8)


def test_the_end_of_day_outcome_is_said_beside_the_basket() -> None:
    report = TerminalReport(lane=3, terminal="T1", ok=True, currency=SEK, total=123450, count=7)
    assert terminal_admin.end_of_day_message(report, SEK) == "end of day done: 7 card payments, 1234.50"
    failed = TerminalReport(lane=3, terminal="T1", ok=False, currency=SEK, total=0, count=0, message="host down")
    assert terminal_admin.end_of_day_message(failed, SEK) == "end of day failed: host down: 0 card payments, 0.00"
    error = Error(code="terminal_timeout", message="no answer")
    assert terminal_admin.end_of_day_message(error, SEK) == "end of day failed: no answer"
