"""A store node killed (-9) while the terminal is booking a card refund: on restart the lane settles the
refund from the terminal's last transaction and journals it exactly once, so the customer is paid back
once and the receipt counts as refunded."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from devices.sim.zvt import ZvtSimulator
from devtools.processes import Processes, storepos
from protocol.frames import CardTender, Error, Login, RefundOf, ReturnItem, SaleState, Scan
from tests.kit.nodes import terminal_store
from tests.kit.payments import COFFEE
from tests.kit.waits import journaled, until
from till.client import connect

pytestmark = pytest.mark.e2e  # real storepos processes: left out of the fast loop


async def test_kill_9_during_a_card_refund_pays_back_once(tmp_path: Path, procs: Processes) -> None:
    sim = ZvtSimulator(currency="SEK")
    async with trio.open_nursery() as nursery:
        port = await nursery.start(sim.run)
        config = terminal_store(tmp_path, port)
        store, url = await procs.start("store", "store", "run", "--config", str(config))
        with trio.fail_after(40):
            async with connect(url, lane=1, till="T1") as till:
                await till.request(Login(operator="1", pin="1234"))
                await till.request(Scan(code=COFFEE))
                await till.request(CardTender())
                await until(till, lambda s: s.status == "ready" and bool(till.receipts))
                receipt = f"E2E-1-{till.receipts[-1].receipt_no}"
                opened = await till.request(RefundOf(receipt=receipt))
                assert isinstance(opened, SaleState) and opened.refund_of == receipt, opened
                returned = await till.request(ReturnItem(code=COFFEE))
                assert isinstance(returned, SaleState) and returned.due == -6995, returned
                sim.hold = trio.Event()  # the customer is still at the terminal when the store dies
                answer = await till.request(CardTender())
                assert isinstance(answer, SaleState) and answer.status == "paying"
                await sim.wait_until(lambda: sim.holding)
            procs.kill9(store)
            await store.wait()
            sim.hold.set()  # the terminal books the refund; nobody is there to hear it
            await sim.wait_until(lambda: any(t.kind == "refund" for t in sim.journal))

            store, url = await procs.start("store2", "store", "run", "--config", str(config))
            db = tmp_path / "store-data" / "store.db"
            rows = await journaled(db, 2)
            async with connect(url, lane=1, till="T1") as till:
                assert till.state is not None and till.state.status == "closed" and not till.state.lines
                await till.request(Login(operator="1", pin="1234"))
                refused = await till.request(RefundOf(receipt=receipt))
                assert isinstance(refused, Error) and refused.code == "all_returned", refused  # refunded in full
        nursery.cancel_scope.cancel()
    _, refund = rows
    assert refund.refund_of == receipt and [(t.kind, t.amount) for t in refund.tenders] == [("card", -6995)]
    assert [t.amount for t in sim.journal if t.kind == "refund"] == [6995] and sim.charged == 0
    verify = await storepos("store", "verify-journal", "--config", str(config))
    assert verify.returncode == 0, verify.stdout.decode()
