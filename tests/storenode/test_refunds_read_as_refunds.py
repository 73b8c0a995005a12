"""A refund reads as a refund at the till: "to refund SEK 16.00" and "paid back", never "to pay SEK -15.90"
and "change 16.00" (issue 14). The lane alone on the autojump clock, and the terminal till's own lines."""

from __future__ import annotations

from pathlib import Path

import trio
from trio.testing import MockClock

from protocol.frames import CashTender, Login, Receipt, RefundOf, ReturnItem, SaleState, Scan, TenderLine, Total
from tests.kit.lanes import open_lane
from tests.kit.payments import MILK
from till.terminal import show, show_state

BOUND = 120


async def test_a_refund_says_to_refund_and_paid_back(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    with trio.fail_after(BOUND):
        rig = await open_lane(tmp_path, nursery, autojump_clock)
        await rig.do(Login(operator="1", pin="1234"))
        await rig.do(Scan(code=MILK))
        sold = await rig.do(CashTender(amount=2000))
        assert isinstance(sold, Receipt)
        await rig.do(RefundOf(receipt=f"S001-1-{sold.receipt_no}"))
        await rig.do(ReturnItem(code=MILK))
        totalled = await rig.do(Total())
        assert isinstance(totalled, SaleState)
        assert totalled.message == "to refund SEK 16.00"  # was "to pay SEK -16.00"
        shown = show_state(totalled)
        assert "TO REFUND SEK 15.90   in cash 16.00" in shown and "-15.90" not in shown.splitlines()[-1]
        paid_back = await rig.do(CashTender(amount=0))
        assert isinstance(paid_back, Receipt) and paid_back.change == 1600
        assert show(paid_back).endswith("-- receipt 2 done, paid back SEK 16.00")
        assert "change" not in show(paid_back).splitlines()[-1]
        after = rig.till.state
        assert after is not None and after.message == "paid back SEK 16.00"  # was "change 16.00"
        assert "Cash paid back                       16.00" in paid_back.text.splitlines()


async def test_a_sale_still_says_to_pay_and_change(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    with trio.fail_after(BOUND):
        rig = await open_lane(tmp_path, nursery, autojump_clock)
        await rig.do(Login(operator="1", pin="1234"))
        await rig.do(Scan(code=MILK))
        totalled = await rig.do(Total())
        assert isinstance(totalled, SaleState) and totalled.message == "to pay SEK 16.00"
        assert "TOTAL SEK 15.90   cash 16.00" in show_state(totalled)
        sold = await rig.do(CashTender(amount=2000))
        assert isinstance(sold, Receipt) and show(sold).endswith("-- receipt 1 done, change 4.00")
        assert rig.till.state is not None and rig.till.state.message == "change 4.00"


def test_a_refund_part_paid_back_reads_as_paid_back_and_left_to_refund() -> None:
    state = SaleState(
        lane=1,
        status="tender",
        currency="SEK",
        operator="1",
        total=-8585,
        cash_due=-5200,
        paid=-3410,
        due=-5175,
        tenders=[TenderLine(kind="card", amount=-3410, currency="SEK", value=-3410)],
        refund_of="S001-1-1",
    )
    head = show_state(state).splitlines()[0]
    assert "paid back 34.10 (card 34.10), to refund 51.75" in head and "due" not in head
