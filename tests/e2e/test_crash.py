"""kill -9 at arbitrary instants while a till sells: no receipt the till was given is ever lost,
nothing is duplicated at central, and the chain stays intact."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import trio
from trio_websocket import ConnectionClosed, HandshakeError

from protocol.codec import decode_record
from protocol.frames import CashTender, Error, Login, Receipt, SaleState, Scan
from tests.processes import STORE_TOML, Processes, storepos
from till.client import TillDisconnected, connect

CODES = ["7310000000010", "7310000000027", "7310000000034", "7310000000171"]


async def sell_until_cut(url: str, lane: int, receipts: dict[str, int], rng: random.Random) -> None:
    """Sell sales of 1-4 items for ever; record every receipt the store hands out."""
    try:
        async with connect(url, lane=lane, till=f"T{lane}") as till:
            await till.request(Login(operator="1", pin="1234"))
            while True:
                for _ in range(rng.randint(1, 4)):
                    answer = await till.request(Scan(code=rng.choice(CODES)))
                    assert isinstance(answer, SaleState), answer
                assert till.state is not None
                answer = await till.request(CashTender(amount=till.state.cash_due))
                if isinstance(answer, Error) and answer.code == "no_sale":
                    continue  # the store died after journaling but before answering: state tells
                assert isinstance(answer, Receipt), answer
                receipts[answer.sale_id] = answer.total
    except (OSError, ConnectionClosed, HandshakeError, TillDisconnected, ConnectionRefusedError):
        pass


def journal(db: Path) -> dict[str, tuple[int, int, int]]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT body FROM journal").fetchall()
    finally:
        conn.close()
    out = {}
    for (body,) in rows:
        r = decode_record(body)
        out[r.sale_id] = (r.lane, r.receipt_no, r.total)
    return out


async def test_kill_9_store_and_central_repeatedly(tmp_path: Path, procs: Processes) -> None:
    rng = random.Random(7)
    central_db = tmp_path / "central.db"
    central, central_url = await procs.start("central", "central", "run", "--db", str(central_db), "--port", "0")
    port = central_url.rsplit(":", 1)[1]
    config = tmp_path / "store.toml"
    config.write_text(STORE_TOML.format(central=central_url))
    receipts: dict[str, int] = {}
    with trio.fail_after(150):
        for round_no in range(6):
            store, url = await procs.start(f"store{round_no}", "store", "run", "--config", str(config))
            async with trio.open_nursery() as nursery:
                for lane in (1, 2):
                    nursery.start_soon(sell_until_cut, url, lane, receipts, rng)
                await trio.sleep(rng.uniform(0.3, 1.5))
                procs.kill9(store)
                if round_no % 2:
                    procs.kill9(central)
                    await central.wait()
                    central, _ = await procs.start(
                        f"central{round_no}", "central", "run", "--db", str(central_db), "--port", port
                    )
            await store.wait()
        store, url = await procs.start("final", "store", "run", "--config", str(config))
        status = await storepos("store", "status", "--config", str(config), "--url", url)
        while "outbox 0 events" not in status.stdout.decode():  # central is another process: poll it
            await trio.sleep(0.2)
            status = await storepos("store", "status", "--config", str(config), "--url", url)

    assert len(receipts) > 10, "the test sold too little to prove anything"
    local = journal(tmp_path / "store-data" / "store.db")
    # every receipt a till was handed is in the journal, with the total it was told
    assert all(local[sale_id][2] == total for sale_id, total in receipts.items())
    verify = await storepos("store", "verify-journal", "--config", str(config))
    assert verify.returncode == 0, verify.stdout.decode()
    conn = sqlite3.connect(central_db)
    try:
        central_rows = conn.execute("SELECT sale_id, lane, receipt_no, total FROM sales WHERE store = 'E2E'").fetchall()
    finally:
        conn.close()
    assert len(central_rows) == len({row[0] for row in central_rows})  # no duplicates
    assert {row[0]: (row[1], row[2], row[3]) for row in central_rows} == local  # nothing lost, nothing extra
