"""The till gateway refuses a till of another protocol version with an error naming both, and closes."""

from __future__ import annotations

import contextlib
import logging

import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketRequest

from protocol.codec import SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK, TillCodec
from protocol.frames import PROTOCOL_VERSION, Error, Hello, SaleState, Welcome
from protocol.websocket import serve
from storenode.app import StoreNode
from tests.kit.tills import dial_till, kit_hello
from till.client import connect


@pytest.mark.parametrize("subprotocol", [SUBPROTOCOL_MSGPACK, SUBPROTOCOL_JSON])
async def test_a_till_of_another_version_is_told_why_and_closed(
    store: StoreNode, caplog: pytest.LogCaptureFixture, subprotocol: str
) -> None:
    codec = TillCodec(subprotocol, "till")
    other = PROTOCOL_VERSION + 1
    with trio.fail_after(10):
        async with dial_till(store.url, subprotocols=[subprotocol]) as ws:
            await ws.send_message(codec.encode(kit_hello(till="T9", lane=1, version=other)))
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
        async with dial_till(store.url, subprotocols=[subprotocol]) as ws:
            await ws.send_message(codec.encode(kit_hello(till="T1", lane=1)))
            assert isinstance(codec.decode(await ws.get_message()), Welcome)


async def test_a_till_client_refuses_a_store_of_another_version(nursery: trio.Nursery) -> None:
    """The other direction: a store welcoming in a version this till does not speak is refused by the
    till, with both versions named, instead of the till failing later on frames it cannot read."""
    codec = TillCodec(SUBPROTOCOL_MSGPACK, "store")
    other = PROTOCOL_VERSION + 1

    async def newer_store(request: WebSocketRequest) -> None:
        ws = await request.accept(subprotocol=SUBPROTOCOL_MSGPACK)
        hello = codec.decode(await ws.get_message())
        assert isinstance(hello, Hello)
        await ws.send_message(
            codec.encode(
                Welcome(
                    store="S9",
                    lane=1,
                    till=hello.till,
                    state=SaleState(lane=1, status="closed", currency="SEK"),
                    version=other,
                )
            )
        )
        with contextlib.suppress(ConnectionClosed):
            await ws.get_message()

    port = await nursery.start(serve, newer_store, "127.0.0.1", 0, "a newer store")
    with trio.fail_after(10), pytest.raises(ConnectionRefusedError) as refused:
        async with connect(f"ws://127.0.0.1:{port}", lane=1, till="T1"):
            pass
    both = f"store S9 speaks till protocol version {other} but this till speaks version {PROTOCOL_VERSION}"
    assert str(refused.value).startswith(f"incompatible_version: {both}")


async def test_a_hostile_till_name_reaches_the_refusal_and_the_log_bounded_and_printable(
    store: StoreNode, caplog: pytest.LogCaptureFixture
) -> None:
    codec = TillCodec(SUBPROTOCOL_MSGPACK, "till")
    name = "\x1b[2J\x07" * 12  # clears a terminal and rings its bell: 60 characters (a name has at most 64)
    with trio.fail_after(10):
        async with dial_till(store.url, subprotocols=[SUBPROTOCOL_MSGPACK]) as ws:
            await ws.send_message(codec.encode(kit_hello(till=name * 300, lane=1, version=PROTOCOL_VERSION + 1)))
            too_long = codec.decode(await ws.get_message())
            await ws.send_message(codec.encode(kit_hello(till=name, lane=1, version=PROTOCOL_VERSION + 1)))
            error = codec.decode(await ws.get_message())
    assert isinstance(too_long, Error) and too_long.code == "bad_frame", too_long
    assert too_long.message.isprintable() and len(too_long.message) < 300, too_long.message
    assert isinstance(error, Error) and error.code == "incompatible_version"
    assert error.message.isprintable() and len(error.message) < 300, error.message
    logged = [r.getMessage() for r in caplog.records if r.name == "storenode.gateway"]
    assert logged and all(m.isprintable() and len(m) < 400 for m in logged)
