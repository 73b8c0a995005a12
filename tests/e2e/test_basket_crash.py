"""A real store process killed (-9) the instant a till has heard of its scan: the basket comes back whole,
though the scans lived only in the lane's state file; and a sale closed just before the kill never comes back
as an open basket from that file."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from devtools.processes import STORE_TOML, Processes, storepos
from protocol.frames import CashTender, Login, Receipt, SaleState, Scan
from runtime.database import open_connection
from storenode.lanes import statefile
from storenode.lanes.basket import LaneState
from storenode.lanes.saved import load_saved
from tests.kit.journal import journal_at
from tests.kit.payments import BUTTER, COFFEE, MILK
from till.client import connect

pytestmark = pytest.mark.e2e  # real storepos processes: left out of the fast loop


def lane_row(db: Path) -> tuple[int, LaneState]:
    conn = open_connection(db, readonly=True)
    try:
        return load_saved(conn, 1)
    finally:
        conn.close()


async def test_scans_acknowledged_just_before_kill_9_come_back(tmp_path: Path, procs: Processes) -> None:
    config = tmp_path / "store.toml"
    config.write_text(STORE_TOML.format(central="", ca=""))
    db = tmp_path / "store-data" / "store.db"
    store, url = await procs.start("store", "store", "run", "--config", str(config))
    with trio.fail_after(40):
        async with connect(url, lane=1, till="T1") as till:
            await till.request(Login(operator="1", pin="1234"))
            await till.request(Scan(code=MILK, qty=2))
            await till.request(Scan(code=BUTTER))
            answer = await till.request(Scan(code=COFFEE))
            assert isinstance(answer, SaleState) and len(answer.lines) == 3
            procs.kill9(store)  # the till has the answer; the store dies before anything else happens
        await store.wait()
        assert lane_row(db)[1].lines == []  # no scan reached the database: only the state file had them

        store, url = await procs.start("store2", "store", "run", "--config", str(config))
        async with connect(url, lane=1, till="T1") as till:
            assert till.state is not None and till.state.status == "open" and till.state.operator == "1"
            assert [(x.code, x.qty) for x in till.state.lines] == [(MILK, 2), (BUTTER, 1), (COFFEE, 1)]
            assert till.state.sale_id == answer.sale_id and till.state.total == answer.total
            await till.request(Login(operator="1", pin="1234"))  # a restart logs everyone out; the sale waits
            receipt = await till.request(CashTender(amount=20000))
            assert isinstance(receipt, Receipt) and receipt.total == answer.total
    (record,) = journal_at(db)
    assert [(x.code, x.qty) for x in record.lines] == [(MILK, 2), (BUTTER, 1), (COFFEE, 1)]


async def test_a_sale_closed_just_before_kill_9_is_journaled_once_and_not_reopened(
    tmp_path: Path, procs: Processes
) -> None:
    config = tmp_path / "store.toml"
    config.write_text(STORE_TOML.format(central="", ca=""))
    db = tmp_path / "store-data" / "store.db"
    store, url = await procs.start("store", "store", "run", "--config", str(config))
    with trio.fail_after(40):
        async with connect(url, lane=1, till="T1") as till:
            await till.request(Login(operator="1", pin="1234"))
            await till.request(Scan(code=MILK))
            await till.request(Scan(code=COFFEE))
            receipt = await till.request(CashTender(amount=10000))
            assert isinstance(receipt, Receipt)
            procs.kill9(store)
        await store.wait()
        kept = statefile.last(statefile.path_for(db, 1).read_bytes())
        assert kept is not None and len(kept.state.lines) == 2  # the file still holds the open basket
        assert kept.base < lane_row(db)[0]  # but the closing save outranks it

        store, url = await procs.start("store2", "store", "run", "--config", str(config))
        async with connect(url, lane=1, till="T1") as till:
            assert till.state is not None and till.state.status == "closed" and till.state.lines == []
    records = journal_at(db)
    assert [(r.kind, r.sale_id) for r in records] == [("sale", receipt.sale_id)]
    verify = await storepos("store", "verify-journal", "--config", str(config))
    assert verify.returncode == 0, verify.stdout.decode()
