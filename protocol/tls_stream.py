"""TLS done by OpenSSL on the socket's own descriptor, as a trio Stream: what every wss connection of ours
(tills to the store, stores to central) runs on.

Why not trio's SSLStream: it keeps TLS in memory buffers (ssl.MemoryBIO) and moves every record between
them and the socket in Python, a few retries, locks and checkpoints per message. Measured on this machine
with trio-websocket echoing a 700-byte message (a scan's answer), both ends in one process: plain ws 196 us
per round trip, SSLStream 316 us, this stream 198 us. At the till gateway that was a third of a scan's
time over wss, and every store CPU microsecond is a scan another lane waits for.

How: the accepted (or dialled) socket is handed to `SSLContext.wrap_socket` in non-blocking mode, and
each operation is tried at once and waits for the descriptor only when OpenSSL says it wants to read or
write (the pattern the ssl module documents for non-blocking sockets). Trying first matters: OpenSSL may
hold decrypted bytes the descriptor no longer shows as readable.

Behaviour kept from trio's SSLStream as our servers used it (https_compatible): the handshake runs on the
first receive or send, in the connection's own task, so the accept loop never waits on a slow client; a
peer that closes without TLS's close_notify is an end of stream, not an error; closing does not wait for
the peer. A failed handshake or a TLS error is `trio.BrokenResourceError` with the ssl error as its cause
(`protocol.websocket` tells an untrusted certificate from other failures by it). A send cancelled after
part of a record went out leaves the stream broken, as with SSLStream: the peer cannot decrypt the rest.
"""

from __future__ import annotations

import socket
import ssl

import trio

DEFAULT_RECEIVE = 65536


class SocketTLSStream(trio.abc.Stream):
    """One TLS connection over a trio SocketStream's socket (which it takes over: the SocketStream must
    not be used afterwards)."""

    def __init__(
        self,
        transport: trio.SocketStream,
        context: ssl.SSLContext,
        *,
        server_side: bool,
        server_hostname: str | None = None,
    ) -> None:
        raw = transport.socket
        try:
            peer = raw.getpeername()
            self.peer_address = str(peer[0])
            self._peer = f"{peer[0]}:{peer[1]}"
        except OSError:  # the peer is gone already: the first operation says so
            self.peer_address = self._peer = "?"
        plain = socket.socket(fileno=raw.detach())
        try:
            plain.setblocking(False)
            self._sock = context.wrap_socket(
                plain, server_side=server_side, server_hostname=server_hostname, do_handshake_on_connect=False
            )
        except BaseException:
            plain.close()  # the descriptor is ours now: never leak it
            raise
        self._handshaken = False
        self._handshake_lock = trio.Lock()
        self._broken: BaseException | None = None

    def __repr__(self) -> str:
        return self._peer

    async def _wait(self, want: ssl.SSLError) -> None:
        """Wait until the descriptor can do what OpenSSL asked for. Another task may be waiting on the same
        direction already (a receive that must write a TLS 1.3 key update while a send waits): then yield
        and let OpenSSL be asked again."""
        try:
            if isinstance(want, ssl.SSLWantReadError):
                await trio.lowlevel.wait_readable(self._sock)
            else:
                await trio.lowlevel.wait_writable(self._sock)
        except trio.BusyResourceError:
            await trio.lowlevel.checkpoint()

    def _check(self) -> None:
        if self._sock.fileno() == -1:
            raise trio.ClosedResourceError("the TLS stream was closed")
        if self._broken is not None:
            raise trio.BrokenResourceError("the TLS stream broke earlier") from self._broken

    async def do_handshake(self) -> None:
        """Complete the TLS handshake (once; later calls return at once)."""
        async with self._handshake_lock:
            while not self._handshaken:
                self._check()
                try:
                    self._sock.do_handshake()
                    self._handshaken = True
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError) as want:
                    await self._wait(want)
                except (ssl.SSLError, OSError) as exc:
                    self._broken = exc
                    raise trio.BrokenResourceError(f"TLS handshake failed: {exc}") from exc

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if not self._handshaken:
            await self.do_handshake()
        await trio.lowlevel.checkpoint_if_cancelled()
        waited = False
        while True:
            self._check()
            try:
                data = self._sock.recv(max_bytes or DEFAULT_RECEIVE)  # a ragged EOF reads as b"" (suppressed)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError) as want:
                await self._wait(want)
                waited = True
                continue
            except ssl.SSLZeroReturnError:
                data = b""
            except (ssl.SSLError, OSError) as exc:
                self._broken = exc
                raise trio.BrokenResourceError(f"TLS receive failed: {exc}") from exc
            if not waited:
                await trio.lowlevel.cancel_shielded_checkpoint()
            return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if not self._handshaken:
            await self.do_handshake()
        await trio.lowlevel.checkpoint_if_cancelled()
        view = memoryview(data)
        waited = False
        try:
            while view:
                self._check()
                try:
                    sent = self._sock.send(view)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError) as want:
                    await self._wait(want)
                    waited = True
                    continue
                except (ssl.SSLError, OSError) as exc:
                    self._broken = exc
                    raise trio.BrokenResourceError(f"TLS send failed: {exc}") from exc
                view = view[sent:]
        except trio.Cancelled as cancelled:  # part of a record may be out: the rest can never follow
            self._broken = cancelled
            raise
        if not waited:
            await trio.lowlevel.cancel_shielded_checkpoint()

    async def wait_send_all_might_not_block(self) -> None:
        self._check()
        await trio.lowlevel.wait_writable(self._sock)

    async def aclose(self) -> None:
        if self._sock.fileno() != -1:
            trio.lowlevel.notify_closing(self._sock)  # wakes a task waiting on it with ClosedResourceError
            self._sock.close()
        await trio.lowlevel.checkpoint()


class SocketTLSListener(trio.abc.Listener[SocketTLSStream]):
    """Accepts TCP connections and hands each out as a server-side SocketTLSStream; its handshake runs on
    the stream's first use, in the handler's task."""

    def __init__(self, transport_listener: trio.SocketListener, context: ssl.SSLContext) -> None:
        self.transport_listener = transport_listener
        self._context = context

    async def accept(self) -> SocketTLSStream:
        while True:
            transport = await self.transport_listener.accept()
            try:
                return SocketTLSStream(transport, self._context, server_side=True)
            except OSError:  # gone between accept and wrap: that connection only, never the accept loop
                await trio.aclose_forcefully(transport)

    async def aclose(self) -> None:
        await self.transport_listener.aclose()
