"""Park and resume (issue 14, Deliver 3): a real store node with two lanes, tills over real websockets, the
journal and the parked sales read back from the store's SQLite file as another process would.

A sale parked on one lane is kept, journaled as a `park` event with its lines and total, and resumed on
another lane at its parked prices, journaled as a `resume` event; every refusal leaves the lane, the parked
sales and the journal as they were; two lanes resuming the same sale at once: one gets it, once."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
import trio

from protocol.frames import (
    CashTender,
    Command,
    Error,
    Login,
    Park,
    ParkedList,
    ParkedQuery,
    Receipt,
    RefundOf,
    Resume,
    ReturnItem,
    SaleState,
    Scan,
    TillFrame,
)
from storenode.app import StoreNode
from storepos import commands
from tests.kit.journal import journal
from tests.kit.nodes import start_store
from tests.kit.payments import BUTTER, COFFEE, MILK
from tests.kit.waits import until
from till.client import TillClient, connect

BOUND = 30


def parked_rows(store: StoreNode) -> list[tuple[int, str, int]]:
    conn = sqlite3.connect(f"file:{store.config.db_path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT no, sale_id, lane FROM parked_sales ORDER BY no").fetchall()
    finally:
        conn.close()


def basket(till: TillClient) -> tuple[object, ...]:
    s = till.state
    assert s is not None
    return (s.status, s.sale_id, s.lines, s.tenders, s.total, s.refund_of, s.training)


async def refused(store: StoreNode, till: TillClient, command: Command, code: str, words: str = "") -> Error:
    """Refused with `code` (its message naming `words`), and nothing changed: the lane, the parked
    sales, the journal."""
    before = (basket(till), parked_rows(store), journal(store))
    answer = await till.request(command)
    assert isinstance(answer, Error) and answer.code == code, answer
    assert words in answer.message, answer.message
    assert (basket(till), parked_rows(store), journal(store)) == before
    return answer


async def logged_in(till: TillClient, operator: str = "1", pin: str = "1234") -> None:
    assert isinstance(await till.request(Login(operator=operator, pin=pin)), SaleState)


async def test_parked_on_one_lane_resumed_on_another_at_its_prices_journaled_once_each(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    store = await start_store(tmp_path, nursery)
    with trio.fail_after(BOUND):
        async with connect(store.url, lane=1, till="T1") as one, connect(store.url, lane=2, till="T2") as two:
            await logged_in(one)
            await logged_in(two, "2", "4321")
            await one.request(Scan(code=MILK, qty=2))
            await one.request(Scan(code=BUTTER))
            sold = await one.request(Scan(code=COFFEE))
            assert isinstance(sold, SaleState)
            assert isinstance(await one.request(ParkedQuery()), ParkedList)

            parked = await one.request(Park())
            assert isinstance(parked, SaleState) and parked.status == "ready" and parked.lines == []
            assert "P1" in parked.message, parked.message
            assert [(no, sale, lane) for no, sale, lane in parked_rows(store)] == [(1, sold.sale_id, 1)]

            listing = await two.request(ParkedQuery())  # any lane of the store lists it
            assert isinstance(listing, ParkedList)
            (entry,) = listing.sales
            assert (entry.id, entry.lane, entry.operator, entry.lines, entry.total) == ("P1", 1, "1", 3, sold.total)

            resumed = await two.request(Resume(id="p1"))  # typed as a cashier would
            assert isinstance(resumed, SaleState) and resumed.status == "open"
            assert resumed.sale_id == sold.sale_id and resumed.operator == "2"
            assert resumed.lines == sold.lines and resumed.total == sold.total  # its parked prices
            assert parked_rows(store) == []
            listing = await two.request(ParkedQuery())
            assert isinstance(listing, ParkedList) and listing.sales == []

            receipt = await two.request(CashTender(amount=50000))
            assert isinstance(receipt, Receipt) and receipt.total == sold.total and receipt.sale_id == sold.sale_id

    records = journal(store)
    assert [(r.lane, r.kind, r.event.code if r.event else "") for r in records] == [
        (1, "event", "park"),
        (2, "event", "resume"),
        (2, "sale", ""),
    ]
    park, resume, sale = records
    for event in (park, resume):
        assert event.event is not None and event.event.ref == sold.sale_id
        assert [(x.code, x.qty, x.amount) for x in event.lines] == [(x.code, x.qty, x.amount) for x in sold.lines]
        assert event.total == sold.total
    assert park.operator == "1" and resume.operator == "2" and sale.operator == "2"
    assert resume.event is not None and "lane 1" in resume.event.detail
    assert sale.sale_id == sold.sale_id and sale.total == sold.total


async def test_sales_left_parked_are_reported_by_store_status_and_store_parked(
    tmp_path: Path, nursery: trio.Nursery, capsys: pytest.CaptureFixture[str]
) -> None:
    """Day close (issue 15) will report them through parking.left_parked; meanwhile these two commands do."""
    store = await start_store(tmp_path, nursery)
    config = tmp_path / "store.toml"
    config.write_text(f'store = "S001"\nlanes = [1, 2]\ndata_dir = "{store.config.data_dir}"\n')
    with trio.fail_after(BOUND):
        assert commands.store_parked(config) == 0
        assert "S001: no sales are parked" in capsys.readouterr().out
        async with connect(store.url, lane=1, till="T1") as one:
            await logged_in(one)
            for code in (MILK, COFFEE):
                await one.request(Scan(code=code))
                await one.request(Park())
        assert await commands.store_status(config, store.url) == 0
        assert "parked sales: 2" in capsys.readouterr().out
    assert commands.store_parked(config) == 0
    out = capsys.readouterr().out
    assert "2 sales parked" in out
    assert [line.split()[:3] for line in out.splitlines()[1:]] == [["P1", "lane", "1"], ["P2", "lane", "1"]]
    assert [line.split()[-2:] for line in out.splitlines()[1:]] == [["SEK", "15.90"], ["SEK", "69.95"]]


async def test_each_refusal_changes_nothing(tmp_path: Path, nursery: trio.Nursery) -> None:
    store = await start_store(tmp_path, nursery)
    with trio.fail_after(BOUND):
        async with connect(store.url, lane=1, till="T1") as one, connect(store.url, lane=2, till="T2") as two:
            await logged_in(one)
            await logged_in(two, "2", "4321")
            await refused(store, one, Park(), "no_sale", "no sale")  # nothing to park

            await one.request(Scan(code=MILK))
            await one.request(CashTender(amount=500, part=True))  # money taken: it stays with this drawer
            await refused(store, one, Park(), "payment_started", "money was already taken")
            sold = await one.request(CashTender(amount=5000))
            assert isinstance(sold, Receipt)
            await until(one, lambda s: s.status == "ready")

            await one.request(RefundOf(receipt=f"S001-1-{sold.receipt_no}"))  # a refund is not parked
            await one.request(ReturnItem(code=MILK))
            await refused(store, one, Park(), "refund_sale", "a refund cannot be parked")
            assert isinstance(await one.request(CashTender(amount=0)), Receipt)
            await until(one, lambda s: s.status == "ready")

            await two.request(Scan(code=COFFEE))
            assert isinstance(await two.request(Park()), SaleState)  # P1, parked on lane 2
            await one.request(Scan(code=BUTTER))  # lane 1 has a sale of its own
            await refused(store, one, Resume(id="P1"), "sale_open", "before resuming")
            await refused(store, two, Resume(id="P99"), "no_parked", "no sale P99 is parked in store S001")
            await refused(store, two, Resume(id="S002-P1"), "other_store", "parked in store S002")
            await refused(store, two, Resume(id="yesterday"), "bad_parked_id", "not a parked sale's id")
            await refused(store, two, Resume(id="P0"), "bad_parked_id", "not a parked sale's id")

            assert isinstance(await two.request(Resume(id="S001-P1")), SaleState)  # its own store's prefix is fine
            assert isinstance(await two.request(Park()), SaleState)  # parked again: a new id, P2
            assert isinstance(await two.request(Resume(id="P2")), SaleState)
            assert isinstance(await two.request(Park()), SaleState)
            await refused(store, two, Resume(id="P1"), "already_resumed", "resumed already")
    events = [(r.lane, r.event.code) for r in journal(store) if r.event is not None]
    assert events == [(2, "park"), (2, "resume"), (2, "park"), (2, "resume"), (2, "park")]
    assert [no for no, _, _ in parked_rows(store)] == [3]


async def test_two_lanes_resuming_one_parked_sale_at_once_one_gets_it(tmp_path: Path, nursery: trio.Nursery) -> None:
    """Both resumes reach the store's database together: the test holds its writer thread until both jobs
    are queued, so they run in one batch (each in its own savepoint). The actor runs one job at a time, so
    the second finds the parked row already gone: it is refused, rolled back alone, its lane as it was."""
    store = await start_store(tmp_path, nursery)
    with trio.fail_after(BOUND):
        async with connect(store.url, lane=1, till="T1") as one, connect(store.url, lane=2, till="T2") as two:
            await logged_in(one)
            await logged_in(two, "2", "4321")
            sold = await one.request(Scan(code=COFFEE))
            assert isinstance(sold, SaleState)
            await one.request(Park())
            answers: dict[int, TillFrame] = {}

            async def resume(lane: int, till: TillClient) -> None:
                answers[lane] = await till.request(Resume(id="P1"))

            entered, gate = threading.Event(), threading.Event()

            def hold(_c: sqlite3.Connection) -> None:
                entered.set()
                gate.wait(BOUND)

            async with trio.open_nursery() as both:
                both.start_soon(store.db.write, hold)  # the writer thread, held
                await trio.to_thread.run_sync(entered.wait, BOUND)
                both.start_soon(resume, 1, one)
                both.start_soon(resume, 2, two)
                while store.db._queue.qsize() < 2:  # noqa: ASYNC110  (no event says a job was queued)
                    await trio.sleep(0.005)
                gate.set()
            won = [lane for lane, a in answers.items() if isinstance(a, SaleState) and a.sale_id == sold.sale_id]
            lost = [lane for lane, a in answers.items() if isinstance(a, Error) and a.code == "already_resumed"]
            assert len(won) == 1 and len(lost) == 1, answers
            loser = one if lost[0] == 1 else two
            assert basket(loser)[:3] == ("ready", "", [])
    resumes = [r for r in journal(store) if r.event is not None and r.event.code == "resume"]
    assert [(r.lane, r.event.ref) for r in resumes if r.event] == [(won[0], sold.sale_id)]
    assert parked_rows(store) == []
