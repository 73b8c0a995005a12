"""Store links at central: hello, then event batches applied exactly once and acknowledged, and
questions from the store (stock elsewhere, gift cards, rates, customers) answered on the same link.

The hello, heartbeat answers and questions by id are the session's (protocol.link), the same code
the store runs; what is central's own is here: who a store is (the registry, central.registers.
identities, names the key a hello must prove; an enrolment or rotation is made durable once proven),
the welcome (what central has applied of each stream), applying batches, catalogue pulls. Central
does not ping stores: the store pings; central's own questions are bounded anyway.

One live session per store: a store that reconnects and proves itself replaces its old session,
which is ended at once (logged). A hello that does not prove itself never reaches the welcome, so it
never touches the registered session of the store it claims to be, not even when it disconnects. A
store revoked while connected is told so and its session ended within REVOCATION_CHECK seconds (the
operator's command runs in another process, so central looks rather than being told).

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
from contextlib import suppress
from functools import partial
from typing import Any

import msgspec
import trio
from trio_websocket import ConnectionClosed, Endpoint, WebSocketConnection, WebSocketRequest

from central import distribute, operators, questions
from central.distribute import Distributor
from central.reconcile import reconcile
from central.registers import alarms, cursors, giftcards, identities, sales, stock
from central.registers.cursors import Applier, EventError
from protocol.codec import ADMIN_SUBPROTOCOL, LINK_SUBPROTOCOL, FrameError, LinkCodec
from protocol.frames import (
    LINK_VERSION,
    Ack,
    AdminHello,
    AdminWelcome,
    CatalogPull,
    EventBatch,
    LinkError,
    LinkHello,
    LinkReply,
    LinkRequest,
    LinkWelcome,
    Stream,
)
from protocol.identity import key_id
from protocol.link import Incompatible, Refused, Session, SessionError, accept
from runtime.clock import SystemClock
from runtime.database import Database

log = logging.getLogger(__name__)

HELLO_TIMEOUT = 10.0
QUEUED_BATCHES = 8
ADMIN_TIMEOUT = 120.0
ADMIN_HELLO_BYTES = 1024  # an operator's hello is a token (central/operators.py MAX_TOKEN) and a few bytes
STORE_ASK_TIMEOUT = 60.0  # one question to a store (a page of its journal); ADMIN_TIMEOUT bounds the whole
REVOCATION_CHECK = 5.0  # seconds between looks at whether a connected store was revoked meanwhile
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
        self.scope = trio.CancelScope()  # cancelled when a newer proven session of the store replaces this one


class Ingest:
    def __init__(self, node: str, db: Database) -> None:
        self.node = node
        self.db = db
        self.codec = LinkCodec()
        self.version = LINK_VERSION  # the link protocol central speaks (tests play another central)
        self.links: dict[str, _StoreLink] = {}  # the newest link of each connected store
        self.chunk_rows = distribute.CHUNK_ROWS  # rows per catalogue chunk (tests make transfers long)
        self.distributor = Distributor(db, lambda: {s: link.ws.send_message for s, link in self.links.items()})
        self.now = SystemClock().now_ms  # token expiry and key times (tests move it)
        self.revocation_check = REVOCATION_CHECK

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
        claimed: identities.Claim | None = None

        async def identify(hello: LinkHello) -> bytes:
            nonlocal claimed
            try:
                claimed = await self.db.read(partial(identities.claim, hello=hello, now=self.now()))
            except identities.IdentityError as exc:
                raise Refused(str(exc), exc.code) from None
            return claimed.public

        async def welcome(hello: LinkHello) -> LinkWelcome:
            # Only a proven store gets here. Registered before the welcome is built: a catalogue
            # committed from here on is announced to it.
            nonlocal link
            store = hello.node
            assert claimed is not None
            if claimed.action != "known":
                await self._settle(hello)
            session = Session(
                ws, f"store {store}", partial(questions.answer, self.db, store), ask_timeout=STORE_ASK_TIMEOUT
            )
            link = _StoreLink(ws, store, session)
            older = self.links.get(store)
            self.links[store] = link
            if older is not None:
                log.warning("store %s proved itself on a new connection: its older session is ended", store)
                older.scope.cancel()
            acked = await self.db.read(lambda c: cursors.cursors(c, store))
            return LinkWelcome(
                node=self.node, acked=acked, catalog=self.distributor.version, catalog_epoch=self.distributor.epoch
            )

        try:
            with trio.fail_after(HELLO_TIMEOUT):
                await accept(ws, welcome, node=self.node, identify=identify, version=self.version)
            assert link is not None
            with link.scope:
                await self._session(link)
        except (ConnectionClosed, trio.TooSlowError, Incompatible, Refused):
            pass  # a refusal is logged where it is made, and the store was told why
        except Exception:
            log.exception("store link %s failed", link.store if link else "(before hello)")
        finally:
            if link is not None and self.links.get(link.store) is link:
                del self.links[link.store]

    async def _settle(self, hello: LinkHello) -> None:
        """A proven enrolment or rotation, made durable before the store is welcomed (and so before it
        forgets its token or old key)."""
        try:
            done = await self.db.write(partial(identities.settle, hello=hello, now=self.now()), durable=True)
        except identities.IdentityError as exc:
            raise Refused(str(exc), exc.code) from None
        if done.action == "enrol":
            log.info("store %s enrolled with key %s", done.store, key_id(done.public))
        elif done.action == "rotate":
            log.info("store %s rotated its key %s -> %s", done.store, key_id(done.previous), key_id(done.public))

    async def _still_enrolled(self, link: _StoreLink) -> None:
        """End the session of a store revoked while connected (the operator revokes from another process)."""
        while True:
            await trio.sleep(self.revocation_check)
            if await self.db.read(partial(identities.status, store=link.store)) == "revoked":
                log.warning("store %s was revoked at central: its session is ended", link.store)
                with suppress(ConnectionClosed):
                    await self._send_error(link.ws, identities.REVOKED, f"store {link.store} is revoked at central")
                link.scope.cancel()
                return

    async def _send_error(self, ws: WebSocketConnection, code: str, message: str) -> None:
        await ws.send_message(self.codec.encode(LinkError(code=code, message=message)))

    async def _session(self, link: _StoreLink) -> None:
        """Read frames on one task and apply batches on another, so batches that arrive while one
        commits are applied together: one durable commit for all of them, as the store's window of
        batches in flight intends. The bounded queue between them is backpressure on the store."""
        send, receive = trio.open_memory_channel[EventBatch](QUEUED_BATCHES)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._applier, link, receive, nursery.cancel_scope)
            nursery.start_soon(self._still_enrolled, link)
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
        """Operator tools: the operator token first (central/operators.py), then one question per request,
        answered on the same connection. A tool that does not prove itself gets one refusal and the door."""
        try:
            if not await self._operator(ws):
                await ws.aclose(code=1008, reason="operator token refused")  # 1008: policy violation
                return
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

    async def _operator(self, ws: WebSocketConnection) -> bool:
        """Whether the tool's first frame, within HELLO_TIMEOUT and ADMIN_HELLO_BYTES, names the operator
        token in central's folder; it was told either way, and a refusal is logged."""
        remote = ws.remote
        who = f"{remote.address}:{remote.port}" if isinstance(remote, Endpoint) else str(remote)
        try:
            with trio.fail_after(HELLO_TIMEOUT):
                data = await ws.get_message()
        except trio.TooSlowError:
            return await self._refuse_operator(ws, who, "timeout", f"no operator token within {HELLO_TIMEOUT:g} s")
        if len(data) > ADMIN_HELLO_BYTES:
            return await self._refuse_operator(ws, who, "bad_frame", f"a hello is at most {ADMIN_HELLO_BYTES} bytes")
        try:
            hello = self.codec.decode(data)
        except FrameError:
            hello = None
        if not isinstance(hello, AdminHello):
            return await self._refuse_operator(ws, who, "unauthorised", "an operator tool presents its token first")
        try:
            expected = await trio.to_thread.run_sync(operators.read_token, self.db.path.parent)
        except operators.TokenError as exc:
            log.error("operator tool from %s refused: central has no usable operator token: %s", who, exc)
            await self._send_error(ws, "unauthorised", "central has no operator token; run storepos central init")
            return False
        if not operators.matches(expected, hello.token):
            return await self._refuse_operator(ws, who, "unauthorised", "wrong operator token")
        await ws.send_message(self.codec.encode(AdminWelcome(node=self.node)))
        log.info("operator tool from %s authenticated", who)
        return True

    async def _refuse_operator(self, ws: WebSocketConnection, who: str, code: str, why: str) -> bool:
        log.warning("operator tool from %s refused: %s", who, why)
        await self._send_error(ws, code, why)
        return False

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
