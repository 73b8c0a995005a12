"""The till websocket endpoint: decodes frames, routes them to lane actors, sends their answers.

A till holds no sale logic, so anything that goes wrong between the two ends in an error frame or a
dropped connection, never in lost state: the lane has it, and a reattaching till gets it back in its
Welcome. Bad frames are answered and the connection lives on.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest

from protocol.codec import SUBPROTOCOL_JSON, TILL_SUBPROTOCOLS, FrameError, TillCodec
from protocol.frames import PROTOCOL_VERSION, Command, Error, Hello, TillFrame
from protocol.versions import INCOMPATIBLE_VERSION, compatible, mismatch
from protocol.websocket import serve
from runtime.mailbox import ActorFailed, Rejected
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
        self.overflowed = False
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

    async def writer(self) -> None:
        try:
            while not self.overflowed:
                if not self._frames or self.answering:
                    await self._writer_waits.park()
                    continue
                await self.send_queued()
            log.warning("till %s fell %d frames behind; disconnecting it", self.till, OUTGOING_CAPACITY)
            await self.ws.aclose(code=1013, reason="too far behind; reconnect")
        except ConnectionClosed:
            pass


class Gateway:
    def __init__(self, host: str, port: int, lanes: dict[int, Lane], queries: dict[type, Query]) -> None:
        """`queries` answer frames that need no lane (status, stock lookups), even before a hello."""
        self.host = host
        self.port = port
        self.lanes = lanes
        self.queries = queries
        self.bound_port = 0
        self.listening = trio.Event()  # set once tills can connect: the node is ready only then

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self.bound_port = await nursery.start(serve, self._serve, self.host, self.port, "tills")
            log.info("till gateway listening on ws://%s:%d", self.host, self.bound_port)
            self.listening.set()
            task_status.started()

    async def _serve(self, request: WebSocketRequest) -> None:
        offered = request.proposed_subprotocols
        chosen = next((p for p in offered if p in TILL_SUBPROTOCOLS), None)
        if offered and chosen is None:
            await request.reject(400, body=f"subprotocol must be one of {', '.join(TILL_SUBPROTOCOLS)}".encode())
            return
        ws = await request.accept(subprotocol=chosen)
        conn = TillConnection(ws, TillCodec(chosen or SUBPROTOCOL_JSON, "store"))
        lane: Lane | None = None
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(conn.writer)
                try:
                    while True:
                        data = await ws.get_message()
                        conn.answering = True
                        try:
                            lane = await self._frame(conn, lane, data)
                        finally:
                            conn.answering = False
                        await conn.send_queued()
                        if conn.refused:
                            await ws.aclose(code=1002, reason=conn.refused)
                            nursery.cancel_scope.cancel()
                            break
                except ConnectionClosed:
                    nursery.cancel_scope.cancel()
        except Exception:
            log.exception("till connection %s failed", conn.till or "(before hello)")
        finally:
            if lane is not None:
                lane.mailbox.tell_nowait(Detach(conn))

    async def _frame(self, conn: TillConnection, lane: Lane | None, data: bytes | str) -> Lane | None:
        try:
            frame = conn.codec.decode(data)
        except FrameError as exc:
            conn.push(Error(code="bad_frame", message=f"cannot decode frame: {exc}"))
            return lane
        ref = getattr(frame, "ref", 0)
        query = self.queries.get(type(frame))
        if query is not None:
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
        if not compatible(PROTOCOL_VERSION, hello.version):
            # A till of another protocol version would misread what it is sent: refuse it, saying why.
            message = mismatch("till", "this store", PROTOCOL_VERSION, f"till {hello.till or '?'}", hello.version)
            log.warning("refusing a till on lane %d: %s", hello.lane, message)
            conn.push(Error(code=INCOMPATIBLE_VERSION, message=message))
            conn.refused = "incompatible protocol version"
            return current
        lane = self.lanes.get(hello.lane)
        if lane is None:
            known = ", ".join(str(n) for n in sorted(self.lanes))
            conn.push(Error(code="unknown_lane", message=f"lane {hello.lane} is not configured (lanes: {known})"))
            return current
        if not hello.till:
            conn.push(Error(code="bad_hello", message="hello needs a till id"))
            return current
        if current is not None and current is not lane:
            current.mailbox.tell_nowait(Detach(conn))
        conn.till = hello.till
        await self._ask(conn, lane, Attach(conn), 0)
        return lane

    async def _ask(self, conn: TillConnection, lane: Lane, request: Attach | Do, ref: int) -> None:
        try:
            with trio.fail_after(LANE_TIMEOUT):
                await lane.mailbox.ask(request)
        except Rejected as refusal:
            conn.push(Error(code=refusal.code, message=refusal.message, ref=ref))
        except trio.TooSlowError:
            conn.push(Error(code="lane_busy", message=f"lane {lane.number} did not answer in time", ref=ref))
        except ActorFailed as exc:
            conn.push(Error(code="lane_failed", message=f"lane {lane.number} failed and is restarting: {exc}", ref=ref))
