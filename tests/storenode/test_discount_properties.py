"""Must hold for money (issue 14), by property: for any sale with discounts and any sequence of partial refunds,
the VAT per rate and the tenders add up to the total, and no tender ever pays back more than it took.

Two levels. The pricing rule alone (protocol.discounting with basket's totals, VAT and journal record), on
thousands of drawn sales in milliseconds. Then whole sales on a real lane (its SQLite journal, the fake card
terminal, the autojump clock): a drawn basket, drawn discounts (approved, so the cashier's limit never stops
one), paid by card and cash, refunded in a drawn order one part at a time, every journal record checked.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec
import trio
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from trio.testing import MockClock

from protocol.discounting import net_amounts, spread
from protocol.frames import (
    CardTender,
    CashTender,
    GiveDiscount,
    Login,
    OverridePrice,
    Receipt,
    RecordDiscount,
    RecordLine,
    RefundOf,
    ReturnItem,
    SaleRecord,
    SaleState,
    Scan,
)
from protocol.money import cash_round, vat_of
from storenode.lanes import basket
from storenode.lanes.basket import OPEN, LaneState
from tests.kit.lanes import LaneRig, open_lane

RATES = (600, 1200, 2500)


@st.composite
def sales(draw: st.DrawFn) -> LaneState:
    """A sale in progress: sold lines (some voided, some returned) and discounts of every kind."""
    count = draw(st.integers(1, 8))
    lines = []
    for no in range(1, count + 1):
        qty = draw(st.integers(1, 5)) * (-1 if draw(st.integers(0, 9)) == 0 else 1)
        price = draw(st.integers(0, 200_000))
        lines.append(
            RecordLine(
                no=no,
                item=str(no),
                code=str(no),
                name="x",
                qty=qty,
                unit_price=price,
                amount=price * qty,
                vat_rate=draw(st.sampled_from(RATES)),
                voided=draw(st.integers(0, 9)) == 0,
            )
        )
    given = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["percent", "amount", "price"]))
        line = draw(st.integers(1, count)) if kind == "price" else draw(st.integers(0, count))
        value = draw(st.integers(1, 10_000)) if kind == "percent" else draw(st.integers(0, 300_000))
        given.append(RecordDiscount(line=line, kind=kind, value=value, amount=0, reason="R"))
    return LaneState(lane=1, status=OPEN, operator="1", sale_id="s", lines=lines, discounts=given)


@settings(max_examples=2000, deadline=None, derandomize=True, database=None)
@given(sales(), st.sampled_from(["SEK", "DKK", "EUR"]))
def test_a_discounted_sale_adds_up(state: LaneState, currency: str) -> None:
    net, priced = net_amounts(state.lines, state.discounts)
    total = basket.total(state)
    assert total == sum(net.values())
    vat = basket.vat_breakdown(state)
    assert sum(v.gross for v in vat) == total  # VAT per rate adds up to the total
    assert all(v.vat == vat_of(v.gross, v.rate) for v in vat)
    live = {line.no: line for line in state.lines if not line.voided}
    assert all(amount >= 0 for no, amount in net.items() if live[no].amount >= 0)  # never below zero
    assert sum(line.amount for line in live.values()) - sum(d.amount for d in priced) == total
    if total > 0:
        record = basket.record(
            state, store="S001", receipt_no=1, kind="sale", currency=currency, closed_at=1, tendered=total + 1000
        )
        taken = sum(t.sale_value for t in record.tenders) - record.change
        assert taken == record.total + record.rounding == cash_round(total, currency)
        assert record.discounts == priced and sum(v.gross for v in record.vat) == record.total


@settings(max_examples=2000, deadline=None, derandomize=True, database=None)
@given(st.integers(0, 10**9), st.dictionaries(st.integers(1, 50), st.integers(0, 10**7), min_size=1, max_size=12))
def test_the_sale_discount_spread_adds_up_exactly_and_takes_no_line_below_zero(
    amount: int, weights: dict[int, int]
) -> None:
    amount = min(amount, sum(weights.values()))
    parts = spread(amount, weights)
    assert sum(parts.values()) == amount
    assert all(0 <= parts[no] <= weights[no] for no in weights)


# -- whole sales at a lane ------------------------------------------------------------------------------

CODES = {  # the demo catalogue: price, VAT rate
    "7310000000010": 1590,
    "7310000000027": 5490,
    "7310000000034": 6995,
    "7310000000096": 2450,
    "7310000000119": 2995,
    "7310000000171": 3500,
    "7310000000195": 2250,
}
LANE_EXAMPLES = int(os.environ.get("MONEY_EXAMPLES", "20"))  # more for a soak: MONEY_EXAMPLES=500


@st.composite
def days(draw: st.DrawFn) -> tuple[list[str], list[GiveDiscount | OverridePrice], int, list[list[str]]]:
    """A basket, its discounts, what of it is paid by card, and the refunds: the returns of each."""
    codes = draw(st.lists(st.sampled_from(sorted(CODES)), min_size=1, max_size=5))
    given: list[GiveDiscount | OverridePrice] = []
    for _ in range(draw(st.integers(0, 3))):
        line = draw(st.integers(0, len(codes)))
        how = draw(st.sampled_from(["percent", "amount", "price"]))
        if how == "price" and line:
            given.append(OverridePrice(line=line, price=draw(st.integers(0, 9000)), reason="DAMAGED"))
        elif how == "percent":
            given.append(GiveDiscount(line=line, percent=draw(st.integers(1, 10_000)), reason="GOODWILL"))
        else:
            given.append(GiveDiscount(line=line, amount=draw(st.integers(1, 3000)), reason="STAFF"))
    card_part = draw(st.sampled_from([0, 0, 1, 50, 100]))  # percent of the total paid by card first
    order = draw(st.permutations(list(codes)))
    cuts = draw(st.lists(st.integers(1, len(order)), max_size=3))
    refunds, start = [], 0
    for cut in [*sorted(set(cuts)), len(order)]:
        if order[start:cut]:
            refunds.append(list(order[start:cut]))
        start = cut
    return codes, given, card_part, refunds


def on_lane(body: Callable[[LaneRig], Awaitable[None]]) -> None:
    clock = MockClock(autojump_threshold=0)

    async def main() -> None:
        with tempfile.TemporaryDirectory() as folder:
            async with trio.open_nursery() as nursery:
                with trio.fail_after(300):
                    rig = await open_lane(Path(folder), nursery, clock)
                    await body(rig)
                clock.autojump_threshold = math.inf  # the database thread's shutdown is real work
                nursery.cancel_scope.cancel()

    trio.run(main, clock=clock)


async def card(rig: LaneRig, amount: int = 0) -> SaleState:
    answer = await rig.do(CardTender(amount=amount))
    assert isinstance(answer, SaleState) and answer.status == "paying", answer
    return await rig.till.until(lambda s: s.status != "paying")


def drawer(record: SaleRecord) -> int:
    return sum(t.sale_value for t in record.tenders if t.kind == "cash") - record.change


def by_card(record: SaleRecord) -> int:
    return sum(t.sale_value for t in record.tenders if t.kind == "card")


def adds_up(record: SaleRecord) -> None:
    assert sum(v.gross for v in record.vat) == record.total
    assert all(v.vat == vat_of(v.gross, v.rate) for v in record.vat)
    assert sum(t.sale_value for t in record.tenders) - record.change == record.total + record.rounding


@settings(
    max_examples=LANE_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # a lane per example: no shrinking
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(days())
def test_any_discounted_sale_refunded_in_parts_never_pays_back_more_than_each_tender_took(
    day: tuple[list[str], list[GiveDiscount | OverridePrice], int, list[list[str]]],
) -> None:
    codes, given, card_part, refunds = day

    async def body(rig: LaneRig) -> None:
        assert isinstance(await rig.do(Login(operator="1", pin="1234")), SaleState)
        for code in codes:
            assert isinstance(await rig.do(Scan(code=code)), SaleState)
        for command in given:  # approved: the limit is tested elsewhere; a bound may still refuse it
            await rig.do(msgspec.structs.replace(command, approver="2", approver_pin="4321"))
        state = rig.till.state
        assert state is not None
        if state.total > 0 and card_part:
            state = await card(rig, max(1, state.total * card_part // 100))
        if state.status != "ready":
            sold = await rig.do(CashTender(amount=max(state.cash_due, 0)))
            assert isinstance(sold, Receipt), sold
        sale = (await rig.journal())[-1]
        adds_up(sale)
        receipt = f"S001-1-{sale.receipt_no}"
        for returns in refunds:
            opened = await rig.do(RefundOf(receipt=receipt))
            if not isinstance(opened, SaleState):  # a sale of nothing (all discounted away) may be all gone
                break
            for code in returns:
                assert isinstance(await rig.do(ReturnItem(code=code)), SaleState)
            state = rig.till.state
            assert state is not None
            card_back = -sum(by_card(r) for r in await rig.journal() if r.refund_of == receipt)
            if by_card(sale) > card_back and state.due < 0:  # the card first, all it may take back
                state = await card(rig)
            if state.status != "ready":
                back = await rig.do(CashTender(amount=0))
                assert isinstance(back, Receipt), back
            journal = await rig.journal()
            done = [r for r in journal if r.refund_of == receipt]
            for record in done:
                adds_up(record)
            paid: dict[str, int] = defaultdict(int)
            for record in done:
                paid["card"] -= by_card(record)
                paid["cash"] -= drawer(record)
            assert 0 <= paid["card"] <= by_card(sale), "a card got back more than it paid"
            assert 0 <= paid["cash"] <= drawer(sale), "more cash went back than was taken"
            assert -sum(r.total for r in done) <= sale.total
        journal = await rig.journal()
        done = [r for r in journal if r.refund_of == receipt]
        if sum(len(r) for r in refunds) == len(codes) and done:
            # everything went back: every tender got back exactly what it took, discounts and rounding included
            assert -sum(r.total for r in done) == sale.total
            assert -sum(by_card(r) for r in done) == by_card(sale)
            assert -sum(drawer(r) for r in done) == drawer(sale)

    on_lane(body)
