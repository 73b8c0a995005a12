"""The store's link to central: replays the outbox in order, deletes what central acknowledged.

Connection trouble is the normal case for a store, not a crash: the actor reconnects by itself with
capped, jittered backoff and the lanes never notice. Central tells us in its welcome what it has
already applied, so a resend after any failure starts exactly where central stands; central's
dedupe makes a duplicate harmless anyway.
"""

from __future__ import annotations

import logging
import random

import trio
from trio_websocket import ConnectionClosed, HandshakeError, WebSocketConnection, open_websocket_url

from protocol.codec import LINK_SUBPROTOCOL, FrameError, LinkCodec
from protocol.frames import Ack, EventBatch, LinkError, LinkHello, LinkWelcome
from runtime.database import Database
from runtime.health import HealthBoard
from runtime.supervision import Backoff
from storenode.config import StoreConfig
from storenode.sync import outbox
from storenode.sync.outbox import OutboxSignal

log = logging.getLogger(__name__)

STREAMS = ("journal",)
RECONNECT = Backoff(initial=0.2, cap=10.0, jitter=0.2)


class LinkDown(Exception):
    """Central refused us or stopped answering."""


class SyncLink:
    name = "sync"

    def __init__(
        self,
        config: StoreConfig,
        db: Database,
        signal: OutboxSignal,
        health: HealthBoard,
        *,
        backoff: Backoff = RECONNECT,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.db = db
        self.signal = signal
        self.health = health
        self.backoff = backoff
        self.rng = rng or random.Random()
        self.codec = LinkCodec()
        self.online = False

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        url = self.config.central.url
        task_status.started()
        if not url:
            self.health.set(self.name, "disabled", detail="no central configured")
            await trio.sleep_forever()
        failures = 0
        while True:
            started = trio.current_time()
            try:
                await self._session(url)
            except (OSError, HandshakeError, ConnectionClosed, LinkDown, FrameError, trio.TooSlowError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            else:
                reason = "closed"
            if self.online:
                log.warning("link to central %s down: %s", url, reason)
            self.online = False
            self.health.set(self.name, "offline", error=reason, detail=url)
            failures = 1 if trio.current_time() - started > self.backoff.reset_after else failures + 1
            await trio.sleep(self.backoff.delay(failures, self.rng))

    async def _session(self, url: str) -> None:
        heartbeat = self.config.central.heartbeat
        async with open_websocket_url(url, subprotocols=[LINK_SUBPROTOCOL], connect_timeout=heartbeat * 2) as ws:
            await ws.send_message(self.codec.encode(LinkHello(node=self.config.store, role="store")))
            with trio.fail_after(heartbeat * 2):
                welcome = await self._receive(ws)
            if not isinstance(welcome, LinkWelcome):
                raise LinkDown(f"expected a welcome from central, got {welcome!r}")
            sent: dict[str, int] = {}
            for stream in STREAMS:
                seq = welcome.acked.get(stream, 0)
                await self.db.write(lambda c, s=stream, q=seq: outbox.acknowledge(c, s, q))
                sent[stream] = seq
            self.online = True
            self.health.set(self.name, "online", detail=url)
            log.info("link to central %s up", url)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._heartbeat, ws, heartbeat)
                await self._replay(ws, sent)

    async def _replay(self, ws: WebSocketConnection, sent: dict[str, int]) -> None:
        batch = self.config.central.batch
        timeout = self.config.central.heartbeat * 2
        while True:
            idle = True
            for stream in STREAMS:
                events = await self.db.read(lambda c, s=stream: outbox.pending(c, s, sent[s], batch))
                if not events:
                    continue
                idle = False
                await ws.send_message(
                    self.codec.encode(EventBatch(store=self.config.store, stream=stream, events=events))
                )
                with trio.fail_after(timeout):
                    ack = await self._receive(ws)
                if not isinstance(ack, Ack) or ack.stream != stream:
                    raise LinkDown(f"expected an ack for {stream}, got {ack!r}")
                await self.db.write(lambda c, s=stream, q=ack.seq: outbox.acknowledge(c, s, q))
                if ack.seq < events[-1].seq:
                    # Central applied less than we sent (it saw a gap): resend from its position.
                    log.warning("central acked %s up to %d of %d; resending", stream, ack.seq, events[-1].seq)
                sent[stream] = ack.seq
            if idle:
                with trio.move_on_after(timeout):
                    await self.signal.wait()

    async def _receive(self, ws: WebSocketConnection) -> object:
        frame = self.codec.decode(await ws.get_message())
        if isinstance(frame, LinkError):
            raise LinkDown(f"central refused: {frame.code}: {frame.message}")
        return frame

    async def _heartbeat(self, ws: WebSocketConnection, interval: float) -> None:
        while True:
            await trio.sleep(interval)
            with trio.fail_after(interval * 2):
                await ws.ping()
