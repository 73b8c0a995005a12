"""The trio-websocket ping guard: no pong once closing has begun, a pong while open."""

from __future__ import annotations

from types import SimpleNamespace

import trio_websocket._impl as impl
import wsproto.events
from wsproto.connection import ConnectionState

from protocol.websocket import guard


async def test_no_pong_while_closing_and_pong_while_open() -> None:
    guard()
    guard()  # idempotent: the second call does not wrap the wrapper
    sent: list[object] = []

    async def send(event: object) -> None:
        sent.append(event)

    ping = wsproto.events.Ping(payload=b"x")
    closing = SimpleNamespace(_wsproto=SimpleNamespace(state=ConnectionState.LOCAL_CLOSING), _send=send)
    await impl.WebSocketConnection._handle_ping_event(closing, ping)  # type: ignore[arg-type]
    assert sent == []
    open_ = SimpleNamespace(_wsproto=SimpleNamespace(state=ConnectionState.OPEN), _send=send)
    await impl.WebSocketConnection._handle_ping_event(open_, ping)  # type: ignore[arg-type]
    assert sent == [wsproto.events.Pong(payload=b"x")]
