"""A store upgraded from before signed records: its unsigned journal rows are signed at the node's next
start, before the link sends them, so central (which takes only signed records) books them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import trio

from central.app import CentralNode
from central.registers import sales
from protocol import identity
from protocol.frames import CashTender, Login, Receipt, Scan
from runtime.clock import FixedClock
from storenode.app import StoreNode
from storenode.journal import chain
from storenode.schema import MIGRATIONS
from storepos import commands
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


async def test_verify_journal_checks_records_signed_before_a_rotation_with_the_retired_key(
    tmp_path: Path, nursery: trio.Nursery, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_store_config(tmp_path)
    toml = tmp_path / "store.toml"
    toml.write_text(f'store = "S001"\nlanes = [1, 2]\ndata_dir = "{config.data_path}"\n')
    for life in range(2):
        node = StoreNode(config, clock=FixedClock(T0))
        scope = trio.CancelScope()
        with trio.fail_after(30):
            await nursery.start(stoppable, scope, node.run)
            async with connect(node.url, lane=1, till="T1") as till:
                await till.request(Login(operator="1", pin="1234"))
                await till.request(Scan(code="7310000000010"))
                assert isinstance(await till.request(CashTender(amount=2000)), Receipt)
            scope.cancel()
        if life == 0:  # a rotation as central's acceptance leaves it: the old key retired, a new one current
            folder = config.data_path / "identity"
            identity.save_private(folder / "retired" / f"{node.signer.key_id}.key", node.signer.key)  # type: ignore[arg-type]
            identity.save_private(folder / "store.key", identity.generate())
    capsys.readouterr()
    assert commands.verify_journal(toml) == 0
    assert "journal intact: 2 receipts" in capsys.readouterr().out
    for retired in (config.data_path / "identity" / "retired").glob("*.key"):  # without the retired key
        retired.unlink()
    assert commands.verify_journal(toml) == 1
    assert "which is not one the store holds or held" in capsys.readouterr().out
