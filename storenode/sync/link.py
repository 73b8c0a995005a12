"""The store's link to central: replays the outbox in order, deletes what central acknowledged.

Connection trouble is the normal case for a store, not a crash: the actor reconnects by itself with
capped, jittered backoff and the lanes never notice.

What the store deletes is decided by the store alone: an outbox event goes only once central has
acknowledged it *in this session*, and only if this session sent it. So every session resends from
the oldest event still in the outbox (central acknowledges an identical resend by its digest, without
applying it twice); the welcome's cursors delete nothing, since whoever answers at central's URL
writes them. An ack beyond what this session sent, or a welcome claiming more than this store ever
numbered, is an alarm (logged ERROR, kept on the health board under "sync-alarms"), and nothing is
deleted for it. A batch central refuses (a LinkError: a conflict, a bad signature...) ends the
session; its events stay in the outbox and the refusal stays on the sync actor's health, which
`storepos store status` shows, until central acknowledges past it.

Replay is pipelined: up to `window` batches are in flight while acks (cumulative, highest
contiguous seq) come back on their own task. Memory stays bounded however long the backlog is: the
outbox is read from the database a batch at a time, never loaded whole. A link that stops making
progress (no pong, no ack advancing while batches are in flight) is declared down and rebuilt.

The hello with its version check, the heartbeat and questions by id are protocol.link's Session, the
same code central runs. A central of another protocol version is not connection trouble: it is
reported once, plainly (health state "incompatible"), and tried again only every INCOMPATIBLE_RETRY.

The store proves who it is in the hello (protocol.link; its key and token on disk: storenode.identity,
read again at every connect). A central that refuses that identity (not enrolled, revoked, a spent
token) is not connection trouble either: health state "refused" says what to do about it, and the
link tries again only every REFUSED_RETRY.

Central proves who it is first, with TLS: the link dials wss trusting only `central.ca` (the chain's
CA or central's certificate pinned). Whoever answers without a certificate that verifies gets no
hello, so no event and no chance to claim cursors that would delete the outbox; health state
"refused" says "central's certificate is not trusted: ..." and the usual backoff retries. Plain ws://
is dialled only with `central.insecure`, warned about at every start.
"""

from __future__ import annotations

import logging
import random
import sqlite3
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import trio
from trio_websocket import ConnectionClosed, HandshakeError

from protocol.codec import LINK_SUBPROTOCOL, FrameError
from protocol.frames import (
    LINK_VERSION,
    Ack,
    Answer,
    CatalogChunk,
    CatalogNotice,
    EventBatch,
    JournalAnswer,
    JournalEntry,
    JournalQuestion,
    LanesAnswer,
    LanesQuestion,
    LinkError,
    Question,
    Stream,
)
from protocol.identity import IdentityError
from protocol.link import BAD_PROOF, Incompatible, NoAnswer, Refused, Session, SessionError, greet
from protocol.tls import TlsError, client_context
from protocol.versions import shown
from protocol.websocket import CertificateRefused, dial
from runtime.database import Database
from runtime.health import HealthBoard
from runtime.supervision import Backoff
from storenode import identity
from storenode.config import StoreConfig, link_problems
from storenode.journal import chain
from storenode.sync import outbox
from storenode.sync.catalog import CatalogFollower
from storenode.sync.outbox import OutboxSignal

log = logging.getLogger(__name__)

STREAMS = tuple(Stream)
RECONNECT = Backoff(initial=0.2, cap=10.0, jitter=0.2)
INCOMPATIBLE_RETRY = 60.0  # a central of another version: try again this seldom (it may be upgraded meanwhile)
REFUSED_RETRY = 60.0  # central refused who we are: try again this seldom (an operator must act first)


class Stalled(Exception):
    """Central stopped acknowledging while batches were in flight."""


class Offline(Exception):
    """Asked something only central knows while central is unreachable."""


LinkDown = Refused  # central answered that it cannot (an unknown card or customer): what the lanes catch
QUESTION_TIMEOUT = 3.0  # a stock, gift card, customer or rate question to central; then the offline rules apply
NO_ANSWER = (Offline, NoAnswer)  # central said nothing usable
A = TypeVar("A", bound=Answer)


ALARMS = "sync-alarms"  # the health board's entry for what central said that cannot be true
KEPT_ALARMS = 20


class _Stream:
    """Replay position of one stream in the current session: starts before the oldest event still in
    the outbox (nothing older exists here to send or delete)."""

    def __init__(self, before_oldest: int) -> None:
        self.acked = before_oldest  # central acknowledged, in this session, everything up to here
        self.sent = before_oldest  # this session has sent everything up to here (back to a gap ack's resend)
        self.high = before_oldest  # the highest seq this session has sent: no ack may name more
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
        self.version = LINK_VERSION  # the link protocol this store speaks (tests play an older store)
        self.refused_retry = REFUSED_RETRY
        self.online = False
        self.batches_sent = 0  # event batches sent to central since start (how well lingering batches)
        self.on_change: list[Callable[[bool], None]] = []  # told whenever online flips
        self._session: Session | None = None
        self._progress = trio.Event()
        self._resend = False  # central asked for events again (a gap): the sender reads at its next wake
        self.alarms: list[str] = []  # the newest KEPT_ALARMS things central said that cannot be true
        self.alarm_count = 0  # how many since start
        self.refusal = ""  # central's refusal of a batch, shown until it acknowledges past it
        self._refused: dict[str, int] = {}  # stream -> the seq central must acknowledge to end the refusal
        self._answers: dict[type[Question[Any]], Callable[[Any], Awaitable[Answer]]] = {
            LanesQuestion: self._lanes,
            JournalQuestion: self._journal,
        }

    def _set_online(self, online: bool, *, error: str | None = None, state: str = "") -> None:
        changed = online != self.online
        self.online = online
        state = state or ("online" if online else "offline")
        detail = self.config.central.url + (f"; batch refused: {self.refusal}" if self.refusal else "")
        self.health.set(self.name, state, error=error, detail=detail)
        if changed:
            for hook in self.on_change:
                hook(online)

    async def ask(self, question: Question[A], /) -> A:
        """Ask central a question; raises Offline at once when the link is down, so a till gets a
        clear answer instead of hanging, NoAnswer when central does not answer within the caller's
        deadline or QUESTION_TIMEOUT, Refused (LinkDown) when it answers that it cannot."""
        session = self._session
        if session is None or not self.online:
            raise Offline("central is unreachable")
        return await session.ask(question)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        url = self.config.central.url
        self.signal.backlog = await self.db.read(outbox.backlog)
        try:
            identity.load(self.config.data_path, self.config.store)  # the key exists from the first start on (logged)
        except IdentityError as exc:  # said here once; each connect reads it again and says so on the health board
            log.error("store %s cannot use its key: %s", self.config.store, exc)
        task_status.started()
        if not url:
            self.health.set(self.name, "disabled", detail="no central configured")
            await trio.sleep_forever()
        problems = link_problems(self.config.central)
        if problems:  # load_config refuses these; a config built in code gets here
            log.error("link to central %s not started: %s", url, "; ".join(problems))
            self.health.set(self.name, "refused", error="; ".join(problems), detail=url)
            await trio.sleep_forever()
        if urlsplit(url).scheme == "ws":
            log.warning(
                "link to central %s is plain ws:// (central.insecure = true): sales, stock and gift cards "
                "cross the network readable, and anyone on the way can pose as central",
                url,
            )
        failures = 0
        refused = ""
        while True:
            started = trio.current_time()
            try:
                await self._run_session(url)
            except Incompatible as exc:
                # Retrying soon cannot help until one side is upgraded: say so once, plainly, and wait long.
                if str(exc) != refused:
                    log.error("link to central %s refused: %s", url, exc)
                refused = str(exc)
                self._session = None
                self._set_online(False, error=f"incompatible: {exc}", state="incompatible")
                await trio.sleep(INCOMPATIBLE_RETRY)
                continue
            except CertificateRefused as exc:
                # Not connection trouble: whoever answers is not the central this store trusts. Nothing is
                # sent to it; retried as usual (the operator may be fixing central.ca or the certificate).
                reason = f"central's certificate is not trusted: {exc}"
                if reason != refused:
                    log.error("link to central %s refused: %s", url, reason)
                refused = reason
                self._session = None
                self._set_online(False, error=reason, state="refused")
                failures += 1
                await trio.sleep(self.backoff.delay(failures, self.rng))
                continue
            except (Refused, IdentityError) as exc:
                if isinstance(exc, IdentityError) or exc.code in REFUSALS:
                    hint = refusal(self.config.store, exc.code, str(exc)) if isinstance(exc, Refused) else str(exc)
                    if hint != refused:
                        log.error("link to central %s: %s", url, hint)
                    refused = hint
                    self._session = None
                    self._set_online(False, error=hint, state="refused")
                    await trio.sleep(self.refused_retry)
                    continue
                reason = f"{type(exc).__name__}: {exc}"
            except (
                OSError,
                TlsError,
                HandshakeError,
                ConnectionClosed,
                SessionError,
                Stalled,
                FrameError,
                trio.TooSlowError,
            ) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            else:
                reason = "closed"
            refused = ""
            if self.online:
                log.warning("link to central %s down: %s", url, reason)
            self._session = None
            self._set_online(False, error=reason)
            failures = 1 if trio.current_time() - started > self.backoff.reset_after else failures + 1
            await trio.sleep(self.backoff.delay(failures, self.rng))

    async def _run_session(self, url: str) -> None:
        heartbeat = self.config.central.heartbeat
        trust = client_context(Path(self.config.central.ca)) if urlsplit(url).scheme == "wss" else None
        async with dial(url, subprotocols=[LINK_SUBPROTOCOL], connect_timeout=heartbeat * 2, ssl_context=trust) as ws:
            me, _ = identity.load(self.config.data_path, self.config.store)
            with trio.fail_after(heartbeat * 2):
                welcome = await greet(ws, me.hello(self.version), peer="central", key=me.proving)
            me.accepted()  # the token is spent, a rotation done: central made it durable before it welcomed
            positions = await self.db.read(outbox.positions)
            streams: dict[str, _Stream] = {}
            for name in STREAMS:
                before_oldest, last = positions.get(name, (0, 0))
                streams[name] = _Stream(before_oldest)
                claimed = welcome.acked.get(name, 0)
                if claimed > last:
                    self._alarm(
                        f"central's welcome claims {name} events up to {claimed}, but this store has numbered"
                        f" only {last}; nothing deleted"
                    )
            self.signal.backlog = await self.db.read(outbox.backlog)
            if self.catalog is not None:
                self.catalog.announced(welcome.catalog, welcome.catalog_epoch)
            session = Session(ws, "central", self._answer, ask_timeout=QUESTION_TIMEOUT, heartbeat=heartbeat)
            self._session = session
            self._set_online(True)
            log.info("link to central %s up", url)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(session.run, partial(self._receive, streams))
                    if self.catalog is not None:
                        nursery.start_soon(self.catalog.follow, ws.send_message)
                    await self._sender(session, streams)
            except BaseExceptionGroup as group:
                # One failing task ends the session; report the first cause plainly. When central closes
                # the link, the reader and the sender may both see it (two ConnectionClosed): still one
                # cause, not a crash of the sync actor (found by tests/security/test_link_fuzz_store.py).
                first = group.exceptions[0]
                if isinstance(first, Exception) and all(isinstance(e, Exception) for e in group.exceptions):
                    for other in group.exceptions[1:]:
                        log.debug("the link session also ended with %s: %s", type(other).__name__, other)
                    raise first from None
                raise

    async def _sender(self, session: Session, streams: dict[str, _Stream]) -> None:
        """Send what the lanes queued, every stream read in one database job.

        The link shares the store's core and database thread with the lanes, and a batch costs about
        what a scan does (a read here, the send, central's ack, the delete). So, once a sale is queued,
        the link lingers (`central.linger`, 0.1 s) and sends what the lanes queued meanwhile as one
        batch, instead of one per sale landing between the next sale's scans; and it reads again only
        when the lanes queued more, a batch left events behind, a stream's window was full when an ack
        opened it, or central asked for a resend (and every stall/2 seconds anyway). Measured with
        bench/scan_latency.py, alternating runs: one lane 2.7-3.0x -> 2.2-2.6x the echo floor, the
        store's CPU 70 -> 60 % of a core and central's 13 -> 3 % at the same load; 100 paced tills' p99
        17-115 -> 9-13 ms. A sale reaches central up to `linger` later; a till never waits for that."""
        batch = self.config.central.batch
        stall = self.config.central.heartbeat * 4
        read = True
        blocked = False
        while True:
            if read:
                self._resend = False
                room = {name: s.sent for name, s in streams.items() if s.sent - s.acked < self.window * batch}
                blocked = len(room) < len(streams)
                found = await self.db.read(partial(outbox.pending_of, after=room, limit=batch)) if room else {}
                more = False
                for name, (events, rest) in found.items():
                    stream = streams[name]
                    if stream.sent == stream.acked:
                        stream.last_progress = trio.current_time()  # the stall clock starts with the first batch
                    await session.send(EventBatch(store=self.config.store, stream=name, events=events))
                    stream.sent = events[-1].seq
                    stream.high = max(stream.high, stream.sent)
                    self.batches_sent += 1
                    more = more or rest
                if more:
                    continue
            if self._resend or (blocked and self._with_room(streams, batch) > len(room)):
                read = True  # an ack or a resend request came while this pass was reading or sending
                continue
            now = trio.current_time()
            for name, stream in streams.items():
                if stream.sent > stream.acked and now - stream.last_progress > stall:
                    raise Stalled(f"central stopped acknowledging {name} at {stream.acked} (sent {stream.sent})")
            queued = await self._wait_for_work(stall / 2)
            if queued and self.config.central.linger > 0:  # the sales of this moment go as one batch
                await trio.sleep(self.config.central.linger)
            read = queued or blocked or self._resend

    def _with_room(self, streams: dict[str, _Stream], batch: int) -> int:
        return sum(1 for s in streams.values() if s.sent - s.acked < self.window * batch)

    async def _wait_for_work(self, look_after: float) -> bool:
        """Until the lanes queue events or central acknowledges some. True when events were queued or
        `look_after` seconds passed (a periodic look); False when only an ack came."""
        woke: list[str] = []
        with trio.move_on_after(look_after) as waited:
            async with trio.open_nursery() as waiters:
                waiters.start_soon(self._wake_on, self.signal.wait, "queued", woke, waiters.cancel_scope)
                waiters.start_soon(self._wake_on, self._progress.wait, "acked", woke, waiters.cancel_scope)
        return waited.cancelled_caught or "queued" in woke

    @staticmethod
    async def _wake_on(
        wait: Callable[[], Awaitable[None]], label: str, woke: list[str], scope: trio.CancelScope
    ) -> None:
        await wait()
        woke.append(label)
        scope.cancel()

    async def _receive(self, streams: dict[str, _Stream], frame: Any) -> None:
        """What central sends besides answers and pings: acks, catalogue transfers, errors."""
        if isinstance(frame, Ack):
            stream = streams.get(frame.stream)
            if stream is None:
                return
            if frame.seq > stream.high:
                self._alarm(
                    f"central acknowledged {frame.stream} up to {frame.seq}, but this session sent only up to"
                    f" {stream.high}; nothing deleted"
                )
                return
            if frame.gap and frame.seq >= stream.acked:
                # Central saw events out of order and kept none past the hole: resend from there.
                stream.sent = max(frame.seq, stream.acked)
                self._resend = True
                self._progress.set()
                self._progress = trio.Event()
            if frame.seq <= stream.acked:
                return  # a duplicate or stale ack: acks are cumulative, the newest wins
            self.signal.acknowledged(frame.seq - stream.acked)
            stream.acked = frame.seq
            stream.last_progress = trio.current_time()
            if stream.sent < stream.acked:
                stream.sent = stream.acked
            await self.db.write(partial(outbox.acknowledge, stream=frame.stream, upto=frame.seq))
            if frame.seq >= self._refused.get(frame.stream, frame.seq + 1):
                del self._refused[frame.stream]
                if not self._refused:
                    self.refusal = ""
                    self._set_online(True)
            self._progress.set()
            self._progress = trio.Event()
        elif isinstance(frame, CatalogChunk | CatalogNotice) and self.catalog is not None:
            if isinstance(frame, CatalogChunk):
                self.catalog.received(frame)
            else:
                self.catalog.announced(frame.version)
        elif isinstance(frame, LinkError) and frame.code == "bad_pull" and self.catalog is not None:
            self.catalog.refused(frame.message)
        elif isinstance(frame, LinkError):
            self._refuse(streams, frame)
            raise Refused(f"central refused: {shown(frame.code)}: {shown(frame.message, 400)}", frame.code)
        else:
            log.warning("unexpected %s from central; ignored", type(frame).__name__)

    def _alarm(self, text: str) -> None:
        """Central said something that cannot be true of this store: kept on the health board (and
        logged ERROR) for an operator, since acting on it could lose sales."""
        log.error("central %s: %s", self.config.central.url, text)
        self.alarms = [*self.alarms, text][-KEPT_ALARMS:]
        self.alarm_count += 1
        self.health.set(ALARMS, "alarm", error=text, detail=f"{self.alarm_count} alarms since start")

    def _refuse(self, streams: dict[str, _Stream], frame: LinkError) -> None:
        """Central refused something this session sent: its events stay in the outbox, and the refusal
        stays on the health board until central acknowledges, in some session, every stream that had
        events in flight past where it stood. The error frame does not say which batch it refused;
        the oldest event of each stream in flight bounds it."""
        pending = {name: s.acked + 1 for name, s in streams.items() if s.sent > s.acked}
        if pending:
            self.refusal = f"{shown(frame.code)}: {shown(frame.message, 400)}"
            self._refused = pending
            log.error("central refused a batch: %s", self.refusal)

    async def _answer(self, question: Question[Any]) -> Answer:
        """Central's questions about this store's journal (for reconciliation)."""
        answer = self._answers.get(type(question))
        if answer is None:
            raise Refused(f"store {self.config.store} does not answer {type(question).__name__}")
        return await answer(question)

    async def _lanes(self, _question: LanesQuestion) -> LanesAnswer:
        return LanesAnswer(last=await self.db.read(chain.last_receipts))

    async def _journal(self, question: JournalQuestion) -> JournalAnswer:
        limit = min(max(question.limit, 1), 10_000)

        def read(c: sqlite3.Connection) -> JournalAnswer:
            oldest = outbox.oldest_unacked(c, Stream.JOURNAL)
            rows = chain.page(c, question.lane, question.after, limit)
            entries = [
                JournalEntry(receipt_no=n, hash=h, pending=oldest is not None and seq >= oldest > 0)
                for n, h, seq in rows
            ]
            return JournalAnswer(lane=question.lane, entries=entries)

        return await self.db.read(read)


REFUSALS = {  # central's refusal codes about who the store is, and what its operator should do
    "unknown_store": "enrol",
    "not_enrolled": "enrol",
    "bad_token": "token",
    "token_expired": "token",
    "revoked": "revoked",
    "bad_key": "key",
    BAD_PROOF: "key",
    "bad_store_id": "id",
}


def refusal(store: str, code: str, said: str) -> str:
    """What the store's health says when central refuses its identity: plainly what to do, then central's words."""
    init = "storepos store init --config <store.toml> --token TOKEN"
    enroll = f"storepos central store enroll {store}"
    todo = {
        "enrol": f"store {store} is not enrolled at central: run `{enroll}` at central and `{init}` here",
        "token": f"central refused the enrolment token: get a new one (`{enroll}` at central) and run `{init}` here",
        "revoked": f"store {store} is revoked at central: its operator must decide; this store cannot connect",
        "key": f"central does not accept this store's key: re-enrol it (`{enroll}` at central, `{init}` here)",
        "id": f"central refuses the store id {store!r}: use letters, digits, _ and - (at most 32) in store.toml",
    }[REFUSALS.get(code, "key")]
    return f"refused by central ({code}): {todo} [{said}]"
