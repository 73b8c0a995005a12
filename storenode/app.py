"""The store node's supervision tree, assembled from its config.

root (one-for-all: the database first, everything else depends on it)
  ├─ database
  ├─ catalog load (transient: runs once per root start)
  ├─ lanes (one-for-one, escalates: a lane that keeps dying means the node is unwell)
  ├─ devices (one-for-one, never escalates: a dead printer must not stop a lane)
  ├─ sync (never escalates: the store sells offline)
  └─ till gateway
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import trio

from devices.printer import FilePrinter
from protocol.frames import ActorStatus, Status
from runtime.clock import Clock, SystemClock
from runtime.database import Database
from runtime.health import HealthBoard
from runtime.supervision import Backoff, ChildSpec, Intensity, Restart, Strategy, Supervisor
from storenode.config import StoreConfig
from storenode.gateway import Gateway
from storenode.journal import chain
from storenode.lanes.lane import Lane, StoreContext
from storenode.schema import MIGRATIONS
from storenode.sync import outbox, replica
from storenode.sync.link import SyncLink
from storenode.sync.outbox import OutboxSignal

log = logging.getLogger(__name__)


class StoreNode:
    def __init__(self, config: StoreConfig, *, clock: Clock | None = None) -> None:
        self.config = config
        config.data_path.mkdir(parents=True, exist_ok=True)
        catalog_path = Path(config.catalog) if config.catalog else replica.demo_catalog_path()
        self.catalog = replica.read_catalog(catalog_path)  # refuse a bad catalogue before anything starts
        self.health = HealthBoard()
        self.db = Database(config.db_path, MIGRATIONS)
        self.signal = OutboxSignal()
        self.printer = FilePrinter("printer", config.data_path / "receipts.escpos", self.health)
        self.ctx = StoreContext(
            config=config,
            db=self.db,
            health=self.health,
            clock=clock or SystemClock(),
            signal=self.signal,
            printer=self.printer,
        )
        self.lanes = {n: Lane(n, self.ctx) for n in config.lanes}
        self.link = SyncLink(config, self.db, self.signal, self.health)
        self.gateway = Gateway(config.gateway.host, config.gateway.port, self.lanes, self.status)

    @property
    def url(self) -> str:
        return f"ws://{self.config.gateway.host}:{self.gateway.bound_port}"

    def tree(self) -> Supervisor:
        lanes = Supervisor(
            "lanes",
            [ChildSpec(lane.name, lane.run) for lane in self.lanes.values()],
            intensity=Intensity(max_restarts=5, within=10.0),
            health=self.health,
        )
        devices = Supervisor(
            "devices",
            [ChildSpec(self.printer.name, self.printer.run)],
            backoff=Backoff(initial=0.5, cap=30.0),
            escalate=False,
            health=self.health,
        )
        sync = Supervisor(
            "sync-supervisor", [ChildSpec(self.link.name, self.link.run)], escalate=False, health=self.health
        )
        return Supervisor(
            "store",
            [
                ChildSpec("database", self.db.run),
                ChildSpec("catalog", self._load_catalog, Restart.TRANSIENT),
                ChildSpec("lanes", lanes.run),
                ChildSpec("devices", devices.run),
                ChildSpec("sync-supervisor", sync.run),
                ChildSpec("gateway", self.gateway.run),
            ],
            strategy=Strategy.ONE_FOR_ALL,
            health=self.health,
        )

    async def _load_catalog(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        operators = await trio.to_thread.run_sync(replica.prepare_operators, self.catalog)
        count = await self.db.write(lambda c: replica.load(c, self.catalog, operators))
        log.info("catalogue loaded: %d items, %d operators", count, len(operators))
        task_status.started()

    async def run(
        self,
        *,
        ready: Callable[[StoreNode], None] | None = None,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.tree().run)
            log.info("store %s ready: tills connect to %s", self.config.store, self.url)
            if ready is not None:
                ready(self)
            task_status.started()

    async def status(self) -> Status:
        backlog, receipts = await self.db.read(lambda c: (outbox.backlog(c), chain.last_receipts(c)))
        return Status(
            store=self.config.store,
            link="online" if self.link.online else "offline",
            outbox=backlog,
            actors=[
                ActorStatus(name=h.name, state=h.state, restarts=h.restarts, last_error=h.last_error, detail=h.detail)
                for h in self.health.snapshot()
            ],
            journal={str(lane): no for lane, no in receipts.items()},
        )
