"""Waiting on what a test watches, on an event wherever one exists: a till's push, the link's change, the
outbox's count (OutboxSignal.wait_empty). Only `journaled` polls: it watches a file another process
writes. The product has waits of its own for the rest (HealthBoard.wait_until, the catalogue follower's
wait_version, the simulators' wait_until). Callers bound every wait with trio.fail_after."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import trio

from protocol.frames import Receipt, SaleRecord, SaleState
from storenode.app import StoreNode
from tests.kit.journal import journal_at
from till.client import TillClient


async def until(till: TillClient, predicate: Callable[[SaleState], bool]) -> SaleState:
    """The lane's state once `predicate` holds for it, woken by each push to the till."""
    while till.state is None or not predicate(till.state):
        await till.pushed.wait()
    return till.state


async def next_receipt(till: TillClient, seen: int = 0) -> Receipt:
    """The receipt after the first `seen` that nobody waited for (a sale a card payment closed later)."""
    while len(till.receipts) <= seen:
        await till.pushed.wait()
    return till.receipts[seen]


async def online(node: StoreNode) -> None:
    up = trio.Event()
    node.link.on_change.append(lambda is_online: up.set() if is_online else None)
    if not node.link.online:
        await up.wait()


async def offline(node: StoreNode) -> None:
    down = trio.Event()
    node.link.on_change.append(lambda is_online: None if is_online else down.set())
    if node.link.online:
        await down.wait()


async def drained(*stores: StoreNode) -> None:
    """Until every store's outbox is empty (central acknowledged all of it) while its link is up."""
    for store in stores:
        while store.signal.backlog or not store.link.online:
            await online(store)
            await store.signal.wait_empty()


async def journaled(db: Path, count: int) -> list[SaleRecord]:
    """The journal once it holds `count` records, polled (the node is another process); bound it."""
    while len(rows := await trio.to_thread.run_sync(journal_at, db)) < count:  # noqa: ASYNC110
        await trio.sleep(0.1)
    return rows
