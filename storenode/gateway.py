"""The till websocket endpoint: decodes frames, routes them to lane actors, sends their answers.

A till holds no sale logic, so anything that goes wrong between the two ends in an error frame or a
dropped connection, never in lost state: the lane has it, and a reattaching till gets it back in its
Welcome. Bad frames are answered and the connection lives on.

Who gets in (store.toml [tills]): a known subprotocol is required, and a browser's Origin must be one the
store allows (a page elsewhere on the store's network must not drive a lane); one address holds at most
`per_address` connections, each of which has `handshake_timeout` seconds for its handshake and as long
again for its hello; and nothing is answered (not even a stock or price question) before a hello.
"""

from __future__ import annotations

import functools
import logging
import math
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest

from protocol.codec import TILL_SUBPROTOCOLS, FrameError, TillCodec
from protocol.frames import PROTOCOL_VERSION, Command, Error, Hello, Login, SaleState, TillFrame, Welcome
from protocol.text import plain
from protocol.versions import INCOMPATIBLE_VERSION, compatible, mismatch
from protocol.websocket import serve
from runtime.mailbox import ActorFailed, Rejected
from storenode.config import StoreConfig
from storenode.lanes.lane import Attach, Detach, Do, Lane

log = logging.getLogger(__name__)

OUTGOING_CAPACITY = 256
LANE_TIMEOUT = 10.0

Query = Callable[[Any], Awaitable[TillFrame]]


class TillConnection:
    """One attached till: frames are queued for it and sent in order; a till that falls too far behind
    is disconnected rather than allowed to grow memory or stall its lane.

    Who sends: while the till's own frame is being handled (`answering`), what the lane pushes (the
    answer, mostly) waits for that handling to end and is then sent by the reading task itself; anything
    pushed at other times wakes the writer task. A scan's answer so costs no extra task switch, and a
    frame pushed during a long request (a weighing) goes out with the answer, in order. Both senders take
    frames off the one queue and hand them to `send_message` without yielding in between, and
    trio-websocket's FIFO send lock keeps that order on the wire.
    """

    def __init__(self, ws: WebSocketConnection, codec: TillCodec) -> None:
        self.ws = ws
        self.codec = codec
        self.till = ""
        self.answering = False
        self.refused = ""  # set when the till is refused: the reason it is closed with, once told
        self.close_code = 1002
        self.overflowed = False
        self.said_hello = False  # any hello, welcomed or not: the hello deadline is met
        self.greeted = False  # its last hello was welcomed: questions are answered
        self.asked: set[Lane] = set()  # lanes it asked to attach to: each hears of its end
        self.credential = ""  # what its welcomed hello proved, checked again while it stays (Gateway._recheck)
        self.credential_lane = 0
        self._frames: deque[TillFrame] = deque()
        self._writer_waits = trio.lowlevel.ParkingLot()

    def push(self, frame: TillFrame) -> None:
        if self.overflowed:
            return
        if len(self._frames) >= OUTGOING_CAPACITY:
            self.overflowed = True
            self._frames.clear()
            self._writer_waits.unpark_all()
            return
        self._frames.append(frame)
        if not self.answering:
            self._writer_waits.unpark_all()

    async def send_queued(self) -> None:
        frames = self._frames
        while frames:
            await self.ws.send_message(self.codec.encode(frames.popleft()))

    def drop(self, notice: Error, why: str = "another till took this lane over", code: int = 1000) -> None:
        """Tell the till why it loses its place (another till took the lane over, its credential was
        revoked), then close (see `writer`)."""
        self.push(notice)
        self.refused, self.close_code = why, code
        self._writer_waits.unpark_all()

    async def writer(self) -> None:
        try:
            while not self.overflowed:
                if self.refused and not self.answering:  # else the reading task closes it after its frame
                    await self.send_queued()
                    await self.ws.aclose(code=self.close_code, reason=self.refused)
                    return
                if not self._frames or self.answering:
                    await self._writer_waits.park()
                    continue
                await self.send_queued()
            log.warning("till %s fell %d frames behind; disconnecting it", self.till, OUTGOING_CAPACITY)
            await self.ws.aclose(code=1013, reason="too far behind; reconnect")
        except ConnectionClosed:
            pass


Admit = Callable[[str, int], Awaitable[str]]


class Gateway:
    def __init__(
        self,
        config: StoreConfig,
        lanes: dict[int, Lane],
        queries: dict[type, Query],
        admit: Admit,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """`queries` answer frames that need no lane (status, stock lookups), after a hello. `admit`
        says why a credential may not say hello on a lane (a refusal code), or "" when it may
        (storenode.till_credentials). `ssl_context`: serve wss (storenode.gateway_tls), else plain ws."""
        self.config = config
        self.admit = admit
        self.ssl_context = ssl_context
        self.host = config.gateway.host
        self.port = config.gateway.port
        self.tills = config.tills
        self.origins = {origin.rstrip("/").lower() for origin in config.tills.origins}
        self.lanes = lanes
        self.queries = queries
        self.bound_port = 0
        self.listening = trio.Event()  # set once tills can connect: the node is ready only then
        self.connections: set[TillConnection] = set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self.bound_port = await nursery.start(
                functools.partial(
                    serve,
                    per_address=self.tills.per_address,
                    handshake_timeout=self.tills.handshake_timeout,
                    ssl_context=self.ssl_context,
                ),
                self._serve,
                self.host,
                self.port,
                "tills",
            )
            log.info("till gateway listening on %s", self.url)
            self.listening.set()
            task_status.started()
            if self.tills.recheck > 0:
                nursery.start_soon(self._recheck)

    async def _recheck(self) -> None:
        """Every `[tills] recheck` seconds, each connected till's credential again: one revoked (or enrolled
        for other lanes) since its hello is told so and closed, its operator logged out as on any detach.
        A revocation is written by another process (`storepos store till revoke`), so it is looked for."""
        while True:
            await trio.sleep(self.tills.recheck)
            for conn in list(self.connections):
                if not conn.greeted or not conn.credential or conn.refused:
                    continue
                try:
                    refusal = await self.admit(conn.credential, conn.credential_lane)
                except Exception:  # the database is being restarted: the next round asks again
                    log.exception("could not check till %s's credential again", conn.till)
                    continue
                if refusal and conn in self.connections and not conn.refused:
                    log.warning("till %s: its credential is %s now; disconnecting it", plain(conn.till)[:64], refusal)
                    message = _REFUSALS.get(refusal, "this till may no longer attach here")
                    conn.drop(Error(code=refusal, message=message), f"credential {refusal}", 1008)

    @property
    def url(self) -> str:
        return f"{'wss' if self.ssl_context else 'ws'}://{self.host}:{self.bound_port}"

    def _refusal(self, request: WebSocketRequest) -> tuple[int, str] | None:
        """Why a handshake is refused (an HTTP status and a reason), or None to accept it."""
        if not any(p in TILL_SUBPROTOCOLS for p in request.proposed_subprotocols):
            return 400, f"a till must ask for a subprotocol: one of {', '.join(TILL_SUBPROTOCOLS)}"
        origins = [value for name, value in request.headers if name.lower() == b"origin"]
        for origin in origins:  # a browser's; a till program sends none
            text = origin.decode("latin-1").strip()
            if text.rstrip("/").lower() not in self.origins:
                return 403, f"origin {plain(text)[:200]} is not one of this store's tills (store.toml [tills] origins)"
        return None

    async def _serve(self, request: WebSocketRequest) -> None:
        refusal = self._refusal(request)
        if refusal is not None:
            status, reason = refusal
            log.info("till handshake refused (%d): %s", status, reason)
            await request.reject(status, body=reason.encode())
            return
        chosen = next(p for p in request.proposed_subprotocols if p in TILL_SUBPROTOCOLS)
        ws = await request.accept(subprotocol=chosen)
        conn = TillConnection(ws, TillCodec(chosen, "store"))
        self.connections.add(conn)
        lane: Lane | None = None
        hello_by = trio.current_time() + self.tills.handshake_timeout
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(conn.writer)
                try:
                    while True:
                        with trio.move_on_at(math.inf if conn.said_hello else hello_by) as waiting:
                            data = await ws.get_message()
                        if waiting.cancelled_caught:
                            log.info(
                                "a till connection said no hello within %g s; closed", self.tills.handshake_timeout
                            )
                            await ws.aclose(code=1008, reason="no hello in time")
                            nursery.cancel_scope.cancel()
                            break
                        conn.answering = True
                        try:
                            lane = await self._frame(conn, lane, data)
                        finally:
                            conn.answering = False
                        await conn.send_queued()
                        if conn.refused:
                            await ws.aclose(code=conn.close_code, reason=conn.refused)
                            nursery.cancel_scope.cancel()
                            break
                except ConnectionClosed:
                    nursery.cancel_scope.cancel()
        except Exception:
            log.exception("till connection %s failed", conn.till or "(before hello)")
        finally:
            self.connections.discard(conn)
            for asked in conn.asked:  # an attach that timed out here may still have been done there
                await _detach(asked, conn)

    async def _frame(self, conn: TillConnection, lane: Lane | None, data: bytes | str) -> Lane | None:
        try:
            frame = conn.codec.decode(data)
        except FrameError as exc:
            conn.push(Error(code="bad_frame", message=f"cannot decode frame: {exc}"))
            return lane
        ref = getattr(frame, "ref", 0)
        query = self.queries.get(type(frame))
        if query is not None and not conn.greeted:
            conn.push(Error(code="hello_first", message="say hello before asking anything", ref=ref))
        elif query is not None:
            try:
                with trio.fail_after(LANE_TIMEOUT):
                    answer = await query(frame)
            except Rejected as refusal:
                answer = Error(code=refusal.code, message=refusal.message)
            except trio.TooSlowError:
                answer = Error(code="busy", message="the store did not answer in time")
            answer.ref = ref  # type: ignore[attr-defined]
            conn.push(answer)
        elif isinstance(frame, Hello):
            return await self._hello(conn, lane, frame)
        elif lane is None and conn.greeted:
            conn.push(Error(code="no_lane", message="this connection asks without a lane: say hello with one", ref=ref))
        elif lane is None:
            conn.push(Error(code="hello_first", message="send hello with your till id and lane first", ref=ref))
        elif isinstance(frame, Command):
            if frame.lane and frame.lane != lane.number:
                conn.push(
                    Error(
                        code="wrong_lane",
                        message=f"this till is attached to lane {lane.number}, not lane {frame.lane}",
                        ref=ref,
                    )
                )
            else:
                await self._ask(conn, lane, Do(frame, conn), ref)
        else:
            conn.push(Error(code="unexpected", message=f"a till does not send {type(frame).__name__}", ref=ref))
        return lane

    async def _hello(self, conn: TillConnection, current: Lane | None, hello: Hello) -> Lane | None:
        conn.said_hello = True
        if not compatible(PROTOCOL_VERSION, hello.version):
            # A till of another protocol version would misread what it is sent: refuse it, saying why.
            message = mismatch("till", "this store", PROTOCOL_VERSION, f"till {hello.till or '?'}", hello.version)
            log.warning("refusing a till on lane %d: %s", hello.lane, message)
            conn.push(Error(code=INCOMPATIBLE_VERSION, message=message))
            conn.refused = "incompatible protocol version"
            return current
        try:
            with trio.fail_after(LANE_TIMEOUT):
                refusal = await self.admit(hello.credential, hello.lane)
        except trio.TooSlowError:
            refusal = "busy"
        if refusal == "wrong_lane" and hello.lane not in self.lanes:
            refusal = ""  # an enrolled till asking for a lane that is not there: told which lanes are
        if refusal:
            # one refusal and nothing else: the connection closes after it (see `_serve`)
            log.warning("refusing till %s on lane %d: %s", plain(hello.till)[:64] or "?", hello.lane, refusal)
            conn.push(Error(code=refusal, message=_REFUSALS.get(refusal, "the store could not check the credential")))
            conn.refused, conn.close_code = "not admitted", 1008
            return current
        lane = self.lanes.get(hello.lane)
        if lane is None and hello.lane:
            known = ", ".join(str(n) for n in sorted(self.lanes))
            conn.push(Error(code="unknown_lane", message=f"lane {hello.lane} is not configured (lanes: {known})"))
            return current
        if not hello.till:
            conn.push(Error(code="bad_hello", message="hello needs a till id"))
            return current
        if hello.takeover and not (hello.operator and hello.pin):
            conn.push(Error(code="bad_hello", message="taking a lane over needs an operator number and PIN"))
            return current
        if current is not None and current is not lane:
            await _detach(current, conn)
            current = None
        conn.till, conn.greeted = hello.till, False
        conn.credential, conn.credential_lane = hello.credential, hello.lane
        if lane is None:  # lane 0: a client that asks (status, stock, prices) and sells nothing
            conn.greeted = True
            state = SaleState(lane=0, status="closed", currency=self.config.currency)
            conn.push(Welcome(store=self.config.store, lane=0, till=hello.till, state=state))
            return None
        takeover = Login(operator=hello.operator, pin=hello.pin, take_sale=hello.take_sale) if hello.takeover else None
        conn.asked.add(lane)
        if await self._ask(conn, lane, Attach(conn, takeover), 0):
            conn.greeted = True
            return lane
        return current

    async def _ask(self, conn: TillConnection, lane: Lane, request: Attach | Do, ref: int) -> bool:
        """Ask the lane; True once it has done the request, else the till is told why not."""
        try:
            with trio.fail_after(LANE_TIMEOUT):
                await lane.mailbox.ask(request)
            return True
        except Rejected as refusal:
            conn.push(Error(code=refusal.code, message=refusal.message, ref=ref))
        except trio.TooSlowError:
            conn.push(Error(code="lane_busy", message=f"lane {lane.number} did not answer in time", ref=ref))
        except ActorFailed as exc:
            conn.push(Error(code="lane_failed", message=f"lane {lane.number} failed and is restarting: {exc}", ref=ref))
        return False


_REFUSALS = {
    "not_enrolled": "this till is not enrolled here (storepos store till enroll gives it a credential)",
    "revoked": "this till's credential was revoked",
    "wrong_lane": "this till's credential is not for that lane",
}


async def _detach(lane: Lane, conn: TillConnection) -> None:
    """Tell the lane this till is gone: it logs the till's operator out and frees the lane for another
    till, so it must arrive even when the lane's mailbox is full, and even while this task is cancelled."""
    if lane.mailbox.tell_nowait(Detach(conn)):
        return
    with trio.CancelScope(shield=True), trio.move_on_after(LANE_TIMEOUT):
        await lane.mailbox.tell(Detach(conn))
