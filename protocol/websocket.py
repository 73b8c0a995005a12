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
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import trio
import wsproto.events
from trio_websocket import WebSocketConnection, WebSocketRequest, WebSocketServer, _impl, open_websocket_url
from wsproto.connection import ConnectionState

from protocol.admission import AddressLimit


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


def dial(url: str, **options: Any) -> AbstractAsyncContextManager[WebSocketConnection]:
    """`trio_websocket.open_websocket_url` with the guard installed first."""
    guard()
    return open_websocket_url(url, **options)


class ListenError(OSError):
    """A node could not open its listening socket (port taken, address not ours): said plainly, not
    as a nursery's exception group, because it is the first thing an operator has to fix."""


async def serve(
    handler: Callable[[WebSocketRequest], Awaitable[None]],
    host: str,
    port: int,
    purpose: str,
    *,
    per_address: int = 0,
    handshake_timeout: float = 60.0,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve websockets on host:port; reports the bound port (useful with port 0) once listening.
    `per_address` (0: no limit) bounds the connections one address holds open at once, handshaking or
    not (protocol.admission); a client that has not completed its handshake within `handshake_timeout`
    seconds is dropped."""
    guard()
    try:
        listeners = await trio.open_tcp_listeners(port, host=host)
    except OSError as exc:
        raise ListenError(exc.errno, f"cannot listen for {purpose} on {host}:{port}: {exc.strerror or exc}") from None
    port = listeners[0].socket.getsockname()[1]  # before any wrapping hides the socket
    accepting: list[trio.abc.Listener[trio.abc.Stream]] = list(listeners)
    if per_address:
        accepting = [AddressLimit(listener, per_address) for listener in accepting]
    # typed for trio's own listeners, but any Listener serves: it goes to trio.serve_listeners
    server = WebSocketServer(handler, accepting, connect_timeout=handshake_timeout)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        task_status.started(port)
