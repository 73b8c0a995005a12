"""Store links at central: hello, then event batches applied exactly once and acknowledged.

A batch that cannot be applied (undecodable, inconsistent) is refused whole with an error frame and
the link stays up; the store keeps it in its outbox, so nothing is lost while someone looks at it.
"""

from __future__ import annotations

import logging
import sqlite3

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest

from central.registers import sales
from protocol.codec import LINK_SUBPROTOCOL, FrameError, LinkCodec
from protocol.frames import Ack, EventBatch, LinkError, LinkHello, LinkWelcome
from runtime.database import Database

log = logging.getLogger(__name__)

HELLO_TIMEOUT = 10.0


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
            acked = await self.db.read(lambda c: sales.cursors(c, store))
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

    async def _message(self, ws: WebSocketConnection, store: str, data: bytes | str) -> None:
        try:
            frame = self.codec.decode(data)
        except FrameError as exc:
            await ws.send_message(self.codec.encode(LinkError(code="bad_frame", message=str(exc))))
            return
        if not isinstance(frame, EventBatch) or frame.store != store:
            error = LinkError(
                code="unexpected", message=f"expected an event batch for {store}, got {type(frame).__name__}"
            )
            await ws.send_message(self.codec.encode(error))
            return
        try:
            seq = await self.db.write(lambda c: sales.apply_batch(c, store, frame.stream, frame.events), durable=True)
        except (sales.SalesError, FrameError, sqlite3.IntegrityError) as exc:
            log.warning("refused a batch from %s: %s", store, exc)
            await ws.send_message(self.codec.encode(LinkError(code="bad_batch", message=str(exc))))
            return
        await ws.send_message(self.codec.encode(Ack(store=store, stream=frame.stream, seq=seq)))
