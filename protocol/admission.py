"""How many connections one address may hold open at once, counted from the moment they are accepted.

A connection costs a descriptor and a task from its first TCP packet, long before it has said who it is:
500 half-open websocket handshakes from one address held 500 descriptors for a minute. The handshake
timeout bounds how long each lives; this bounds how many one address holds at a time, so one misbehaving
(or hostile) machine cannot starve the tills of another. A connection beyond the limit is closed as soon
as it is accepted, before a byte is read from it.

It wraps a listener (public trio API, so it sits under or over TLS alike) and the streams it hands out:
a stream's count is given back when it is closed, and trio's `serve_listeners` closes every stream it
accepted when its handler ends, however it ends.
"""

from __future__ import annotations

import logging
from collections import Counter

import trio

log = logging.getLogger(__name__)


def peer_address(stream: trio.abc.Stream) -> str:
    """The remote IP of a socket stream, under any wrapping that keeps a `transport_stream`, or of a TLS
    stream that took its socket over (protocol.tls_stream: it keeps the address as `peer_address`)."""
    inner: object = stream
    while not isinstance(inner, trio.SocketStream):
        address = getattr(inner, "peer_address", None)
        if isinstance(address, str):
            return address
        inner = getattr(inner, "transport_stream", None)
        if inner is None:
            return "?"
    try:
        return str(inner.socket.getpeername()[0])
    except OSError:  # gone already
        return "?"


class AddressLimit(trio.abc.Listener[trio.abc.Stream]):
    """A listener that hands out at most `limit` open streams per remote address."""

    def __init__(self, inner: trio.abc.Listener[trio.abc.Stream], limit: int) -> None:
        self.inner = inner
        self.limit = limit
        self.open: Counter[str] = Counter()
        self.refused = 0  # connections closed at once because their address held `limit` already

    async def accept(self) -> trio.abc.Stream:
        while True:
            stream = await self.inner.accept()
            address = peer_address(stream)
            if self.open[address] < self.limit:
                self.open[address] += 1
                return CountedStream(stream, self, address)
            self.refused += 1
            if self.refused & (self.refused - 1) == 0:  # 1st, 2nd, 4th, 8th...: a flood does not flood the log
                log.warning(
                    "%s holds %d connections already: closing another (%d refused so far)",
                    address,
                    self.limit,
                    self.refused,
                )
            await trio.aclose_forcefully(stream)

    def release(self, address: str) -> None:
        self.open[address] -= 1
        if self.open[address] <= 0:
            del self.open[address]

    async def aclose(self) -> None:
        await self.inner.aclose()


class CountedStream(trio.abc.Stream):
    """An accepted stream that gives its address's count back once, when it is closed."""

    def __init__(self, inner: trio.abc.Stream, limit: AddressLimit, address: str) -> None:
        self.transport_stream = inner
        self._limit = limit
        self._address = address
        self._counted = True

    def __repr__(self) -> str:
        """Where it comes from, as logs name a peer (trio-websocket's `remote` of a stream it does not know)."""
        inner = self.transport_stream
        if isinstance(inner, trio.SocketStream):
            try:
                host, port = inner.socket.getpeername()[:2]
            except OSError:
                return self._address
            return f"{host}:{port}"
        return repr(inner)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.transport_stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.transport_stream.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.transport_stream.receive_some(max_bytes)

    async def aclose(self) -> None:
        if self._counted:
            self._counted = False
            self._limit.release(self._address)
        await self.transport_stream.aclose()
