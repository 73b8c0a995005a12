"""Manual discounts and the money of refunds, at the lane alone (real SQLite journal, autojump clock):
discounts and price overrides with their limits and approvals, VAT after discounts, refunds that pay
back what a line really cost, and cash paid back over partial refunds never beyond the cash taken."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from trio.testing import MockClock

from protocol.frames import CashTender, Error, Login, Receipt, RefundOf, ReturnItem, SaleState, Scan
from tests.kit.lanes import LaneRig, open_lane

BOUND = 120  # virtual seconds
PASTA = "7310000000096"  # 24.50, VAT 12 %


@pytest.fixture
async def rig(tmp_path: Path, nursery: trio.Nursery, autojump_clock: MockClock) -> AsyncIterator[LaneRig]:
    with trio.fail_after(BOUND):
        rig = await open_lane(tmp_path, nursery, autojump_clock)
    yield rig


async def cash_sale(rig: LaneRig, *codes: str, tendered: int) -> Receipt:
    for code in codes:
        assert isinstance(await rig.do(Scan(code=code)), SaleState)
    receipt = await rig.do(CashTender(amount=tendered))
    assert isinstance(receipt, Receipt), receipt
    return receipt


async def refund_one(rig: LaneRig, receipt: str, code: str) -> Receipt:
    assert isinstance(await rig.do(RefundOf(receipt=receipt)), SaleState)
    assert isinstance(await rig.do(ReturnItem(code=code)), SaleState)
    back = await rig.do(CashTender(amount=0))
    assert isinstance(back, Receipt), back
    return back


@pytest.mark.parametrize("one_line", [False, True])
async def test_partial_cash_refunds_never_pay_back_more_cash_than_was_taken(rig: LaneRig, one_line: bool) -> None:
    """The issue's bug: two items at 24.50 paid 49.00 in cash, refunded one at a time: each -24.50 rounded
    to -25.00, so 50.00 went back. The last refund takes the remainder."""
    with trio.fail_after(BOUND):
        assert isinstance(await rig.do(Login(operator="1", pin="1234")), SaleState)
        if one_line:
            assert isinstance(await rig.do(Scan(code=PASTA, qty=2)), SaleState)
            sold = await rig.do(CashTender(amount=4900))
            assert isinstance(sold, Receipt)
        else:
            sold = await cash_sale(rig, PASTA, PASTA, tendered=4900)
        assert sold.total == 4900 and sold.change == 0
        receipt = f"S001-1-{sold.receipt_no}"
        first = await refund_one(rig, receipt, PASTA)
        second = await refund_one(rig, receipt, PASTA)
        assert first.total + second.total == -4900
        paid_back = first.change + second.change
        assert paid_back == 4900, (first.change, second.change)
        assert second.change == 2400 and second.cash_due == -2400  # the last refund takes the remainder
        journal = await rig.journal()
        drawer = sum(sum(t.sale_value for t in r.tenders if t.kind == "cash") - r.change for r in journal)
        assert drawer == 0
        refused = await rig.do(RefundOf(receipt=receipt))
        assert isinstance(refused, Error) and refused.code == "all_returned"
