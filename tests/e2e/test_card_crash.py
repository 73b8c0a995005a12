"""A store node killed (-9) while the terminal is approving a card payment: on restart the lane settles the
payment from the terminal's last transaction and completes the sale exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from devices.sim.zvt import ZvtSimulator
from devtools.processes import Processes, storepos
from protocol.frames import CardTender, Login, SaleState, Scan
from tests.kit.nodes import terminal_store
from tests.kit.payments import COFFEE
from tests.kit.waits import journaled
from till.client import connect

pytestmark = pytest.mark.e2e  # real storepos processes: left out of the fast loop


async def test_kill_9_between_approval_and_journal_completes_the_sale_once(tmp_path: Path, procs: Processes) -> None:
    sim = ZvtSimulator(currency="SEK")
    sim.hold = trio.Event()  # the customer is still at the terminal when the store dies
    async with trio.open_nursery() as nursery:
        port = await nursery.start(sim.run)
        config = terminal_store(tmp_path, port)
        store, url = await procs.start("store", "store", "run", "--config", str(config))
        with trio.fail_after(40):
            async with connect(url, lane=1, till="T1") as till:
                await till.request(Login(operator="1", pin="1234"))
                await till.request(Scan(code=COFFEE))
                answer = await till.request(CardTender())
                assert isinstance(answer, SaleState) and answer.status == "paying"
                await sim.wait_until(lambda: sim.holding)
            procs.kill9(store)
            await store.wait()
            sim.hold.set()  # the terminal approves; nobody is there to hear it
            await sim.wait_until(lambda: len(sim.payments) == 1)

            store, url = await procs.start("store2", "store", "run", "--config", str(config))
            db = tmp_path / "store-data" / "store.db"
            rows = await journaled(db, 1)  # the lane settles by itself on restart; no till needs to be attached
            async with connect(url, lane=1, till="T1") as till:
                assert till.state is not None and till.state.status == "closed" and not till.state.lines
        nursery.cancel_scope.cancel()
    (record,) = rows
    assert record.kind == "sale" and [(t.kind, t.amount) for t in record.tenders] == [("card", 6995)]
    assert record.payments[0].outcome == "approved" and record.payments[0].terminal_txn == sim.payments[0].trace
    assert sim.charged == 6995 and len(sim.payments) == 1
    verify = await storepos("store", "verify-journal", "--config", str(config))
    assert verify.returncode == 0, verify.stdout.decode()
