"""A guard for a known trio-websocket bug, applied when `protocol` is imported.

trio-websocket 0.12 answers a ping even after it has started closing the connection; wsproto then
raises LocalProtocolError inside the library's reader task, and that escapes to the server's
nursery and takes the whole listener down (python-trio/trio-websocket#184, fix proposed in PR
#198, not released). One store pinging central while central closes its link must not stop
central, so we answer pings only while the connection is open, as that PR does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio
import wsproto.events
from trio_websocket import WebSocketRequest, WebSocketServer
from trio_websocket._impl import WebSocketConnection
from wsproto.connection import ConnectionState

_answer_ping = WebSocketConnection._handle_ping_event


async def _handle_ping_event(self: Any, event: wsproto.events.Ping) -> None:
    if self._wsproto.state is ConnectionState.OPEN:
        await _answer_ping(self, event)


if not getattr(WebSocketConnection, "_storepos_ping_guard", False):
    WebSocketConnection._handle_ping_event = _handle_ping_event  # type: ignore[method-assign]
    WebSocketConnection._storepos_ping_guard = True  # type: ignore[attr-defined]


class ListenError(OSError):
    """A node could not open its listening socket (port taken, address not ours): said plainly, not
    as a nursery's exception group, because it is the first thing an operator has to fix."""


async def serve(
    handler: Callable[[WebSocketRequest], Awaitable[None]],
    host: str,
    port: int,
    purpose: str,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve websockets on host:port; reports the bound port (useful with port 0) once listening."""
    try:
        listeners = await trio.open_tcp_listeners(port, host=host)
    except OSError as exc:
        raise ListenError(exc.errno, f"cannot listen for {purpose} on {host}:{port}: {exc.strerror or exc}") from None
    server = WebSocketServer(handler, listeners)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        task_status.started(server.port)
