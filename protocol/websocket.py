"""Where storepos opens websockets, served or dialled, with a guard for a known trio-websocket bug.

trio-websocket 0.12 answers a ping even after it has started closing the connection; wsproto then
raises LocalProtocolError inside the library's reader task, and that escapes to the server's
nursery and takes the whole listener down (python-trio/trio-websocket#184, fix proposed in PR
#198, not released). One store pinging central while central closes its link must not stop
central, so we answer pings only while the connection is open, as that PR does.

The guard patches a private method, so it is installed by `serve` and `connect` (every websocket
storepos opens goes through one of them), not as a side effect of importing the protocol, and
pyproject pins trio-websocket below the next minor release: a release that moves the method fails
loudly here instead of running unguarded.

TLS (wss) is served from an ssl context given to `serve` and dialled with one given to `dial`
(protocol.tls builds both); see `serve` and `_dial_tls` for what is ours rather than the library's.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import trio
import wsproto.events
from trio_websocket import (
    ConnectionClosed,
    ConnectionTimeout,
    HandshakeError,
    WebSocketConnection,
    WebSocketRequest,
    WebSocketServer,
    _impl,
    open_websocket_url,
    wrap_client_stream,
)
from wsproto.connection import ConnectionState

from protocol.admission import AddressLimit
from protocol.tls_stream import SocketTLSListener, SocketTLSStream


def guard() -> None:
    """Install the ping guard once (idempotent)."""
    connection = _impl.WebSocketConnection
    if getattr(connection, "_storepos_ping_guard", False):
        return
    answer_ping = getattr(connection, "_handle_ping_event", None)
    if answer_ping is None:  # the private seam moved: refuse to run unguarded
        raise RuntimeError(
            "trio-websocket changed: WebSocketConnection._handle_ping_event is gone; revisit the ping guard"
        )

    async def _handle_ping_event(self: Any, event: wsproto.events.Ping) -> None:
        if self._wsproto.state is ConnectionState.OPEN:
            await answer_ping(self, event)

    connection._handle_ping_event = _handle_ping_event  # type: ignore[method-assign]
    connection._storepos_ping_guard = True  # type: ignore[attr-defined]


CONNECT_TIMEOUT = 60.0  # trio-websocket's own default for the connect and the close


class CertificateRefused(OSError):
    """The peer's TLS certificate did not verify against what we trust (another chain's CA, a pinned
    certificate that is not the peer's, a host name it does not name). An OSError, as every other
    reason a peer cannot be reached is, but with the verifier's own words and the host in it."""


def dial(url: str, **options: Any) -> AbstractAsyncContextManager[WebSocketConnection]:
    """`trio_websocket.open_websocket_url` with the guard installed first; wss:// through `_dial_tls`."""
    guard()
    if urlsplit(url).scheme == "wss":
        return _dial_tls(url, **options)
    return open_websocket_url(url, **options)


@asynccontextmanager
async def _dial_tls(
    url: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    connect_timeout: float = CONNECT_TIMEOUT,
    disconnect_timeout: float = CONNECT_TIMEOUT,
    **options: Any,
) -> AsyncIterator[WebSocketConnection]:
    """A wss connection whose TLS handshake is ours, done before the websocket's.

    trio-websocket runs the TLS handshake lazily inside its reader task and drops the reason when it
    fails, so a certificate that does not verify looked like a ConnectionTimeout a whole connect
    timeout later. Handshaking first fails at once with CertificateRefused naming the host and what
    the verifier said (a store shows it in its health); the rest is trio-websocket's own client on
    the verified stream, its exceptions unwrapped from the nursery as open_websocket_url's are."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or 443
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    context = ssl_context or ssl.create_default_context()
    deadline = trio.current_time() + connect_timeout
    try:
        with trio.fail_at(deadline):
            stream = SocketTLSStream(
                await trio.open_tcp_stream(host, port), context, server_side=False, server_hostname=host
            )
            try:
                await stream.do_handshake()
            except BaseException:
                await trio.aclose_forcefully(stream)
                raise
    except trio.TooSlowError:
        raise ConnectionTimeout from None
    except trio.BrokenResourceError as exc:
        cause = exc.__cause__
        if isinstance(cause, ssl.SSLCertVerificationError):
            raise CertificateRefused(f"certificate of {host}:{port} not trusted: {cause.verify_message}") from cause
        raise HandshakeError(f"TLS handshake with {host}:{port} failed: {cause or exc}") from exc
    except OSError as exc:
        raise HandshakeError(f"cannot connect to {host}:{port}: {exc}") from exc
    try:
        async with trio.open_nursery() as nursery:
            try:
                with trio.fail_at(deadline):
                    # typed for trio's streams, but any Stream serves (trio-websocket only reads and writes it)
                    ws = await wrap_client_stream(nursery, stream, host, resource, **options)  # type: ignore[arg-type]
            except trio.TooSlowError:
                await trio.aclose_forcefully(stream)
                raise ConnectionTimeout from None
            try:
                yield ws
            finally:
                with trio.move_on_after(disconnect_timeout):  # cancelled, aclose still closes the stream
                    await ws.aclose()
    except BaseExceptionGroup as group:  # one failure (the caller's or the reader's) raised as itself
        if len(group.exceptions) == 1 or all(isinstance(e, ConnectionClosed) for e in group.exceptions):
            raise group.exceptions[0] from None  # a closed connection seen by both sides is one cause
        raise


class ListenError(OSError):
    """A node could not open its listening socket (port taken, address not ours): said plainly, not
    as a nursery's exception group, because it is the first thing an operator has to fix."""


HANDSHAKE_TIMEOUT = 10.0  # seconds a connection has for its TLS and websocket handshakes before it is closed


async def serve(
    handler: Callable[[WebSocketRequest], Awaitable[None]],
    host: str,
    port: int,
    purpose: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    handshake_timeout: float = HANDSHAKE_TIMEOUT,
    per_address: int = 0,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve websockets on host:port (wss with `ssl_context`); reports the bound port (useful with
    port 0) once listening.

    The TLS handshake runs in the connection's own task, not the accept loop, so a client that never
    finishes it delays nobody; `handshake_timeout` bounds both handshakes together, so such a client
    (or one that opens TCP and says nothing) does not hold a descriptor for the library's default
    minute. Garbage, plain HTTP on the TLS port or a failed handshake end that one connection only.
    `per_address` (0: no limit) bounds the connections one address holds open at once, handshaking or
    not (protocol.admission)."""
    guard()
    try:
        sockets = await trio.open_tcp_listeners(port, host=host)
    except OSError as exc:
        raise ListenError(exc.errno, f"cannot listen for {purpose} on {host}:{port}: {exc.strerror or exc}") from None
    listeners: list[trio.SocketListener] | list[SocketTLSListener] = sockets
    if ssl_context is not None:
        listeners = [SocketTLSListener(s, ssl_context) for s in sockets]  # TLS on the descriptor: tls_stream
    bound = sockets[0].socket.getsockname()[1]  # before any wrapping hides the socket
    accepting: list[trio.abc.Listener[trio.abc.Stream]] = list(listeners)
    if per_address:
        accepting = [AddressLimit(listener, per_address) for listener in accepting]
    # typed for trio's own listeners, but any Listener serves: it goes to trio.serve_listeners
    server = WebSocketServer(handler, accepting, connect_timeout=handshake_timeout)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        task_status.started(bound)
