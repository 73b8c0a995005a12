"""The store's link to central: replays the outbox in order, deletes what central acknowledged.

Connection trouble is the normal case for a store, not a crash: the actor reconnects by itself with
capped, jittered backoff and the lanes never notice. Central says in its welcome what it has already
applied, so a resend after any failure starts exactly where central stands; central's dedupe makes
a duplicate harmless anyway.

Replay is pipelined: up to `window` batches are in flight while acks (cumulative, highest
contiguous seq) come back on their own task. Memory stays bounded however long the backlog is: the
outbox is read from the database a batch at a time, never loaded whole. A link that stops making
progress (no pong, no ack advancing while batches are in flight) is declared down and rebuilt.
"""

from __future__ import annotations

import itertools
import logging
import random
import sqlite3
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

import msgspec
import trio
from trio_websocket import ConnectionClosed, HandshakeError, WebSocketConnection

from protocol.codec import LINK_SUBPROTOCOL, FrameError, LinkCodec
from protocol.frames import (
    Ack,
    CatalogChunk,
    CatalogNotice,
    EventBatch,
    JournalEntry,
    JournalPage,
    JournalPageQuery,
    LinkError,
    LinkHello,
    LinkReply,
    LinkRequest,
    LinkWelcome,
)
from protocol.websocket import dial
from runtime.database import Database
from runtime.health import HealthBoard
from runtime.supervision import Backoff
from storenode.config import StoreConfig
from storenode.journal import chain
from storenode.sync import outbox
from storenode.sync.catalog import CatalogFollower
from storenode.sync.outbox import OutboxSignal

log = logging.getLogger(__name__)

STREAMS = ("journal", "stock", "giftcard")
RECONNECT = Backoff(initial=0.2, cap=10.0, jitter=0.2)


class LinkDown(Exception):
    """Central refused us or stopped answering."""


class Offline(Exception):
    """Asked something only central knows while central is unreachable."""


QUESTION_TIMEOUT = 3.0  # a stock, gift card, customer or rate question to central; then the offline rules apply
NO_ANSWER = (Offline, trio.TooSlowError, msgspec.DecodeError, msgspec.ValidationError)  # central said nothing usable
T = TypeVar("T")


async def question(ask: Callable[[str, bytes], Awaitable[bytes]], kind: str, body: bytes, answer: type[T]) -> T:
    """Central's answer to one question, decoded. Raises LinkDown when central answered that it cannot
    (an unknown card or customer), one of NO_ANSWER when it did not answer in time or usably."""
    with trio.fail_after(QUESTION_TIMEOUT):
        reply = await ask(kind, body)
    return msgspec.msgpack.decode(reply, type=answer)


class _Stream:
    """Replay position of one stream in the current session."""

    def __init__(self, acked: int) -> None:
        self.acked = acked  # central has applied everything up to here
        self.sent = acked  # we have sent everything up to here
        self.last_progress = trio.current_time()


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
        window: int = 4,
        catalog: CatalogFollower | None = None,
    ) -> None:
        self.config = config
        self.db = db
        self.signal = signal
        self.health = health
        self.backoff = backoff
        self.rng = rng or random.Random()
        self.window = window
        self.catalog = catalog  # keeps the master-data replica following central while the link is up
        self.codec = LinkCodec()
        self.online = False
        self.on_change: list[Callable[[bool], None]] = []  # told whenever online flips
        self._ws: WebSocketConnection | None = None
        self._ids = itertools.count(1)
        self._replies: dict[int, trio.MemorySendChannel[LinkReply]] = {}
        self._progress = trio.Event()

    def _set_online(self, online: bool, *, error: str | None = None) -> None:
        changed = online != self.online
        self.online = online
        self.health.set(self.name, "online" if online else "offline", error=error, detail=self.config.central.url)
        if changed:
            for hook in self.on_change:
                hook(online)

    async def ask(self, kind: str, body: bytes = b"") -> bytes:
        """Ask central a question; raises Offline at once when the link is down, so a till gets a
        clear answer instead of hanging. Bound it with trio.fail_after."""
        ws = self._ws
        if ws is None or not self.online:
            raise Offline("central is unreachable")
        request_id = next(self._ids)
        send, receive = trio.open_memory_channel[LinkReply](1)
        self._replies[request_id] = send
        try:
            await ws.send_message(self.codec.encode(LinkRequest(id=request_id, kind=kind, body=body)))
            try:
                reply = await receive.receive()
            except trio.EndOfChannel:
                raise Offline("the link to central dropped before it answered") from None
        except ConnectionClosed:
            raise Offline("the link to central dropped before it answered") from None
        finally:
            self._replies.pop(request_id, None)
        if not reply.ok:
            raise LinkDown(f"central could not answer {kind}: {reply.error}")
        return reply.body

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        url = self.config.central.url
        self.signal.backlog = await self.db.read(outbox.backlog)
        task_status.started()
        if not url:
            self.health.set(self.name, "disabled", detail="no central configured")
            await trio.sleep_forever()
        failures = 0
        while True:
            started = trio.current_time()
            try:
                await self._session(url)
            except (OSError, HandshakeError, ConnectionClosed, LinkDown, Offline, FrameError, trio.TooSlowError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            else:
                reason = "closed"
            if self.online:
                log.warning("link to central %s down: %s", url, reason)
            self._ws = None
            for waiter in self._replies.values():
                waiter.close()
            self._set_online(False, error=reason)
            failures = 1 if trio.current_time() - started > self.backoff.reset_after else failures + 1
            await trio.sleep(self.backoff.delay(failures, self.rng))

    async def _session(self, url: str) -> None:
        heartbeat = self.config.central.heartbeat
        async with dial(url, subprotocols=[LINK_SUBPROTOCOL], connect_timeout=heartbeat * 2) as ws:
            await ws.send_message(self.codec.encode(LinkHello(node=self.config.store, role="store")))
            with trio.fail_after(heartbeat * 2):
                welcome = self.codec.decode(await ws.get_message())
            if isinstance(welcome, LinkError):
                raise LinkDown(f"central refused: {welcome.code}: {welcome.message}")
            if not isinstance(welcome, LinkWelcome):
                raise LinkDown(f"expected a welcome from central, got {type(welcome).__name__}")
            streams = {name: _Stream(welcome.acked.get(name, 0)) for name in STREAMS}
            for name, stream in streams.items():
                await self.db.write(partial(outbox.acknowledge, stream=name, upto=stream.acked))
            self.signal.backlog = await self.db.read(outbox.backlog)
            if self.catalog is not None:
                self.catalog.announced(welcome.catalog, welcome.catalog_epoch)
            self._ws = ws
            self._set_online(True)
            log.info("link to central %s up", url)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._heartbeat, heartbeat)
                    nursery.start_soon(self._receiver, ws, streams)
                    if self.catalog is not None:
                        nursery.start_soon(self.catalog.follow, ws.send_message)
                    await self._sender(ws, streams)
            except BaseExceptionGroup as group:
                # One failing task ends the session; report the first cause plainly.
                first = group.exceptions[0]
                if isinstance(first, Exception) and len(group.exceptions) == 1:
                    raise first from None
                raise

    async def _sender(self, ws: WebSocketConnection, streams: dict[str, _Stream]) -> None:
        batch = self.config.central.batch
        stall = self.config.central.heartbeat * 4
        while True:
            sent_any = False
            for name, stream in streams.items():
                if stream.sent - stream.acked >= self.window * batch:
                    continue  # window full: wait for acks
                events = await self.db.read(partial(outbox.pending, stream=name, after=stream.sent, limit=batch))
                if not events:
                    continue
                if stream.sent == stream.acked:
                    stream.last_progress = trio.current_time()  # the stall clock starts with the first batch
                await ws.send_message(
                    self.codec.encode(EventBatch(store=self.config.store, stream=name, events=events))
                )
                stream.sent = events[-1].seq
                sent_any = True
            if sent_any:
                continue
            now = trio.current_time()
            for name, stream in streams.items():
                if stream.sent > stream.acked and now - stream.last_progress > stall:
                    raise LinkDown(f"central stopped acknowledging {name} at {stream.acked} (sent {stream.sent})")
            with trio.move_on_after(stall / 2):
                async with trio.open_nursery() as waiters:  # whichever comes first: new events or an ack
                    waiters.start_soon(self._wake_on, self.signal.wait, waiters.cancel_scope)
                    waiters.start_soon(self._wake_on, self._progress.wait, waiters.cancel_scope)

    @staticmethod
    async def _wake_on(wait: Callable[[], Awaitable[None]], scope: trio.CancelScope) -> None:
        await wait()
        scope.cancel()

    async def _receiver(self, ws: WebSocketConnection, streams: dict[str, _Stream]) -> None:
        while True:
            frame = self.codec.decode(await ws.get_message())
            if isinstance(frame, Ack):
                stream = streams.get(frame.stream)
                if stream is None:
                    continue
                if frame.gap and frame.seq >= stream.acked:
                    # Central saw events out of order and kept none past the hole: resend from there.
                    stream.sent = max(frame.seq, stream.acked)
                    self._progress.set()
                    self._progress = trio.Event()
                if frame.seq <= stream.acked:
                    continue  # a duplicate or stale ack: acks are cumulative, the newest wins
                self.signal.acknowledged(frame.seq - stream.acked)
                stream.acked = frame.seq
                stream.last_progress = trio.current_time()
                if stream.sent < stream.acked:
                    stream.sent = stream.acked
                await self.db.write(partial(outbox.acknowledge, stream=frame.stream, upto=frame.seq))
                self._progress.set()
                self._progress = trio.Event()
            elif isinstance(frame, LinkReply):
                waiter = self._replies.pop(frame.id, None)
                if waiter is not None:
                    waiter.send_nowait(frame)
            elif isinstance(frame, LinkRequest):
                await ws.send_message(self.codec.encode(await self._answer(frame)))
            elif isinstance(frame, CatalogChunk | CatalogNotice) and self.catalog is not None:
                if isinstance(frame, CatalogChunk):
                    self.catalog.received(frame)
                else:
                    self.catalog.announced(frame.version)
            elif isinstance(frame, LinkError) and frame.code == "bad_pull" and self.catalog is not None:
                self.catalog.refused(frame.message)
            elif isinstance(frame, LinkError):
                raise LinkDown(f"central refused: {frame.code}: {frame.message}")
            else:
                log.warning("unexpected %s from central; ignored", type(frame).__name__)

    async def _answer(self, request: LinkRequest) -> LinkReply:
        """Central's questions about this store's journal (for reconciliation)."""
        try:
            if request.kind == "lanes?":
                lanes = await self.db.read(chain.last_receipts)
                return LinkReply(id=request.id, ok=True, body=msgspec.msgpack.encode(lanes))
            if request.kind == "journal?":
                query = msgspec.msgpack.decode(request.body, type=JournalPageQuery)
                limit = min(max(query.limit, 1), 10_000)

                def read(c: sqlite3.Connection) -> JournalPage:
                    oldest = outbox.oldest_unacked(c, "journal")
                    rows = chain.page(c, query.lane, query.after, limit)
                    entries = [
                        JournalEntry(receipt_no=n, hash=h, pending=oldest is not None and seq >= oldest > 0)
                        for n, h, seq in rows
                    ]
                    return JournalPage(lane=query.lane, entries=entries)

                page = await self.db.read(read)
                return LinkReply(id=request.id, ok=True, body=msgspec.msgpack.encode(page))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return LinkReply(id=request.id, ok=False, error=f"bad {request.kind} question: {exc}")
        return LinkReply(id=request.id, ok=False, error=f"unknown question {request.kind!r}")

    async def _heartbeat(self, interval: float) -> None:
        """An application-level ping that central itself answers: a websocket ping would be answered
        by any proxy or by a central whose link handler is stuck, and prove nothing about either."""
        while True:
            await trio.sleep(interval)
            with trio.fail_after(interval * 2):
                await self.ask("ping?")
