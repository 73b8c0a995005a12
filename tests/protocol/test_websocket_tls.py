"""protocol.websocket over TLS: a certificate that does not verify is refused at once with the
verifier's reason and the host, not as a ConnectionTimeout a whole connect timeout later."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import trio
from trio_websocket import HandshakeError, WebSocketRequest

from devtools.certificates import make_chain
from protocol import tls
from protocol.websocket import CertificateRefused, dial, serve
from tests.kit import certificates


async def echo(request: WebSocketRequest) -> None:
    ws = await request.accept()
    await ws.send_message(await ws.get_message())


async def test_wss_round_trip_and_refusals(tmp_path: Path, nursery: trio.Nursery) -> None:
    port = await nursery.start(partial(serve, echo, "127.0.0.1", 0, "test", ssl_context=certificates.central_context()))
    plain = await nursery.start(serve, echo, "127.0.0.1", 0, "test")
    make_chain(tmp_path)
    with trio.fail_after(10):
        async with dial(f"wss://127.0.0.1:{port}", ssl_context=certificates.trust()) as ws:
            await ws.send_message("hi")
            assert await ws.get_message() == "hi"
        for trust in (tmp_path / tls.CA_CERT, tmp_path / tls.CENTRAL_CERT):  # another chain, another pin
            with pytest.raises(CertificateRefused, match=rf"certificate of 127.0.0.1:{port} not trusted: unable"):
                async with dial(f"wss://127.0.0.1:{port}", ssl_context=tls.client_context(trust), connect_timeout=60):
                    pass
        with pytest.raises(HandshakeError, match=rf"TLS handshake with 127.0.0.1:{plain} failed"):
            async with dial(f"wss://127.0.0.1:{plain}", ssl_context=certificates.trust(), connect_timeout=60):
                pass
