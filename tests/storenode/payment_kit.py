"""A store node whose lane 1 has a ZVT terminal (the simulator over real TCP), and what payment tests read back."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec
import trio

from devices.sim.zvt import ZvtSimulator
from protocol.codec import decode_record
from protocol.frames import SaleRecord, SaleState
from runtime.clock import FixedClock
from storenode.app import StoreNode
from storenode.config import DeviceConfig, PaymentsConfig
from tests.conftest import T0, make_store_config
from till.client import TillClient

MILK, BUTTER, COFFEE = "7310000000010", "7310000000027", "7310000000034"
FULL_PAN = "4761739001010119"  # the simulator's card


def sim_terminal() -> ZvtSimulator:
    sim = ZvtSimulator(currency="SEK")
    sim.send_full_pan = True  # the hardest case: the terminal sends the whole number; the store must mask it
    return sim


async def store_with_terminal(
    tmp_path: Path,
    nursery: trio.Nursery,
    sim: ZvtSimulator,
    *,
    central_url: str = "",
    payments: PaymentsConfig | None = None,
    store: str = "S001",
) -> StoreNode:
    port = sim.port or await nursery.start(sim.run)
    config = make_store_config(tmp_path, central_url=central_url)
    config = msgspec.structs.replace(
        config,
        store=store,
        devices=[DeviceConfig(kind="terminal", lane=1, port=f"tcp://127.0.0.1:{port}", payment_timeout=30)],
        payments=payments or PaymentsConfig(),
    )
    node = StoreNode(config, clock=FixedClock(T0))
    await nursery.start(node.run)
    return node


async def until(till: TillClient, predicate: object) -> SaleState:
    while till.state is None or not predicate(till.state):  # type: ignore[operator]
        await till.pushed.wait()
    return till.state


def journal(node: StoreNode) -> list[SaleRecord]:
    conn = sqlite3.connect(node.config.db_path)
    try:
        rows = conn.execute("SELECT body FROM journal ORDER BY lane, receipt_no").fetchall()
    finally:
        conn.close()
    return [decode_record(body) for (body,) in rows]
