"""Receipts after the sale (issue 14, receipts), on the lane alone: looked up by id, period, total and card;
copies counted, journaled and limited; a receipt's code scanned opens its refund. The same through a
store node and real websockets is in tests/storenode/test_receipts_store.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
import trio
from trio.testing import MockClock

from protocol.frames import (
    CardTender,
    CashTender,
    CopyReceipt,
    Error,
    Login,
    Receipt,
    ReceiptList,
    ReceiptQuery,
    SaleRecord,
    SaleState,
    Scan,
    TillFrame,
)
from runtime.clock import FixedClock
from runtime.database import migrate, open_connection
from storenode.journal import chain, index
from storenode.journal.chain import Signer
from storenode.lanes.lane import Do
from storenode.schema import MIGRATIONS
from tests.kit.lanes import LaneRig, open_lane
from tests.kit.payments import BUTTER, COFFEE, MILK

BOUND = 120
DAY = 86_400_000


@pytest.fixture
async def rig(tmp_path: Path, nursery: trio.Nursery, autojump_clock: MockClock) -> AsyncIterator[LaneRig]:
    with trio.fail_after(BOUND):
        rig = await open_lane(tmp_path, nursery, autojump_clock)
        assert isinstance(await rig.do(Login(operator="1", pin="1234")), SaleState)
    yield rig


async def sell(rig: LaneRig, *codes: str, card: bool = False) -> Receipt:
    for code in codes:
        assert isinstance(await rig.do(Scan(code=code)), SaleState)
    seen = len(rig.till.receipts)
    if card:
        assert isinstance(await rig.do(CardTender()), SaleState)
        await rig.till.until(lambda s: s.status == "ready")
    else:
        assert isinstance(await rig.do(CashTender(amount=100_000)), Receipt)
    return rig.till.receipts[seen]


async def listed(rig: LaneRig, command: ReceiptQuery | CopyReceipt) -> ReceiptList:
    answer = await rig.do(command)
    assert isinstance(answer, ReceiptList), answer
    return answer


async def refused(rig: LaneRig, command: TillFrame, code: str) -> None:
    journal = await rig.journal()
    answer = await rig.do(command)  # type: ignore[arg-type]
    assert isinstance(answer, Error) and answer.code == code, answer
    assert await rig.journal() == journal  # nothing written


async def test_receipts_are_found_by_id_period_total_and_card(rig: LaneRig) -> None:
    clock = rig.lane.ctx.clock
    assert isinstance(clock, FixedClock)
    with trio.fail_after(BOUND):
        first = await sell(rig, MILK)  # 2026-11-18, cash 15.90
        clock.advance(DAY)
        second = await sell(rig, COFFEE, card=True)  # 2026-11-19, card ...0119
        third = await sell(rig, MILK)  # 2026-11-19, cash 15.90

        one = await listed(rig, ReceiptQuery(receipt=f"S001-1-{second.receipt_no}"))
        assert [r.receipt for r in one.receipts] == [f"S001-1-{second.receipt_no}"]
        assert one.receipts[0].cards == ["0119"] and "TOTAL" in one.text and "COPY" not in one.text

        by_total = await listed(rig, ReceiptQuery(amount=1590))
        assert [r.receipt for r in by_total.receipts] == [f"S001-1-{third.receipt_no}", f"S001-1-{first.receipt_no}"]
        assert not by_total.more and by_total.text == ""

        by_card = await listed(rig, ReceiptQuery(card="0119"))
        assert [r.total for r in by_card.receipts] == [6995]
        assert (await listed(rig, ReceiptQuery(card="1234"))).receipts == []

        day_one = await listed(rig, ReceiptQuery(since="2026-11-18", until="2026-11-18"))
        assert [r.receipt for r in day_one.receipts] == [f"S001-1-{first.receipt_no}"]
        day_two = await listed(rig, ReceiptQuery(since="2026-11-19", amount=1590))
        assert [r.receipt for r in day_two.receipts] == [f"S001-1-{third.receipt_no}"]

        bounded = await listed(rig, ReceiptQuery(limit=2))
        assert len(bounded.receipts) == 2 and bounded.more
        assert bounded.receipts[0].receipt == f"S001-1-{third.receipt_no}"  # newest first


async def test_bad_lookups_are_refused_clearly(rig: LaneRig) -> None:
    with trio.fail_after(BOUND):
        await sell(rig, MILK)
        for query, code in (
            (ReceiptQuery(receipt="S001-9-999"), "unknown_receipt"),
            (ReceiptQuery(receipt="S002-1-1"), "other_store"),
            (ReceiptQuery(receipt="nonsense"), "bad_receipt"),
            (ReceiptQuery(since="2026-13-01"), "bad_query"),
            (ReceiptQuery(since="2026-12-05", until="2026-12-01"), "bad_query"),
            (ReceiptQuery(card="01x9"), "bad_query"),
        ):
            await refused(rig, query, code)


async def test_a_copy_is_counted_journaled_and_limited(rig: LaneRig) -> None:
    with trio.fail_after(BOUND):
        sale = await sell(rig, MILK, BUTTER)
        rid = f"S001-1-{sale.receipt_no}"
        copy = await listed(rig, CopyReceipt(receipt=rid))
        assert [t.strip() for t in copy.text.splitlines()[:2]] == ["COPY / KOPIA", "copy 1 / kopia 1"]
        assert copy.receipts[0].copies == 1
        event = (await rig.journal())[-1]
        assert event.kind == "event" and event.event is not None
        assert (event.event.code, event.event.ref, event.operator) == ("copy", rid, "1")

        await refused(rig, CopyReceipt(receipt=rid), "copy_limit")  # [sales] copies = 1: nothing printed
        await refused(rig, CopyReceipt(receipt="S001-1-999"), "unknown_receipt")
        await refused(rig, CopyReceipt(receipt="S002-1-1"), "other_store")

        rig.lane.ctx.config.sales = msgspec.structs.replace(rig.lane.ctx.config.sales, copies=2)
        second = await listed(rig, CopyReceipt(receipt=rid))
        assert second.text.splitlines()[1].strip() == "copy 2 / kopia 2"
        assert (await listed(rig, ReceiptQuery(receipt=rid))).receipts[0].copies == 2
        await refused(rig, CopyReceipt(receipt=rid), "copy_limit")


async def test_scanning_a_receipt_opens_its_refund(rig: LaneRig) -> None:
    with trio.fail_after(BOUND):
        sale = await sell(rig, MILK, COFFEE)
        rid = f"S001-1-{sale.receipt_no}"
        state = await rig.do(Scan(code=rid))
        assert isinstance(state, SaleState) and state.refund_of == rid and state.status == "open"
        back = await rig.do(Scan(code=MILK))  # in a refund, a scan is not a sale
        assert isinstance(back, Error) and back.code == "refund_sale"
        await refused(rig, Scan(code="S001-1-999"), "unknown_receipt")


async def test_the_lanes_scanner_reading_a_receipt_opens_its_refund(rig: LaneRig) -> None:
    with trio.fail_after(BOUND):
        sale = await sell(rig, MILK)
        rid = f"S001-1-{sale.receipt_no}"
        await rig.lane.mailbox.ask(Do(Scan(code=rid), None))  # the barcode scanner bound to the lane
        state = rig.till.state
        assert state is not None and state.refund_of == rid and state.status == "open"


def test_receipts_journaled_before_the_index_are_indexed_once_at_start(tmp_path: Path) -> None:
    conn = open_connection(tmp_path / "store.db")
    migrate(conn, [m for m in MIGRATIONS if m.version < 19])  # a store from before the receipt index
    signer = Signer("S001", None)
    for n in range(1, 8):
        lane = 1 + n % 2

        def build(no: int, n: int = n, lane: int = lane) -> SaleRecord:
            return SaleRecord(
                store="S001", lane=lane, receipt_no=no, kind="sale", sale_id=f"s{n}", operator="1", opened_at=n,
                closed_at=n, currency="SEK", lines=[], total=100 * n, rounding=0, vat=[], tenders=[], change=0,
            )  # fmt: skip

        chain.append(conn, lane, build, signer)
    migrate(conn, MIGRATIONS)
    assert conn.execute("SELECT COUNT(*) FROM receipt_index").fetchone()[0] == 0
    assert index.backfill(conn) == 7
    assert index.backfill(conn) == 0  # once: the backlog is gone
    assert index.find(conn, index.Where(total=300), 20) == ([(2, 2)], False)  # n=3: lane 2, its second
    assert len(index.find(conn, index.Where(), 5)[0]) == 5
    conn.close()
