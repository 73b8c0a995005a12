"""A websocket proxy between store and central that misbehaves on purpose.

It works on whole websocket messages, so it can do what a network and its middleboxes do to a
framed protocol: cut the link, duplicate a frame, delay it, swap two frames, or go silent while
keeping the connection open (the case only a heartbeat detects).
"""

from __future__ import annotations

import random
import ssl
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import trio
from trio_websocket import ConnectionClosed, HandshakeError, WebSocketConnection, WebSocketRequest

from devtools.certificates import proxy_contexts
from protocol.websocket import dial, serve


@dataclass
class Faults:
    cut: float = 0.0  # per message: close both sides
    duplicate: float = 0.0  # per message: deliver it twice
    reorder: float = 0.0  # per message: hold it back and deliver it after the next one
    delay: float = 0.0  # per message: wait up to this many seconds first
    silent: bool = False  # forward nothing, close nothing
    deaf: bool = False  # forward nothing from upstream (central's answers are lost), close nothing


@dataclass
class Stats:
    links: int = 0
    messages: int = 0
    cuts: int = 0
    duplicates: int = 0
    reorders: int = 0
    counts: dict[str, int] = field(default_factory=dict)


class ChaosProxy:
    def __init__(
        self, upstream: str, faults: Faults, *, rng: random.Random, port: int = 0, chain: Path | None = None
    ) -> None:
        """`chain`: a folder with the chain's CA (devtools.certificates.make_chain): the proxy then
        serves wss with a certificate of its own from it and dials a wss `upstream` trusting it, so
        what it does to frames happens over TLS as the store and central speak it."""
        self.upstream = upstream
        self.faults = faults
        self.rng = rng
        self.port = port
        self.stats = Stats()
        self._links: set[trio.CancelScope] = set()
        self._serve_tls: ssl.SSLContext | None = None
        self._dial_tls: ssl.SSLContext | None = None
        if chain is not None:
            self._serve_tls, self._dial_tls = proxy_contexts(chain)

    @property
    def url(self) -> str:
        return f"{'wss' if self._serve_tls else 'ws'}://127.0.0.1:{self.port}"

    def cut_all(self) -> None:
        for scope in list(self._links):
            scope.cancel()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self.port = await nursery.start(
                partial(serve, self._link, "127.0.0.1", self.port, "the chaos proxy", ssl_context=self._serve_tls)
            )
            task_status.started()

    async def _link(self, request: WebSocketRequest) -> None:
        offered = request.proposed_subprotocols
        downstream = await request.accept(subprotocol=offered[0] if offered else None)
        self.stats.links += 1
        try:
            async with dial(self.upstream, subprotocols=list(offered), ssl_context=self._dial_tls) as upstream:
                async with trio.open_nursery() as nursery:
                    self._links.add(nursery.cancel_scope)
                    nursery.start_soon(self._pump, downstream, upstream, nursery.cancel_scope)
                    nursery.start_soon(self._pump, upstream, downstream, nursery.cancel_scope, True)
                self._links.discard(nursery.cancel_scope)
        except (ConnectionClosed, HandshakeError, OSError):
            pass
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                await downstream.aclose()

    async def _pump(
        self, src: WebSocketConnection, dst: WebSocketConnection, link: trio.CancelScope, answers: bool = False
    ) -> None:
        held: bytes | str | None = None
        f, rng = self.faults, self.rng
        try:
            while True:
                message = await src.get_message()
                self.stats.messages += 1
                if f.silent or (answers and f.deaf):
                    continue
                if f.cut and rng.random() < f.cut:
                    self.stats.cuts += 1
                    link.cancel()
                    return
                if f.delay:
                    await trio.sleep(rng.uniform(0, f.delay))
                if held is None and f.reorder and rng.random() < f.reorder:
                    held = message
                    self.stats.reorders += 1
                    continue
                await dst.send_message(message)
                if held is not None:
                    await dst.send_message(held)
                    held = None
                if f.duplicate and rng.random() < f.duplicate:
                    self.stats.duplicates += 1
                    await dst.send_message(message)
        except ConnectionClosed:
            link.cancel()
