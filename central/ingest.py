"""Store links at central: hello, then event batches applied exactly once and acknowledged, and
questions from the store (stock elsewhere, gift cards, rates, customers) answered on the same link.

The hello, heartbeat answers and questions by id are the session's (protocol.link), the same code
the store runs; what is central's own is here: the welcome (what central has applied of each
stream), applying batches, catalogue pulls. Central does not ping stores: the store pings, and a
store that reconnects replaces its old link here; central's own questions are bounded anyway.

A batch that cannot be applied (undecodable, inconsistent) is refused whole with an error frame and
the link stays up; the store keeps it in its outbox, so nothing is lost while someone looks at it.
A batch refused as untrusted (a bad signature, a broken chain, a receipt gap, another event under a
used seq, an unknown key: central/registers/sales.py and cursors.py) is also kept as an alarm
(central/registers/alarms.py); after a conflict every later batch of that stream in the session is
refused too, since acks are cumulative (see _apply_batches).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from functools import partial
from typing import Any

import msgspec
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest

from central import distribute, questions
from central.distribute import Distributor
from central.reconcile import reconcile
from central.registers import alarms, cursors, giftcards, sales, stock
from central.registers.cursors import Applier, EventError
from protocol.codec import ADMIN_SUBPROTOCOL, LINK_SUBPROTOCOL, FrameError, LinkCodec
from protocol.frames import (
    LINK_VERSION,
    Ack,
    CatalogPull,
    EventBatch,
    LinkError,
    LinkHello,
    LinkReply,
    LinkRequest,
    LinkWelcome,
    Stream,
)
from protocol.link import Incompatible, Refused, Session, SessionError, accept
from runtime.database import Database

log = logging.getLogger(__name__)

HELLO_TIMEOUT = 10.0
QUEUED_BATCHES = 8
ADMIN_TIMEOUT = 120.0
STORE_ASK_TIMEOUT = 60.0  # one question to a store (a page of its journal); ADMIN_TIMEOUT bounds the whole
APPLIERS: dict[str, Applier] = {  # the journal's is made per batch (sales.Incoming verifies as it goes)
    Stream.STOCK: stock.apply,
    Stream.GIFTCARD: giftcards.apply,
}
STREAMS = {Stream.JOURNAL, *APPLIERS}


class StoreNotConnected(Exception):
    pass


class _StoreLink:
    """A connected store: its session, so central can ask it questions (reconciliation) on its link."""

    def __init__(self, ws: WebSocketConnection, store: str, session: Session) -> None:
        self.ws = ws
        self.store = store
        self.session = session


class Ingest:
    def __init__(self, node: str, db: Database) -> None:
        self.node = node
        self.db = db
        self.codec = LinkCodec()
        self.version = LINK_VERSION  # the link protocol central speaks (tests play another central)
        self.links: dict[str, _StoreLink] = {}  # the newest link of each connected store
        self.chunk_rows = distribute.CHUNK_ROWS  # rows per catalogue chunk (tests make transfers long)
        self.distributor = Distributor(db, lambda: {s: link.ws.send_message for s, link in self.links.items()})

    async def serve(self, request: WebSocketRequest) -> None:
        if ADMIN_SUBPROTOCOL in request.proposed_subprotocols:
            await self._admin(await request.accept(subprotocol=ADMIN_SUBPROTOCOL))
            return
        if LINK_SUBPROTOCOL not in request.proposed_subprotocols:
            expected = f"expected subprotocol {LINK_SUBPROTOCOL} or {ADMIN_SUBPROTOCOL}"
            await request.reject(400, body=expected.encode())
            return
        ws = await request.accept(subprotocol=LINK_SUBPROTOCOL)
        link: _StoreLink | None = None

        async def welcome(hello: LinkHello) -> LinkWelcome:
            # Registered before the welcome is built: a catalogue committed from here on is announced to it.
            nonlocal link
            store = hello.node
            session = Session(
                ws, f"store {store}", partial(questions.answer, self.db, store), ask_timeout=STORE_ASK_TIMEOUT
            )
            link = self.links[store] = _StoreLink(ws, store, session)
            acked = await self.db.read(lambda c: cursors.cursors(c, store))
            return LinkWelcome(
                node=self.node, acked=acked, catalog=self.distributor.version, catalog_epoch=self.distributor.epoch
            )

        try:
            with trio.fail_after(HELLO_TIMEOUT):
                await accept(ws, welcome, node=self.node, version=self.version)
            assert link is not None
            await self._session(link)
        except (ConnectionClosed, trio.TooSlowError, Incompatible, Refused):
            pass  # a refusal is logged where it is made, and the store was told why
        except Exception:
            log.exception("store link %s failed", link.store if link else "(before hello)")
        finally:
            if link is not None and self.links.get(link.store) is link:
                del self.links[link.store]

    async def _send_error(self, ws: WebSocketConnection, code: str, message: str) -> None:
        await ws.send_message(self.codec.encode(LinkError(code=code, message=message)))

    async def _session(self, link: _StoreLink) -> None:
        """Read frames on one task and apply batches on another, so batches that arrive while one
        commits are applied together: one durable commit for all of them, as the store's window of
        batches in flight intends. The bounded queue between them is backpressure on the store."""
        send, receive = trio.open_memory_channel[EventBatch](QUEUED_BATCHES)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._applier, link, receive, nursery.cancel_scope)
            try:
                await link.session.run(partial(self._message, link, send))
            except ConnectionClosed:
                nursery.cancel_scope.cancel()

    async def _applier(
        self,
        link: _StoreLink,
        receive: trio.MemoryReceiveChannel[EventBatch],
        session: trio.CancelScope,
    ) -> None:
        store = link.store
        refused: dict[str, str] = {}  # stream -> why a batch of it was refused in this session
        try:
            async for first in receive:
                batches = [first]
                while True:
                    try:
                        batches.append(receive.receive_nowait())
                    except trio.WouldBlock:
                        break
                outcomes = await self.db.write(
                    partial(_apply_batches, store=store, batches=batches, refused=refused), durable=True
                )
                for batch, outcome in zip(batches, outcomes, strict=True):
                    if isinstance(outcome, EventError):
                        level = logging.ERROR if outcome.alarm else logging.WARNING
                        log.log(level, "refused a batch from %s: %s: %s", store, outcome.code, outcome)
                        await self._send_error(link.ws, outcome.code, str(outcome))
                    elif isinstance(outcome, Exception):
                        log.warning("refused a batch from %s: %s", store, outcome)
                        await self._send_error(link.ws, "bad_batch", str(outcome))
                    else:
                        seq, gap = outcome
                        await link.session.send(Ack(store=store, stream=batch.stream, seq=seq, gap=gap))
        except ConnectionClosed:
            session.cancel()

    async def _message(self, link: _StoreLink, batches: trio.MemorySendChannel[EventBatch], frame: Any) -> None:
        """A store's frame that is not the session's own (answers, questions, pings are)."""
        store, ws = link.store, link.ws
        if isinstance(frame, CatalogPull):
            try:
                chunk = await self.db.read(lambda c: distribute.read_chunk(c, store, frame, rows=self.chunk_rows))
            except distribute.BadPull as exc:
                await self._send_error(ws, "bad_pull", str(exc))
                return
            await link.session.send(chunk)
            return
        if isinstance(frame, LinkError):
            log.warning("store %s reports: %s: %s", store, frame.code, frame.message)
            return
        if not isinstance(frame, EventBatch) or frame.store != store:
            await self._send_error(ws, "unexpected", f"expected an event batch for {store}, got {type(frame).__name__}")
            return
        if frame.stream not in STREAMS:
            await self._send_error(ws, "bad_batch", f"unknown stream {frame.stream!r}")
            return
        await batches.send(frame)

    async def _admin(self, ws: WebSocketConnection) -> None:
        """Operator tools: one question per request, answered on the same connection."""
        try:
            while True:
                try:
                    request = self.codec.decode(await ws.get_message())
                except FrameError as exc:
                    await self._send_error(ws, "bad_frame", str(exc))
                    continue
                if not isinstance(request, LinkRequest):
                    await self._send_error(ws, "unexpected", "operator tools send requests")
                    continue
                await ws.send_message(self.codec.encode(await self._admin_answer(request)))
        except ConnectionClosed:
            pass

    async def _admin_answer(self, request: LinkRequest) -> LinkReply:
        if request.kind != "reconcile":
            return LinkReply(id=request.id, ok=False, error=f"unknown request {request.kind!r}")
        try:
            store = msgspec.msgpack.decode(request.body, type=str)
            link = self.links.get(store)
            if link is None:
                raise StoreNotConnected(f"store {store} is not connected to central")
            with trio.fail_after(ADMIN_TIMEOUT):
                report = await reconcile(store, self.db, link.session.ask)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return LinkReply(id=request.id, ok=False, error=f"bad reconcile request: {exc}")
        except (StoreNotConnected, SessionError) as exc:
            return LinkReply(id=request.id, ok=False, error=str(exc))
        except trio.TooSlowError:
            return LinkReply(id=request.id, ok=False, error=f"store did not answer within {ADMIN_TIMEOUT:g} s")
        return LinkReply(id=request.id, ok=True, body=msgspec.msgpack.encode(report))


_Outcome = tuple[int, bool] | Exception  # the seq to acknowledge and whether a gap stopped the batch; or why not


def _apply_batches(
    conn: sqlite3.Connection, store: str, batches: list[EventBatch], refused: dict[str, str]
) -> list[_Outcome]:
    """Each batch in order; once one of a stream is refused as a conflict, the session's later ones of
    that stream are refused unapplied: acks are cumulative, and central does hold *something* under the
    conflicting seq, so an ack of a later batch would cover it and the store would delete its own event.
    (Other refused events are not held: a later batch stops at the gap they leave.)"""
    outcomes: list[_Outcome] = []
    for batch in batches:
        earlier = refused.get(batch.stream)
        if earlier is not None:
            outcomes.append(
                EventError(f"stream {batch.stream}: an earlier batch of this session was refused ({earlier})")
            )
            continue
        outcome = _apply_batch(conn, store, batch)
        if isinstance(outcome, EventError) and outcome.code == "conflict":
            first = batch.events[0].seq if batch.events else 0
            refused[batch.stream] = f"from seq {first}: {outcome}"[:200]
        outcomes.append(outcome)
    return outcomes


def _apply_batch(conn: sqlite3.Connection, store: str, batch: EventBatch) -> _Outcome:
    """One batch in its own savepoint: a bad batch is refused alone and nothing of it is kept; an
    untrusted one is kept as an alarm, outside the savepoint, so the alarm outlives the rollback."""
    conn.execute("SAVEPOINT batch")
    try:
        if batch.stream == Stream.JOURNAL:
            journal = sales.Incoming(conn, store)
            outcome = cursors.apply_in_order(conn, store, batch.stream, batch.events, journal, sales.same)
            journal.verify_heads()
        else:
            outcome = cursors.apply_in_order(conn, store, batch.stream, batch.events, APPLIERS[batch.stream])
    except (EventError, FrameError, sqlite3.IntegrityError) as exc:
        conn.execute("ROLLBACK TO batch")
        conn.execute("RELEASE batch")
        if isinstance(exc, EventError) and exc.alarm:
            alarms.raise_alarm(conn, store, exc.code, str(exc), int(time.time() * 1000))
        return exc
    conn.execute("RELEASE batch")
    return outcome
