"""Central's supervision tree: the database first, then the store-link server (one-for-all)."""

from __future__ import annotations

import logging
import ssl
from functools import partial
from pathlib import Path

import trio

from central.ingest import Ingest
from central.schema import MIGRATIONS
from protocol.websocket import HANDSHAKE_TIMEOUT, serve
from runtime.database import Database
from runtime.health import HealthBoard
from runtime.supervision import ChildSpec, Strategy, Supervisor

log = logging.getLogger(__name__)

# Connections one address may hold open at central at once. Each store holds one link, and the operator's
# tools one each while they run; stores behind one NAT share an address, so a chain like that raises it
# (`central run --per-address`). What it stops: one machine holding every descriptor with handshakes.
PER_ADDRESS = 64


class CentralNode:
    def __init__(
        self,
        db_path: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 8700,
        node: str = "central",
        chunk_rows: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
        per_address: int = PER_ADDRESS,
    ) -> None:
        """`ssl_context`: central's certificate (protocol.tls.server_context); without it central
        serves plain ws, which only `central run --insecure` and a few tests ask for. `per_address`
        (0: none) bounds the connections one address holds open, proven or not (protocol.admission)."""
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.handshake_timeout = handshake_timeout
        self.per_address = per_address
        self.health = HealthBoard()
        self.db = Database(db_path, MIGRATIONS)
        self.ingest = Ingest(node, self.db)
        if chunk_rows is not None:  # small chunks make a transfer long enough to cut (crash tests)
            self.ingest.chunk_rows = chunk_rows
        self.bound_port = 0
        self.listening = trio.Event()  # set once stores can connect: the node is ready only then

    @property
    def url(self) -> str:
        return f"{'wss' if self.ssl_context else 'ws'}://{self.host}:{self.bound_port}"

    async def _serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self.bound_port = await nursery.start(
                partial(
                    serve,
                    self.ingest.serve,
                    self.host,
                    self.port,
                    "stores",
                    ssl_context=self.ssl_context,
                    handshake_timeout=self.handshake_timeout,
                    per_address=self.per_address,
                )
            )
            self.listening.set()
            task_status.started()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        root = Supervisor(
            "central",
            [
                ChildSpec("database", self.db.run),
                ChildSpec("distributor", self.ingest.distributor.run),
                ChildSpec("links", self._serve),
            ],
            strategy=Strategy.ONE_FOR_ALL,
            health=self.health,
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(root.run)
            await self.listening.wait()  # a supervisor is "started" even while a child retries
            log.info("central ready: stores connect to %s", self.url)
            task_status.started()
