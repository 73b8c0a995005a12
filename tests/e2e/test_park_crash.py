"""Park, resume and training mode against `kill -9` of a real store process (issue 14: nothing lost or
doubled). Each is one transaction (the lane's change, the parked row, the journal event), so a kill just
after the till heard of it keeps all of it, and a kill while it is in flight keeps all or none of it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import trio

from devtools.processes import STORE_TOML, Processes, storepos
from protocol.frames import CashTender, Login, Park, Receipt, Resume, SaleState, Scan, Training
from storenode.lanes.basket import LaneState
from storenode.lanes.saved import load_saved
from tests.kit.journal import journal_at
from tests.kit.payments import COFFEE, MILK
from till.client import TillClient, connect

pytestmark = pytest.mark.e2e  # real storepos processes: left out of the fast loop


def parked_rows(db: Path) -> list[tuple[int, str, int]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT no, sale_id, lane FROM parked_sales ORDER BY no").fetchall()
    finally:
        conn.close()


def lane_row(db: Path, lane: int) -> LaneState:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return load_saved(conn, lane)[1]
    finally:
        conn.close()


def events(db: Path) -> list[tuple[int, str, str]]:
    return [(r.lane, r.event.code, r.event.ref) for r in journal_at(db) if r.event is not None]


async def login(till: TillClient, operator: str = "1", pin: str = "1234") -> SaleState:
    state = await till.request(Login(operator=operator, pin=pin))
    assert isinstance(state, SaleState), state
    return state


async def test_park_resume_and_training_on_each_survive_kill_9_just_after_the_till_heard(
    tmp_path: Path, procs: Processes
) -> None:
    config = tmp_path / "store.toml"
    config.write_text(STORE_TOML.format(central="", ca=""))
    db = tmp_path / "store-data" / "store.db"
    store, url = await procs.start("store", "store", "run", "--config", str(config))
    with trio.fail_after(60):
        async with connect(url, lane=1, till="T1") as till:
            await login(till)
            await till.request(Scan(code=MILK, qty=2))
            sold = await till.request(Scan(code=COFFEE))
            assert isinstance(sold, SaleState)
            parked = await till.request(Park())
            assert isinstance(parked, SaleState) and parked.lines == []
            procs.kill9(store)
        await store.wait()
        assert events(db) == [(1, "park", sold.sale_id)]
        assert [(sale, lane) for _, sale, lane in parked_rows(db)] == [(sold.sale_id, 1)]
        listed = await storepos("store", "parked", "--config", str(config))  # read beside no running node
        assert listed.returncode == 0 and "P1" in listed.stdout.decode(), listed.stdout.decode()

        store, url = await procs.start("store2", "store", "run", "--config", str(config))
        async with connect(url, lane=1, till="T1") as one, connect(url, lane=2, till="T2") as two:
            assert one.state is not None and one.state.lines == []  # not back on its lane: it is parked
            await login(two, "2", "4321")
            resumed = await two.request(Resume(id="P1"))
            assert isinstance(resumed, SaleState) and resumed.sale_id == sold.sale_id
            procs.kill9(store)
        await store.wait()
        assert events(db) == [(1, "park", sold.sale_id), (2, "resume", sold.sale_id)]
        assert parked_rows(db) == []

        store, url = await procs.start("store3", "store", "run", "--config", str(config))
        async with connect(url, lane=2, till="T2") as two:
            assert two.state is not None and two.state.sale_id == sold.sale_id and two.state.lines == sold.lines
            await login(two, "2", "4321")  # a restart logs everyone out; the resumed sale waits
            receipt = await two.request(CashTender(amount=50000))
            assert isinstance(receipt, Receipt) and receipt.total == sold.total
        async with connect(url, lane=1, till="T1") as one:
            await login(one)
            on = await one.request(Training(on=True, approver="2", approver_pin="4321"))
            assert isinstance(on, SaleState) and on.training
            procs.kill9(store)
        await store.wait()

        store, url = await procs.start("store4", "store", "run", "--config", str(config))
        async with connect(url, lane=1, till="T1") as one:
            assert one.state is not None and one.state.training  # the lane came back in training mode
            state = await login(one)
            assert state.training
    sales = [r for r in journal_at(db) if r.kind == "sale"]
    assert [(r.lane, r.sale_id, r.training) for r in sales] == [(2, sold.sale_id, False)]
    assert [(lane, code) for lane, code, _ in events(db)] == [(1, "park"), (1, "training_on"), (2, "resume")]
    verify = await storepos("store", "verify-journal", "--config", str(config))
    assert verify.returncode == 0, verify.stdout.decode()


@pytest.mark.parametrize("delay", [0.0, 0.003, 0.02])
async def test_a_park_or_resume_cut_by_kill_9_is_kept_whole_or_not_at_all(
    tmp_path: Path, procs: Processes, delay: float
) -> None:
    """The kill lands while the park (then the resume) may be anywhere between the till's send and the
    commit: after the restart the sale is on its lane or parked, exactly once, and the journal agrees."""
    config = tmp_path / "store.toml"
    config.write_text(STORE_TOML.format(central="", ca=""))
    db = tmp_path / "store-data" / "store.db"
    store, url = await procs.start("store", "store", "run", "--config", str(config))
    with trio.fail_after(60):
        async with connect(url, lane=1, till="T1") as till, trio.open_nursery() as nursery:
            await login(till)
            await till.request(Scan(code=MILK))
            sold = await till.request(Scan(code=COFFEE))
            assert isinstance(sold, SaleState)
            nursery.start_soon(till.request, Park())
            await trio.sleep(delay)
            procs.kill9(store)
            nursery.cancel_scope.cancel()
        await store.wait()
        on_lane = lane_row(db, 1).lines
        if events(db):  # parked: once, and no longer on its lane
            assert events(db) == [(1, "park", sold.sale_id)] and len(parked_rows(db)) == 1 and on_lane == []
        else:  # not parked: still on its lane (the state file holds the scans), nothing parked
            assert parked_rows(db) == []

        store, url = await procs.start("store2", "store", "run", "--config", str(config))
        async with connect(url, lane=2, till="T2") as two, trio.open_nursery() as nursery:
            if not events(db):
                async with connect(url, lane=1, till="T1") as one:
                    assert one.state is not None and one.state.sale_id == sold.sale_id
                    await login(one)
                    assert isinstance(await one.request(Park()), SaleState)
            await login(two, "2", "4321")
            nursery.start_soon(two.request, Resume(id="P1"))
            await trio.sleep(delay)
            procs.kill9(store)
            nursery.cancel_scope.cancel()
        await store.wait()
        resumed = [e for e in events(db) if e[1] == "resume"]
        if resumed:
            assert resumed == [(2, "resume", sold.sale_id)] and parked_rows(db) == []
            assert lane_row(db, 2).sale_id == sold.sale_id
        else:
            assert len(parked_rows(db)) == 1 and lane_row(db, 2).lines == []

        store, url = await procs.start("store3", "store", "run", "--config", str(config))
        async with connect(url, lane=2, till="T2") as two:
            await login(two, "2", "4321")
            if not resumed:
                assert isinstance(await two.request(Resume(id="P1")), SaleState)
            receipt = await two.request(CashTender(amount=50000))
            assert isinstance(receipt, Receipt) and receipt.sale_id == sold.sale_id
    assert [r.sale_id for r in journal_at(db) if r.kind == "sale"] == [sold.sale_id]  # sold once
    assert [code for _, code, _ in events(db)] == ["park", "resume"]
    assert parked_rows(db) == []


@pytest.mark.parametrize("delay", [0.0, 0.005, 0.05])
async def test_training_on_cut_by_kill_9_is_journaled_exactly_when_the_lane_kept_it(
    tmp_path: Path, procs: Processes, delay: float
) -> None:
    config = tmp_path / "store.toml"
    config.write_text(STORE_TOML.format(central="", ca=""))
    db = tmp_path / "store-data" / "store.db"
    store, url = await procs.start("store", "store", "run", "--config", str(config))
    with trio.fail_after(60):
        async with connect(url, lane=1, till="T1") as till, trio.open_nursery() as nursery:
            await login(till, "2", "4321")  # a manager approves their own switch: no PIN to hash in the way
            nursery.start_soon(till.request, Training(on=True))
            await trio.sleep(delay)
            procs.kill9(store)
            nursery.cancel_scope.cancel()
        await store.wait()
        switched = [code for _, code, _ in events(db)]
        assert switched in ([], ["training_on"])
        assert lane_row(db, 1).training == bool(switched)  # the lane and its journal agree

        store, url = await procs.start("store2", "store", "run", "--config", str(config))
        async with connect(url, lane=1, till="T1") as till:
            assert till.state is not None and till.state.training == bool(switched)
            await login(till)
            await till.request(Scan(code=MILK))
            receipt = await till.request(CashTender(amount=5000))
            assert isinstance(receipt, Receipt) and ("TRAINING" in receipt.text) == bool(switched)
    (sale,) = [r for r in journal_at(db) if r.kind == "sale"]
    assert sale.training == bool(switched)
