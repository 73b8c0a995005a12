"""The till gateway refuses a till of another protocol version with an error naming both, and closes."""

from __future__ import annotations

import logging

import pytest
import trio
from trio_websocket import ConnectionClosed

from protocol.codec import SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK, TillCodec
from protocol.frames import PROTOCOL_VERSION, Error, Hello, Welcome
from protocol.websocket import dial
from storenode.app import StoreNode


@pytest.mark.parametrize("subprotocol", [SUBPROTOCOL_MSGPACK, SUBPROTOCOL_JSON])
async def test_a_till_of_another_version_is_told_why_and_closed(
    store: StoreNode, caplog: pytest.LogCaptureFixture, subprotocol: str
) -> None:
    codec = TillCodec(subprotocol, "till")
    other = PROTOCOL_VERSION + 1
    with trio.fail_after(10):
        async with dial(store.url, subprotocols=[subprotocol]) as ws:
            await ws.send_message(codec.encode(Hello(till="T9", lane=1, version=other)))
            error = codec.decode(await ws.get_message())
            assert isinstance(error, Error) and error.code == "incompatible_version", error
            both = f"till T9 speaks till protocol version {other} but this store speaks version {PROTOCOL_VERSION}"
            assert error.message.startswith(both)
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
            assert closed.value.reason.code == 1002 and closed.value.reason.reason == "incompatible protocol version"
        refusals = [r for r in caplog.records if r.name == "storenode.gateway" and both in r.getMessage()]
        assert refusals and refusals[0].levelno == logging.WARNING
        # The lane never had the till attached, and a till of this version is welcomed as ever.
        async with dial(store.url, subprotocols=[subprotocol]) as ws:
            await ws.send_message(codec.encode(Hello(till="T1", lane=1)))
            assert isinstance(codec.decode(await ws.get_message()), Welcome)
