"""The same item scanned again goes onto its line (store.toml [sales] merge_lines, on by default; issue 14):
one line of quantity 2, not two lines. Never for weighed or price-embedded (GS1 label) items, never onto a
voided line, never for returns or in a refund of a receipt; a merged line still voids, prints, journals and
refunds as one line of its quantity. The lane alone on the autojump clock, with a real SQLite journal."""

from __future__ import annotations

from pathlib import Path

import trio
from trio.testing import MockClock

from protocol.frames import (
    CashTender,
    Error,
    Login,
    Receipt,
    RefundOf,
    ReturnItem,
    SaleState,
    Scan,
    VoidLine,
)
from protocol.gs1 import check_digit
from protocol.money import MoneyError, parse_money
from storenode.config import SalesConfig
from tests.kit.lanes import LaneRig, open_lane
from tests.kit.payments import COFFEE, MILK

BOUND = 120
MILK_OTHER_CODE = "7319990000017"  # the same milk under its second barcode
PASTA = "7310000000096"


async def lane(folder: Path, nursery: trio.Nursery, clock: MockClock, *, merge: bool = True) -> LaneRig:
    rig = await open_lane(folder, nursery, clock, sales=SalesConfig(merge_lines=merge))
    assert isinstance(await rig.do(Login(operator="1", pin="1234")), SaleState)
    return rig


async def scan(rig: LaneRig, code: str, qty: int = 1) -> SaleState:
    state = await rig.do(Scan(code=code, qty=qty))
    assert isinstance(state, SaleState), state
    return state


def label(key: str, cents: int) -> str:
    """A price-embedded GS1 label: the 7-digit key, the price in minor units, the check digit."""
    body = f"{key}{cents:05d}"
    return body + check_digit(body)


def adds_up(text: str) -> bool:
    """The receipt's rows between its two rules add up to its TOTAL."""
    rows = text.splitlines()
    first = rows.index("-" * 42)
    second = rows.index("-" * 42, first + 1)
    added = 0
    for row in rows[first + 1 : second]:
        try:
            added += parse_money(row.split()[-1], "SEK")
        except MoneyError:
            continue
    total = next(row for row in rows if row.startswith("TOTAL"))
    return added == parse_money(total.split()[-1], "SEK")


async def test_the_same_item_again_is_one_line_of_quantity_two(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    with trio.fail_after(BOUND):
        rig = await lane(tmp_path, nursery, autojump_clock)
        await scan(rig, MILK)
        await scan(rig, COFFEE)
        state = await scan(rig, MILK)
        assert [(x.no, x.code, x.qty, x.amount) for x in state.lines] == [(1, MILK, 2, 3180), (2, COFFEE, 1, 6995)]
        assert state.message == "Milk 1.5% 1 l 15.90 (line 1: 2)" and state.total == 3180 + 6995
        state = await scan(rig, MILK, 3)
        assert [(x.qty, x.amount) for x in state.lines] == [(5, 7950), (1, 6995)]
        state = await scan(rig, MILK_OTHER_CODE)  # another barcode: its own line (the journal keeps each code)
        assert [x.code for x in state.lines] == [MILK, COFFEE, MILK_OTHER_CODE]
        receipt = await rig.do(CashTender(amount=20000))
        assert isinstance(receipt, Receipt)
        assert "  5 x 15.90                          79.50" in receipt.text.splitlines() and adds_up(receipt.text)
        (sale,) = await rig.journal()
        assert [(x.no, x.qty, x.amount) for x in sale.lines] == [(1, 5, 7950), (2, 1, 6995), (3, 1, 1590)]


async def test_merge_lines_off_keeps_each_scan_on_its_own_line(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    with trio.fail_after(BOUND):
        rig = await lane(tmp_path, nursery, autojump_clock, merge=False)
        await scan(rig, MILK)
        state = await scan(rig, MILK)
        assert [(x.no, x.qty) for x in state.lines] == [(1, 1), (2, 1)]


async def test_never_onto_a_voided_line_and_a_merged_line_voids_whole(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    with trio.fail_after(BOUND):
        rig = await lane(tmp_path, nursery, autojump_clock)
        await scan(rig, MILK)
        await scan(rig, MILK)
        state = await rig.do(VoidLine(line=1))  # the line of 2: both go
        assert isinstance(state, SaleState) and state.total == 0
        assert [(x.qty, x.amount, x.voided) for x in state.lines] == [(2, 3180, True)]
        state = await scan(rig, MILK)  # sold again: a line of its own, the void stays as it was
        assert [(x.no, x.qty, x.voided) for x in state.lines] == [(1, 2, True), (2, 1, False)]
        state = await scan(rig, MILK)
        assert [(x.no, x.qty, x.voided) for x in state.lines] == [(1, 2, True), (2, 2, False)]
        again = await rig.do(VoidLine(line=1))
        assert isinstance(again, Error) and again.code == "already_void"
        receipt = await rig.do(CashTender(amount=4000))
        assert isinstance(receipt, Receipt) and receipt.total == 3180 and adds_up(receipt.text)
        rows = receipt.text.splitlines()
        assert rows.count("  2 x 15.90                          31.80") == 2
        assert "VOID Milk 1.5% 1 l                  -31.80" in rows


async def test_weighed_and_price_embedded_items_never_merge(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    with trio.fail_after(BOUND):
        rig = await lane(tmp_path, nursery, autojump_clock)
        await rig.db.write(lambda c: c.execute("INSERT INTO barcodes (code, item) VALUES ('2101001', '1001')"))
        await scan(rig, label("2101001", 1590))  # milk with a price label: a piece item, price-embedded
        state = await scan(rig, label("2101001", 1590))
        assert [(x.qty, x.amount) for x in state.lines] == [(1, 1590), (1, 1590)]
        await scan(rig, label("2100005", 1250))  # bananas, weighed elsewhere: the same label twice
        state = await scan(rig, label("2100005", 1250))
        assert [(x.item, x.qty) for x in state.lines[2:]] == [("1005", 1), ("1005", 1)]
        state = await scan(rig, MILK)  # a plain scan of the item does not go onto its label's line either
        assert len(state.lines) == 5


async def test_returns_and_refunds_of_a_receipt_keep_each_return_on_its_own_line(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    with trio.fail_after(BOUND):
        rig = await lane(tmp_path, nursery, autojump_clock)
        await scan(rig, MILK)
        await scan(rig, MILK)
        sold = await rig.do(CashTender(amount=4000))
        assert isinstance(sold, Receipt)
        receipt = f"S001-1-{sold.receipt_no}"
        await rig.do(RefundOf(receipt=receipt))
        await rig.do(ReturnItem(code=MILK))
        state = await rig.do(ReturnItem(code=MILK))
        assert isinstance(state, SaleState)
        assert [(x.no, x.qty, x.amount) for x in state.lines] == [(1, -1, -1590), (2, -1, -1590)]
        over = await rig.do(ReturnItem(code=MILK))
        assert isinstance(over, Error) and over.code == "over_return"  # the line of 2 is back whole
        state = await rig.do(VoidLine(line=2))  # one return taken back
        assert isinstance(state, SaleState) and state.total == -1590
        paid_back = await rig.do(CashTender(amount=0))
        assert isinstance(paid_back, Receipt) and adds_up(paid_back.text)
        _, refund = await rig.journal()
        assert [(x.origin, x.qty, x.voided) for x in refund.lines] == [(1, -1, False), (1, -1, True)]

        # A receipt-less return: each its own line, approved or not as the line it adds.
        await rig.do(ReturnItem(code=PASTA))
        state = await rig.do(ReturnItem(code=PASTA))
        assert isinstance(state, SaleState) and [x.qty for x in state.lines] == [-1, -1]
