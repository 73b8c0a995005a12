"""A store upgraded from before signed records: its unsigned journal rows are signed at the node's next
start, before the link sends them, so central (which takes only signed records) books them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import trio

from central.app import CentralNode
from central.registers import sales
from protocol.frames import CashTender, Login, Receipt, Scan
from runtime.clock import FixedClock
from storenode.app import StoreNode
from storenode.journal import chain
from storenode.schema import MIGRATIONS
from tests.kit.nodes import T0, enrolled, make_store_config, stoppable
from tests.kit.waits import drained
from till.client import connect

SIGNING_TRIGGER = next(m.sql for m in MIGRATIONS if m.version == 13)


def unsign(db: Path) -> int:
    """The journal as a store before migration 13 left it: no signatures (the trigger put back after)."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("DROP TRIGGER journal_no_update")
        count = conn.execute("UPDATE journal SET sig = x'', key = ''").rowcount
        trigger = SIGNING_TRIGGER.split("DROP TRIGGER journal_no_update;")[1].split("CREATE INDEX")[0]
        conn.execute(trigger.strip())
        return count
    finally:
        conn.close()


async def test_unsigned_records_are_signed_at_start_and_central_books_them(
    tmp_path: Path, nursery: trio.Nursery, central: CentralNode
) -> None:
    offline = make_store_config(tmp_path)  # no central yet: the sale waits in the outbox
    first = StoreNode(offline, clock=FixedClock(T0))
    life = trio.CancelScope()
    with trio.fail_after(30):
        await nursery.start(stoppable, life, first.run)
        async with connect(first.url, lane=1, till="T1") as till:
            await till.request(Login(operator="1", pin="1234"))
            await till.request(Scan(code="7310000000010"))
            receipt = await till.request(CashTender(amount=2000))
            assert isinstance(receipt, Receipt)
        life.cancel()
    assert unsign(offline.db_path) == 1
    second = StoreNode(enrolled(make_store_config(tmp_path, central_url=central.url), central), clock=FixedClock(T0))
    with trio.fail_after(30):
        await nursery.start(second.run)
        await drained(second)
    conn = sqlite3.connect(offline.db_path)
    try:
        assert chain.verify(conn, "S001", {second.signer.key_id: second.signer.public}) == (1, [])
    finally:
        conn.close()
    booked = await central.db.read(lambda c: sales.receipts(c, "S001"))
    assert [r.sale_id for r in booked] == [receipt.sale_id]
    assert await central.db.read(lambda c: sales.verify(c, "S001")) == (1, [])
