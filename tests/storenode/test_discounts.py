"""Manual discounts and the money of refunds, at the lane alone (real SQLite journal, autojump clock):
discounts and price overrides with their limits and approvals, VAT after discounts, refunds that pay
back what a line really cost, and cash paid back over partial refunds never beyond the cash taken."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from trio.testing import MockClock

from protocol.discounting import net_amounts
from protocol.frames import (
    CancelSale,
    CashTender,
    Command,
    Error,
    GiveDiscount,
    Login,
    OverridePrice,
    Receipt,
    RecordDiscount,
    RecordLine,
    RefundOf,
    ReturnItem,
    SaleState,
    Scan,
)
from tests.kit.journal import journal
from tests.kit.lanes import LaneRig, open_lane
from tests.kit.nodes import start_store
from tests.kit.waits import until
from till.client import connect

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
        assert isinstance(await rig.do(RefundOf(receipt=receipt)), SaleState)
        shown = await rig.do(ReturnItem(code=PASTA))
        assert isinstance(shown, SaleState) and shown.due == -2450
        assert shown.cash_due == -2400  # the till shows what the drawer will pay, not -25.00
        second = await rig.do(CashTender(amount=0))
        assert isinstance(second, Receipt), second
        assert first.total + second.total == -4900
        paid_back = first.change + second.change
        assert paid_back == 4900, (first.change, second.change)
        assert second.change == 2400 and second.cash_due == -2400  # the last refund takes the remainder
        journal = await rig.journal()
        drawer = sum(sum(t.sale_value for t in r.tenders if t.kind == "cash") - r.change for r in journal)
        assert drawer == 0
        refused = await rig.do(RefundOf(receipt=receipt))
        assert isinstance(refused, Error) and refused.code == "all_returned"


MILK, BUTTER, COFFEE, SOAP = "7310000000010", "7310000000027", "7310000000034", "7310000000119"


async def refused(rig: LaneRig, command: Command, code: str) -> Error:
    """Refused with `code`, and the sale as it was."""
    before = rig.till.state
    answer = await rig.do(command)
    assert isinstance(answer, Error) and answer.code == code, answer
    after = rig.till.state
    assert before is not None and after is not None
    assert (after.lines, after.discounts, after.total, after.vat) == (
        before.lines,
        before.discounts,
        before.total,
        before.vat,
    )
    return answer


async def test_discounts_within_the_cashiers_limit_and_beyond_it_with_a_supervisor(rig: LaneRig) -> None:
    with trio.fail_after(BOUND):
        assert isinstance(await rig.do(Login(operator="1", pin="1234")), SaleState)
        await rig.do(Scan(code=COFFEE))  # 69.95, VAT 12 %
        state = await rig.do(Scan(code=SOAP))  # 29.95, VAT 25 %
        assert isinstance(state, SaleState) and state.total == 9990
        # Refusals: each with a clear error, the sale as it was.
        await refused(rig, GiveDiscount(line=1, percent=500, reason="NOPE"), "bad_reason")
        await refused(rig, GiveDiscount(line=1, reason="DAMAGED"), "bad_discount")
        await refused(rig, GiveDiscount(line=1, percent=500, amount=100, reason="DAMAGED"), "bad_discount")
        await refused(rig, GiveDiscount(line=1, amount=6996, reason="DAMAGED"), "bad_discount")
        await refused(rig, GiveDiscount(line=3, percent=500, reason="DAMAGED"), "no_such_line")
        await refused(rig, GiveDiscount(line=1, percent=1500, reason="DAMAGED"), "approval_needed")
        await refused(
            rig,
            GiveDiscount(line=1, percent=1500, reason="DAMAGED", approver="1", approver_pin="1234"),
            "approval_needed",
        )
        await refused(rig, OverridePrice(line=2, price=1000, reason="PRICEMATCH"), "approval_needed")
        assert isinstance(
            await rig.do(GiveDiscount(line=1, percent=1000, reason="DAMAGED")), SaleState
        )  # 7.00 off (6.995)
        # a second 10 % on the same line is 19 % of it from the cashier: beyond the limit
        await refused(rig, GiveDiscount(line=1, percent=1000, reason="DAMAGED"), "approval_needed")
        state = await rig.do(GiveDiscount(percent=2000, reason="GOODWILL", approver="2", approver_pin="4321"))
        assert isinstance(state, SaleState), state
        # coffee 69.95 - 7.00 = 62.95; soap 29.95; sale 92.90, 20 % = 18.58 spread 62.95:29.95
        assert [(d.line, d.kind, d.amount, d.approver) for d in state.discounts] == [
            (1, "percent", 700, ""),
            (0, "percent", 1858, "2"),
        ]
        assert state.total == 9990 - 700 - 1858
        share_coffee = 1858 * 6295 // 9290 + (1 if 1858 * 6295 % 9290 > 1858 * 2995 % 9290 else 0)
        gross = {v.rate: v.gross for v in state.vat}
        assert gross == {1200: 6295 - share_coffee, 2500: 2995 - (1858 - share_coffee)}
        assert sum(gross.values()) == state.total
        sold = await rig.do(CashTender(amount=10000))
        assert isinstance(sold, Receipt) and sold.total == 7432
        assert "Discount 10% (DAMAGED)" in sold.text and "Discount 20% (GOODWILL)" in sold.text
        assert "-7.00" in sold.text and "-18.58" in sold.text
        record = (await rig.journal())[-1]
        assert [(d.line, d.kind, d.value, d.amount, d.reason, d.approver) for d in record.discounts] == [
            (1, "percent", 1000, 700, "DAMAGED", ""),
            (0, "percent", 2000, 1858, "GOODWILL", "2"),
        ]
        assert [(a.action, a.approver) for a in record.approvals] == [("discount", "2")]
        assert record.total == 7432 and sum(v.gross for v in record.vat) == 7432


async def test_a_price_override_needs_approval_and_refunds_pay_back_what_a_line_cost(rig: LaneRig) -> None:
    with trio.fail_after(BOUND):
        assert isinstance(await rig.do(Login(operator="1", pin="1234")), SaleState)
        await rig.do(Scan(code=MILK, qty=3))  # 3 x 15.90 = 47.70
        await rig.do(Scan(code=BUTTER))  # 54.90
        state = await rig.do(OverridePrice(line=2, price=4990, reason="PRICEMATCH", approver="2", approver_pin="4321"))
        assert isinstance(state, SaleState) and state.total == 4770 + 4990
        assert [(d.kind, d.value, d.amount) for d in state.discounts] == [("price", 4990, 500)]
        await refused(
            rig,
            OverridePrice(line=2, price=4000, reason="PRICEMATCH", approver="2", approver_pin="4321"),
            "already_overridden",
        )
        state = await rig.do(GiveDiscount(amount=900, reason="GOODWILL"))  # 9.00 of 97.60: within 10 %
        assert isinstance(state, SaleState) and state.total == 8860, state
        sold = await rig.do(CashTender(amount=8900))
        assert isinstance(sold, Receipt)
        receipt = f"S001-1-{sold.receipt_no}"
        record = (await rig.journal())[-1]
        # The 9.00 spread 47.70 : 49.90 by largest remainder (4.3986 and 4.6014: 4.40 and 4.60)
        milk_net = 4770 - 440
        # Refund the milk one at a time: the parts add up to exactly what the line cost after discounts.
        parts = []
        for _ in range(3):
            back = await refund_one(rig, receipt, MILK)
            parts.append(back.total)
        assert sum(parts) == -milk_net
        back = await refund_one(rig, receipt, BUTTER)
        assert sum(parts) + back.total == -record.total
        journal = await rig.journal()
        drawer = sum(sum(t.sale_value for t in r.tenders if t.kind == "cash") - r.change for r in journal)
        assert drawer == 0  # every krona taken went back, and not one more


async def test_no_discount_on_a_refund_or_once_money_was_taken(rig: LaneRig) -> None:
    with trio.fail_after(BOUND):
        assert isinstance(await rig.do(Login(operator="1", pin="1234")), SaleState)
        sold = await cash_sale(rig, COFFEE, tendered=7000)
        await rig.do(RefundOf(receipt=f"S001-1-{sold.receipt_no}"))
        await rig.do(ReturnItem(code=COFFEE))
        answer = await refused(rig, GiveDiscount(percent=500, reason="GOODWILL"), "refund_discount")
        assert "refunds receipt" in answer.message
        assert isinstance(await rig.do(CancelSale(approver="2", approver_pin="4321")), SaleState | Receipt)
        await rig.do(Scan(code=COFFEE))
        await rig.do(Scan(code=MILK))
        state = await rig.do(CashTender(amount=2000, part=True))
        assert isinstance(state, SaleState) and state.paid == 2000, state
        answer = await refused(rig, GiveDiscount(percent=500, reason="GOODWILL"), "payment_started")
        assert "money was already taken" in answer.message


async def test_the_last_part_of_a_discounted_line_takes_what_is_left_whatever_the_order(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    """Three milk at 15.90 less 0.01 cost 47.69: parts of 15.89 or 15.90 as they go back, and the last takes
    what is left, even after a refund opened on another lane (and counted meanwhile) was cancelled."""
    store = await start_store(tmp_path, nursery)
    with trio.fail_after(40):
        async with connect(store.url, lane=1, till="T1") as one, connect(store.url, lane=2, till="T2") as two:
            await one.request(Login(operator="1", pin="1234"))
            await two.request(Login(operator="2", pin="4321"))
            await one.request(Scan(code=MILK, qty=3))
            state = await one.request(GiveDiscount(amount=1, reason="GOODWILL"))
            assert isinstance(state, SaleState) and state.total == 4769, state
            sold = await one.request(CashTender(amount=4800))
            assert isinstance(sold, Receipt)
            receipt = f"S001-1-{sold.receipt_no}"
            await until(one, lambda s: s.status == "ready")

            await one.request(RefundOf(receipt=receipt))
            first = await one.request(ReturnItem(code=MILK))
            assert isinstance(first, SaleState) and first.total == -1589
            await two.request(RefundOf(receipt=receipt))
            second = await two.request(ReturnItem(code=MILK))
            assert isinstance(second, SaleState) and second.total == -1590
            assert isinstance(await two.request(CashTender(amount=0)), Receipt)
            await until(two, lambda s: s.status == "ready")
            cancelled = await one.request(CancelSale(approver="2", approver_pin="4321"))
            assert not isinstance(cancelled, Error), cancelled
            await until(one, lambda s: s.status == "ready")

            for _ in range(2):
                await two.request(RefundOf(receipt=receipt))
                assert isinstance(await two.request(ReturnItem(code=MILK)), SaleState)
                back = await two.request(CashTender(amount=0))
                assert isinstance(back, Receipt), back
                await until(two, lambda s: s.status == "ready")
    refunds = [r for r in journal(store) if r.refund_of == receipt and r.kind == "sale"]
    assert [r.total for r in refunds] == [-1590, -1590, -1589]
    assert sum(r.total for r in refunds) == -4769
    drawer = sum(sum(t.sale_value for t in r.tenders if t.kind == "cash") - r.change for r in journal(store))
    assert drawer == 0


def test_a_price_set_by_hand_is_in_the_terms_of_the_lines_unit_price() -> None:
    """Per kg for a line weighed at the lane, per label for a price label (whatever grams it stands for),
    per piece otherwise."""

    def line(qty: int, unit_price: int, amount: int, weight_g: int = 0) -> RecordLine:
        return RecordLine(1, "i", "c", "x", qty, unit_price, amount, 1200, False, weight_g=weight_g)

    override = [RecordDiscount(line=1, kind="price", value=2000, amount=0, reason="R")]
    weighed = line(1, 2495, 1248, weight_g=500)  # 0.500 kg at 24.95/kg
    label = line(1, 1500, 1500, weight_g=612)  # a scale's label: 15.00 for 612 g
    pieces = line(3, 1590, 4770)
    assert net_amounts([weighed], override)[0] == {1: 1000}
    assert net_amounts([label], override)[0] == {1: 2000}
    assert net_amounts([pieces], override)[0] == {1: 6000}
