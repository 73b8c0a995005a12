"""Supervisor approval (issue 13 item 5): what a cashier may not do alone is refused as `approval_needed`
naming what and why, refused again with a cashier's number and PIN as approver, and done with a
supervisor's (or a manager's), who is journaled with it. On the fast lane rig (a real SQLite journal)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from trio.testing import MockClock

from protocol.frames import (
    CancelSale,
    CashTender,
    Command,
    EndOfDay,
    Error,
    Login,
    Receipt,
    RecordApproval,
    ReturnItem,
    SaleState,
    Scan,
    StockCount,
    StockInfo,
    StockMove,
    TerminalReport,
    TillFrame,
    Total,
    VoidLine,
)
from protocol.gs1 import check_digit
from storenode import operators
from storenode.lanes.lane import Do
from tests.kit.lanes import LaneRig, open_lane
from tests.kit.payments import COFFEE, MILK

BOUND = 120  # virtual seconds
CASHIER = {"approver": "1", "approver_pin": "1234"}  # operator 1 is a cashier in the demo catalogue
MANAGER = {"approver": "2", "approver_pin": "4321"}  # operator 2, Sam Manager


def label(key: str, cents: int) -> str:
    """A price-embedded GS1 label: the 7-digit key, the price in minor units, the check digit."""
    body = f"{key}{cents:05d}"
    return body + check_digit(body)


@pytest.fixture
async def rig(tmp_path: Path, nursery: trio.Nursery, autojump_clock: MockClock) -> AsyncIterator[LaneRig]:
    with trio.fail_after(BOUND):
        rig = await open_lane(tmp_path, nursery, autojump_clock)
        assert isinstance(await rig.do(Login(operator="1", pin="1234")), SaleState)
    yield rig


def with_approver(command: Command, **approver: str) -> Command:
    for name, value in approver.items():
        setattr(command, name, value)
    return command


async def refused_then_done(rig: LaneRig, make: type[Command] | object, words: str) -> TillFrame:
    """The command refused without approval (naming `words`), refused with a cashier as approver, and
    answered with the manager's approval."""
    build = make if callable(make) else None
    assert build is not None
    alone = await rig.do(build())
    assert isinstance(alone, Error) and alone.code == "approval_needed", alone
    assert words in alone.message and "supervisor" in alone.message, alone.message
    cashier = await rig.do(with_approver(build(), **CASHIER))
    assert isinstance(cashier, Error) and cashier.code == "approval_needed", cashier
    assert "operator 1 is a cashier" in cashier.message
    done = await rig.do(with_approver(build(), **MANAGER))
    assert not isinstance(done, Error), done
    return done


async def test_voiding_after_total_needs_a_supervisor_who_is_journaled(rig: LaneRig) -> None:
    with trio.fail_after(BOUND):
        for code in (MILK, COFFEE):
            await rig.do(Scan(code=code))
        assert isinstance(await rig.do(VoidLine(line=1)), SaleState)  # before total: the cashier's own
        await rig.do(Scan(code=MILK))  # a line of its own: never onto the voided one
        await rig.do(Total())
        done = await refused_then_done(rig, lambda: VoidLine(line=2), "voiding line 2")
        assert isinstance(done, SaleState) and [line.voided for line in done.lines] == [True, True, False]
        assert isinstance(await rig.do(CashTender(amount=2000)), Receipt)
        [record] = await rig.journal()
        assert record.approvals == [RecordApproval(action="void", approver="2", detail="line 2")]


async def test_cancelling_a_sale_with_lines_needs_a_supervisor(rig: LaneRig) -> None:
    with trio.fail_after(BOUND):
        await rig.do(Scan(code=MILK))
        done = await refused_then_done(rig, CancelSale, "cancelling sale")
        assert isinstance(done, Receipt)
        [record] = await rig.journal()
        assert record.kind == "cancel" and [(a.action, a.approver) for a in record.approvals] == [("cancel", "2")]
        # an empty sale is cancelled alone: nothing to lose
        assert isinstance(await rig.do(Scan(code=MILK)), SaleState)
        assert isinstance(await rig.do(VoidLine(line=1)), SaleState)
        assert isinstance(await rig.do(CancelSale()), Error)  # a line, voided or not, is on the receipt


async def test_the_terminals_end_of_day_needs_a_supervisor(rig: LaneRig) -> None:
    with trio.fail_after(BOUND):
        alone = await rig.do(EndOfDay())
        assert isinstance(alone, Error) and alone.code == "approval_needed" and "end of day" in alone.message
        cashier = await rig.do(EndOfDay(**CASHIER))
        assert isinstance(cashier, Error) and cashier.code == "approval_needed", cashier
        with rig.work.held():  # the approver's PIN is hashed in a thread; the report comes back later
            await rig.lane.mailbox.ask(Do(EndOfDay(**MANAGER, ref=99), rig.till))
        await rig.till.until(lambda s: s.message.startswith("end of day") and "running" not in s.message)
        assert any(isinstance(f, TerminalReport) for f in rig.till.frames)
        kept = await rig.db.read(operators.approvals)
        assert [(lane, op, approver, action) for _, lane, op, approver, action, _ in kept] == [
            (1, "1", "2", "endofday")
        ]


async def test_a_receiptless_return_above_the_stores_amount_needs_a_supervisor(rig: LaneRig) -> None:
    """The attack: 9,999 items returned without a receipt, then `cash 0`, paid out 1,289,871.00 alone."""
    with trio.fail_after(BOUND):
        assert isinstance(await rig.do(ReturnItem(code=MILK)), SaleState)  # 15.90: under 100.00, alone
        big = await rig.do(ReturnItem(code=COFFEE, qty=9999))
        assert isinstance(big, Error) and big.code == "approval_needed" and "without a receipt" in big.message
        # split into small returns, the sum still counts
        assert isinstance(await rig.do(ReturnItem(code=COFFEE)), SaleState)  # 15.90 + 69.95
        again = await rig.do(ReturnItem(code=MILK))  # 101.75 in all
        assert isinstance(again, Error) and again.code == "approval_needed", again
        assert isinstance(await rig.do(Total()), SaleState)
        paid = await rig.do(CashTender(amount=0))
        assert isinstance(paid, Receipt) and paid.total == -(1590 + 6995)
        done = await refused_then_done(rig, lambda: ReturnItem(code=COFFEE, qty=2), "without a receipt")
        assert isinstance(done, SaleState)
        records = await rig.journal()
        assert records[0].approvals == [] and records[0].total == -8585


async def test_a_price_label_outside_the_items_range_needs_a_supervisor(rig: LaneRig) -> None:
    """Bananas are 24.95 a kilo: a label of up to 10 kg (249.50) sells alone, 999.99 does not."""
    with trio.fail_after(BOUND):
        assert isinstance(await rig.do(Scan(code=label("2100005", 4990))), SaleState)
        done = await refused_then_done(rig, lambda: Scan(code=label("2100005", 99999)), "from its label")
        assert isinstance(done, SaleState) and done.lines[-1].amount == 99999
        assert isinstance(await rig.do(CashTender(amount=200_000)), Receipt)
        [record] = await rig.journal()
        assert [(a.action, a.approver) for a in record.approvals] == [("label", "2")]


async def test_a_price_label_returned_without_a_receipt_always_needs_a_supervisor(rig: LaneRig) -> None:
    """The attack: a label sold at 0.01 and refunded at 999.99 without a receipt. A return of any price
    label without its receipt is a supervisor's (even 0.50, under the store's amount)."""
    with trio.fail_after(BOUND):
        small = await rig.do(ReturnItem(code=label("2100005", 50)))
        assert isinstance(small, Error) and small.code == "approval_needed" and "price label" in small.message
        done = await refused_then_done(rig, lambda: ReturnItem(code=label("2100005", 99999)), "price label")
        assert isinstance(done, SaleState) and done.lines[-1].amount == -99999


async def test_stock_moves_and_counts_beyond_the_threshold_need_a_supervisor(rig: LaneRig) -> None:
    """Any till moved stock by up to a million; now more than 100 needs a supervisor."""
    with trio.fail_after(BOUND):
        small = await rig.do(StockMove(code=COFFEE, qty=100, reason="receipt"))
        assert isinstance(small, StockInfo) and small.here == 100
        done = await refused_then_done(rig, lambda: StockMove(code=COFFEE, qty=-1_000_000, reason="adjust"), "stock")
        assert isinstance(done, StockInfo) and done.here == 100 - 1_000_000
        count = await rig.do(StockCount(code=COFFEE, counted=0))  # a change of +999,900
        assert isinstance(count, Error) and count.code == "approval_needed", count
        kept = await rig.db.read(operators.approvals)
        assert [(approver, action) for _, _, _, approver, action, _ in kept] == [("2", "stock")]


async def test_a_supervisor_logged_in_approves_their_own_actions(rig: LaneRig) -> None:
    with trio.fail_after(BOUND):
        assert isinstance(await rig.do(Login(operator="2", pin="4321")), SaleState)
        await rig.do(Scan(code=MILK))
        assert isinstance(await rig.do(CancelSale()), Receipt)
        [record] = await rig.journal()
        assert record.approvals == [RecordApproval(action="cancel", approver="2", detail="1 lines")]


async def test_a_wrong_approver_pin_is_refused_and_counts_towards_the_lockout(rig: LaneRig) -> None:
    with trio.fail_after(BOUND):
        await rig.do(Scan(code=MILK))
        wrong = await rig.do(CancelSale(approver="2", approver_pin="9999"))
        assert isinstance(wrong, Error) and wrong.code == "wrong_pin"
        assert await rig.db.read(lambda c: operators.failures(c, "2")) == 1
        assert isinstance(rig.till.state, SaleState) and rig.till.state.lines  # the sale is as it was
