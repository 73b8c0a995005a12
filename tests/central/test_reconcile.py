"""`storepos central reconcile`: receipt by receipt, over the store's live link, as an operator holding
central's operator token."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from central import operators
from central.app import CentralNode
from protocol.frames import CashTender, Login, Receipt, Scan
from storenode.app import StoreNode
from storepos.commands import central_reconcile
from tests.kit.waits import drained
from till.client import connect


async def sell(store: StoreNode, lane: int, count: int) -> None:
    async with connect(store.url, lane=lane, till=f"T{lane}") as till:
        await till.request(Login(operator="1", pin="1234"))
        for _ in range(count):
            await till.request(Scan(code="7310000000010"))
            assert isinstance(await till.request(CashTender(amount=2000)), Receipt)


def operator_dir(central: CentralNode) -> Path:
    """Central's folder with its operator token in it (as `central run` and `central init` leave it)."""
    folder = central.db.path.parent
    operators.ensure_token(folder)
    return folder


async def test_reconcile_agrees_then_names_every_difference(
    store: StoreNode, central: CentralNode, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = operator_dir(central)
    with trio.fail_after(60):
        await sell(store, 1, 4)
        await sell(store, 2, 2)
        await drained(store)
        assert await central_reconcile(central.url, "S001", folder) == 0
        assert "6 receipts compared, 0 in transit; central and store agree" in capsys.readouterr().out

        def tamper(c: object) -> None:
            c.execute("DELETE FROM sales WHERE store = 'S001' AND lane = 1 AND receipt_no = 4")  # type: ignore[attr-defined]
            where = "WHERE store = 'S001' AND lane = 2 AND receipt_no = 1"
            (body,) = c.execute(f"SELECT body FROM sales {where}").fetchone()  # type: ignore[attr-defined]
            c.execute(f"UPDATE sales SET body = ? {where}", (body.replace(b"SEK", b"NOK"),))  # type: ignore[attr-defined]
            c.execute(  # type: ignore[attr-defined]
                "INSERT INTO sales (store, lane, receipt_no, kind, sale_id, currency, total, closed_at, seq, body,"
                " hash, sig, key) SELECT store, lane, 9, kind, 'ghost', currency, total, closed_at, seq, body, hash,"
                " sig, key FROM sales WHERE store = 'S001' AND lane = 1 AND receipt_no = 1"
            )

        await central.db.write(tamper)
        assert await central_reconcile(central.url, "S001", folder) == 1
    out = capsys.readouterr().out
    assert "lane 1 receipt 4: missing at central and no longer in the store's outbox" in out
    assert "lane 2 receipt 1: central's copy differs from the store's journal" in out
    assert "lane 2 receipt 2: central's copy differs" in out  # the chain carries the damage forward
    assert "lane 1 receipt 9: at central but not in the store's journal" in out


async def test_reconcile_of_an_unknown_store_or_central_says_why(
    central: CentralNode, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = operator_dir(central)
    with trio.fail_after(20):
        assert await central_reconcile(central.url, "NOPE", folder) == 2
        assert "store NOPE is not connected to central" in capsys.readouterr().err
        assert await central_reconcile("ws://127.0.0.1:9", "S001", folder) == 2
        assert "cannot reach central" in capsys.readouterr().err
