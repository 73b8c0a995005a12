"""TLS on the socket's descriptor (protocol.tls_stream) as a trio Stream, over real loopback TCP: the bytes
arrive whole both ways at once, an end is an end, a close wakes a waiting reader, a failed handshake says
why, and garbage from a client breaks that one stream only."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from protocol import tls
from protocol.tls_stream import SocketTLSListener, SocketTLSStream


@pytest.fixture
def contexts(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    tls.self_signed(tmp_path, ["127.0.0.1"], stem="server")
    return tls.server_context(tmp_path / "server.pem", tmp_path / "server.key"), tls.client_context(
        tmp_path / "server.pem"
    )


@asynccontextmanager
async def pair(
    contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> AsyncIterator[tuple[SocketTLSStream, SocketTLSStream]]:
    """A client and a server stream, connected and handshaken."""
    server_context, client_context = contexts
    [listener] = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listener.socket.getsockname()[1]
    tls_listener = SocketTLSListener(listener, server_context)
    async with tls_listener:
        client = SocketTLSStream(
            await trio.open_tcp_stream("127.0.0.1", port),
            client_context,
            server_side=False,
            server_hostname="127.0.0.1",
        )
        server = await tls_listener.accept()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.do_handshake)
            nursery.start_soon(server.do_handshake)
        try:
            yield client, server
        finally:
            await client.aclose()
            await server.aclose()


async def receive_exactly(stream: SocketTLSStream, size: int) -> bytes:
    got = bytearray()
    while len(got) < size:
        chunk = await stream.receive_some(65536)
        assert chunk, f"the stream ended after {len(got)} of {size} bytes"
        got += chunk
    return bytes(got)


async def test_megabytes_cross_both_ways_at_once_byte_for_byte(contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    """Larger than the socket buffers, so sends wait for the descriptor while the other side reads."""
    up = bytes(range(256)) * 8192  # 2 MiB
    down = bytes(reversed(range(256))) * 6000
    with trio.fail_after(30):
        async with pair(contexts) as (client, server):
            received: dict[str, bytes] = {}

            async def read(name: str, stream: SocketTLSStream, size: int) -> None:
                received[name] = await receive_exactly(stream, size)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(client.send_all, up)
                nursery.start_soon(server.send_all, down)
                nursery.start_soon(read, "server", server, len(up))
                nursery.start_soon(read, "client", client, len(down))
    assert received == {"server": up, "client": down}


async def test_a_peer_closing_is_an_end_of_stream(contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    with trio.fail_after(10):
        async with pair(contexts) as (client, server):
            await client.send_all(b"last words")
            await client.aclose()
            assert await receive_exactly(server, 10) == b"last words"
            assert await server.receive_some() == b""


async def test_closing_wakes_a_waiting_reader_and_later_use_is_refused(
    contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    with trio.fail_after(10):
        async with pair(contexts) as (_client, server):
            failures: list[BaseException] = []

            async def wait_for_data() -> None:
                try:
                    await server.receive_some()
                except trio.ClosedResourceError as exc:
                    failures.append(exc)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(wait_for_data)
                await trio.testing.wait_all_tasks_blocked()
                await server.aclose()
            assert len(failures) == 1
            with pytest.raises(trio.ClosedResourceError):
                await server.send_all(b"x")


async def test_a_cancelled_receive_leaves_the_stream_usable(contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    with trio.fail_after(10):
        async with pair(contexts) as (client, server):
            with trio.move_on_after(0.05) as waited:
                await server.receive_some()
            assert waited.cancelled_caught
            await client.send_all(b"after")
            assert await receive_exactly(server, 5) == b"after"


async def test_an_untrusted_certificate_fails_the_handshake_with_the_verifier_as_cause(
    contexts: tuple[ssl.SSLContext, ssl.SSLContext], tmp_path: Path
) -> None:
    server_context, _ = contexts
    tls.self_signed(tmp_path / "other", ["127.0.0.1"], stem="other")
    stranger = tls.client_context(tmp_path / "other" / "other.pem")
    [listener] = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listener.socket.getsockname()[1]
    async with SocketTLSListener(listener, server_context) as tls_listener:
        client = SocketTLSStream(
            await trio.open_tcp_stream("127.0.0.1", port), stranger, server_side=False, server_hostname="127.0.0.1"
        )
        server = await tls_listener.accept()
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:

                async def serve() -> None:
                    with pytest.raises(trio.BrokenResourceError):
                        await server.receive_some()

                nursery.start_soon(serve)
                with pytest.raises(trio.BrokenResourceError) as refused:
                    await client.do_handshake()
                await client.aclose()
        await server.aclose()
    assert isinstance(refused.value.__cause__, ssl.SSLCertVerificationError)


async def test_plain_text_to_the_tls_port_breaks_that_stream_only(
    contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_context, _ = contexts
    [listener] = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listener.socket.getsockname()[1]
    async with SocketTLSListener(listener, server_context) as tls_listener:
        with trio.fail_after(10):
            raw = await trio.open_tcp_stream("127.0.0.1", port)
            await raw.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            server = await tls_listener.accept()
            with pytest.raises(trio.BrokenResourceError):
                await server.receive_some()
            with pytest.raises(trio.BrokenResourceError):  # stays broken
                await server.send_all(b"x")
            await server.aclose()
            await raw.aclose()
            async with pair(contexts) as (client, other):  # the next connection is served as ever
                await client.send_all(b"ok")
                assert await receive_exactly(other, 2) == b"ok"
