"""Copies of a receipt (issue 14, receipts) with the store process killed (-9) at random instants while a till
asks for copy after copy: the count never goes past `[sales] copies`, every copy the till heard of is counted,
and the count always equals the copy events in the journal (counted and journaled in one commit)."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest
import trio
from trio_websocket import ConnectionClosed, HandshakeError

from devtools.processes import STORE_TOML, Processes
from protocol.frames import CashTender, CopyReceipt, Error, Login, Receipt, ReceiptList, Scan
from runtime.database import open_connection
from tests.kit.journal import journal_at
from tests.kit.payments import MILK
from till.client import TillDisconnected, connect

pytestmark = pytest.mark.e2e  # real storepos processes: left out of the fast loop

LIMIT = 8
ROUNDS = 4


def counted(db: Path, receipt: str) -> int:
    conn = open_connection(db, readonly=True)
    try:
        row = conn.execute("SELECT copies FROM receipt_copies WHERE receipt = ?", (receipt,)).fetchone()
        return int(row[0]) if row else 0
    except sqlite3.Error:
        return 0
    finally:
        conn.close()


def copy_events(db: Path, receipt: str) -> int:
    return sum(1 for r in journal_at(db) if r.event is not None and r.event.code == "copy" and r.event.ref == receipt)


async def test_copies_survive_kill_9_never_more_than_allowed_none_lost(tmp_path: Path, procs: Processes) -> None:
    config = tmp_path / "store.toml"
    config.write_text(STORE_TOML.format(central="", ca="") + f"\n[sales]\ncopies = {LIMIT}\n")
    db = tmp_path / "store-data" / "store.db"
    rng = random.Random(14)
    heard = 0  # copies the till was answered with, over every round
    with trio.fail_after(120):
        store, url = await procs.start("store0", "store", "run", "--config", str(config))
        async with connect(url, lane=1, till="T1") as till:
            await till.request(Login(operator="1", pin="1234"))
            await till.request(Scan(code=MILK))
            receipt = await till.request(CashTender(amount=2000))
            assert isinstance(receipt, Receipt)
        rid = f"E2E-1-{receipt.receipt_no}"

        for round_no in range(ROUNDS):
            asking = trio.Event()

            async def ask_copies(url: str = url, asking: trio.Event = asking) -> None:
                nonlocal heard
                try:
                    async with connect(url, lane=1, till="T1") as till:
                        await till.request(Login(operator="1", pin="1234"))
                        asking.set()
                        while True:
                            answer = await till.request(CopyReceipt(receipt=rid))
                            if isinstance(answer, Error):
                                assert answer.code == "copy_limit", answer
                                return
                            assert isinstance(answer, ReceiptList) and "COPY / KOPIA" in answer.text
                            heard += 1
                except (TillDisconnected, OSError, HandshakeError, ConnectionClosed):
                    return  # killed under the till
                finally:
                    asking.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(ask_copies)
                await asking.wait()  # logged in: copies are being asked for from now on
                await trio.sleep(rng.uniform(0.0, 0.03))
                procs.kill9(store)
            await store.wait()
            made, journaled = counted(db, rid), copy_events(db, rid)
            assert made == journaled <= LIMIT  # counted and journaled together, never beyond the rule
            assert heard <= made  # no copy the till heard of went uncounted
            store, url = await procs.start(f"store{round_no + 1}", "store", "run", "--config", str(config))

        async with connect(url, lane=1, till="T1") as till:  # what is left of the limit, then no more
            await till.request(Login(operator="1", pin="1234"))
            while isinstance(await till.request(CopyReceipt(receipt=rid)), ReceiptList):
                heard += 1
    assert counted(db, rid) == copy_events(db, rid) == LIMIT
    assert heard <= LIMIT
