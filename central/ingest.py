"""Store links at central: hello, then event batches applied exactly once and acknowledged, and
questions from the store (stock elsewhere) answered on the same link.

A batch that cannot be applied (undecodable, inconsistent) is refused whole with an error frame and
the link stays up; the store keeps it in its outbox, so nothing is lost while someone looks at it.
"""

from __future__ import annotations

import logging
import sqlite3

import msgspec
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest

from central.registers import cursors, sales, stock
from central.registers.cursors import Applier, EventError
from protocol.codec import LINK_SUBPROTOCOL, FrameError, LinkCodec
from protocol.frames import Ack, EventBatch, LinkError, LinkHello, LinkReply, LinkRequest, LinkWelcome
from runtime.database import Database

log = logging.getLogger(__name__)

HELLO_TIMEOUT = 10.0
APPLIERS: dict[str, Applier] = {"journal": sales.apply, "stock": stock.apply}


class Ingest:
    def __init__(self, node: str, db: Database) -> None:
        self.node = node
        self.db = db
        self.codec = LinkCodec()
        self.connected: dict[str, int] = {}  # store -> open links

    async def serve(self, request: WebSocketRequest) -> None:
        if LINK_SUBPROTOCOL not in request.proposed_subprotocols:
            await request.reject(400, body=f"expected subprotocol {LINK_SUBPROTOCOL}".encode())
            return
        ws = await request.accept(subprotocol=LINK_SUBPROTOCOL)
        store = ""
        try:
            with trio.fail_after(HELLO_TIMEOUT):
                hello = self.codec.decode(await ws.get_message())
            if not isinstance(hello, LinkHello) or hello.role != "store" or not hello.node:
                await ws.send_message(self.codec.encode(LinkError(code="hello_first", message="send a store hello")))
                return
            store = hello.node
            self.connected[store] = self.connected.get(store, 0) + 1
            acked = await self.db.read(lambda c: cursors.cursors(c, store))
            await ws.send_message(self.codec.encode(LinkWelcome(node=self.node, acked=acked)))
            while True:
                await self._message(ws, store, await ws.get_message())
        except (ConnectionClosed, trio.TooSlowError):
            pass
        except FrameError as exc:
            log.warning("bad hello from a store link: %s", exc)
        except Exception:
            log.exception("store link %s failed", store or "(before hello)")
        finally:
            if store:
                self.connected[store] -= 1
                if not self.connected[store]:
                    del self.connected[store]

    async def _send_error(self, ws: WebSocketConnection, code: str, message: str) -> None:
        await ws.send_message(self.codec.encode(LinkError(code=code, message=message)))

    async def _message(self, ws: WebSocketConnection, store: str, data: bytes | str) -> None:
        try:
            frame = self.codec.decode(data)
        except FrameError as exc:
            await self._send_error(ws, "bad_frame", str(exc))
            return
        if isinstance(frame, LinkRequest):
            await ws.send_message(self.codec.encode(await self._answer(frame)))
            return
        if not isinstance(frame, EventBatch) or frame.store != store:
            await self._send_error(ws, "unexpected", f"expected an event batch for {store}, got {type(frame).__name__}")
            return
        apply = APPLIERS.get(frame.stream)
        if apply is None:
            await self._send_error(ws, "bad_batch", f"unknown stream {frame.stream!r}")
            return
        try:
            seq, gap = await self.db.write(
                lambda c: cursors.apply_in_order(c, store, frame.stream, frame.events, apply), durable=True
            )
        except (EventError, FrameError, sqlite3.IntegrityError) as exc:
            log.warning("refused a batch from %s: %s", store, exc)
            await self._send_error(ws, "bad_batch", str(exc))
            return
        await ws.send_message(self.codec.encode(Ack(store=store, stream=frame.stream, seq=seq, gap=gap)))

    async def _answer(self, request: LinkRequest) -> LinkReply:
        if request.kind == "stock?":
            try:
                item = msgspec.msgpack.decode(request.body, type=str)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                return LinkReply(id=request.id, ok=False, error=f"bad stock question: {exc}")
            found = await self.db.read(lambda c: stock.levels(c, item))
            return LinkReply(id=request.id, ok=True, body=msgspec.msgpack.encode(found))
        return LinkReply(id=request.id, ok=False, error=f"unknown question {request.kind!r}")
