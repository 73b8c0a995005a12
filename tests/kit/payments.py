"""A store node whose lane 1 has a ZVT terminal (the simulator over real TCP), and what payment tests read back."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec
import trio

from central.app import CentralNode
from central.registers import giftcards
from devices.sim.zvt import ZvtSimulator
from protocol.codec import decode_record
from protocol.frames import CardTender, Login, Receipt, SaleRecord, SaleState, Scan
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


async def start_store(
    folder: Path,
    nursery: trio.Nursery,
    central_url: str = "",
    *,
    store: str = "S001",
    payments: PaymentsConfig | None = None,
    sim: ZvtSimulator | None = None,
) -> StoreNode:
    """A store node on the fixed clock, with lane 1's card terminal when `sim` is given (started here)."""
    devices = []
    if sim is not None:
        port = sim.port or await nursery.start(sim.run)
        devices = [DeviceConfig(kind="terminal", lane=1, port=f"tcp://127.0.0.1:{port}", payment_timeout=30)]
    config = msgspec.structs.replace(
        make_store_config(folder, central_url=central_url),
        store=store,
        devices=devices,
        payments=payments or PaymentsConfig(),
    )
    node = StoreNode(config, clock=FixedClock(T0))
    await nursery.start(node.run)
    return node


async def until(till: TillClient, predicate: object) -> SaleState:
    while till.state is None or not predicate(till.state):  # type: ignore[operator]
        await till.pushed.wait()
    return till.state


async def pay_by_card(till: TillClient, command: CardTender | None = None) -> SaleState:
    """Start a card payment and wait for its outcome: the lane as it stands once it is no longer paying."""
    answer = await till.request(command or CardTender())
    assert isinstance(answer, SaleState) and answer.status == "paying", answer
    return await until(till, lambda s: s.status != "paying")


async def next_receipt(till: TillClient, seen: int = 0) -> Receipt:
    """The receipt after the first `seen` that nobody waited for (a sale a card payment closed later)."""
    while len(till.receipts) <= seen:
        await till.pushed.wait()
    return till.receipts[seen]


def journal(node: StoreNode) -> list[SaleRecord]:
    return journal_at(node.config.db_path)


def journal_at(db: Path) -> list[SaleRecord]:
    """A store's journal, read as another process would (read-only, beside the running node)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT body FROM journal ORDER BY lane, receipt_no").fetchall()
    finally:
        conn.close()
    return [decode_record(body) for (body,) in rows]


async def journaled(db: Path, count: int) -> list[SaleRecord]:
    """The journal once it holds `count` records, polled (the node is another process); bound it."""
    while len(rows := await trio.to_thread.run_sync(journal_at, db)) < count:  # noqa: ASYNC110
        await trio.sleep(0.1)
    return rows


async def online(node: StoreNode) -> None:
    up = trio.Event()
    node.link.on_change.append(lambda is_online: up.set() if is_online else None)
    if not node.link.online:
        await up.wait()


async def balance_of(central: CentralNode, card: str) -> int:
    found = await central.db.read(lambda c: giftcards.balance(c, card))
    assert found is not None
    return found.balance


async def selling(till: TillClient, *codes: str) -> None:
    await till.request(Login(operator="1", pin="1234"))
    for code in codes:
        await till.request(Scan(code=code))
