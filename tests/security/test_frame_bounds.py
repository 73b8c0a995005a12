"""Numbers and text a till sends are bounded when the frame is decoded: beyond them the till gets
bad_frame, the connection lives, and no lane ever sees the value (2**64 - 1 crashed a lane; 10^15 of
cash was taken and printed 1.8 x 10^19 change)."""

from __future__ import annotations

import msgspec
import pytest
import trio

from protocol.codec import SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK, TillCodec
from protocol.frames import (
    CashTender,
    Command,
    Error,
    ItemSearch,
    Login,
    RefundOf,
    SaleState,
    Scan,
    StockMove,
    Welcome,
)
from storenode.app import StoreNode
from tests.kit.tills import dial_till, kit_hello

HOSTILE: list[Command] = [
    CashTender(amount=2**64 - 1),
    CashTender(amount=-(2**63)),
    Scan(code="7310000000010", qty=2**63),
    Scan(code="7" * 100_000),
    StockMove(code="7310000000010", qty=10**9, reason="adjust"),
    ItemSearch(text="a " * 50_000),
    RefundOf(receipt="S001-1-" + "9" * 400),
    Login(operator="1" * 10_000, pin="1234"),
    Scan(code="7310000000010", ref=2**60),
]


@pytest.mark.parametrize("subprotocol", [SUBPROTOCOL_MSGPACK, SUBPROTOCOL_JSON])
async def test_out_of_bounds_fields_are_bad_frames_and_the_lane_sells_on(store: StoreNode, subprotocol: str) -> None:
    codec = TillCodec(subprotocol, "till")
    with trio.fail_after(30):
        async with dial_till(store.url, subprotocols=[subprotocol]) as ws:

            async def ask(frame: msgspec.Struct) -> object:
                await ws.send_message(codec.encode(frame))  # type: ignore[arg-type]
                while True:
                    answer = codec.decode(await ws.get_message())
                    if not isinstance(answer, SaleState) or answer.ref:
                        return answer

            assert isinstance(await ask(kit_hello(till="T1", lane=1)), Welcome)
            assert isinstance(await ask(Login(operator="1", pin="1234", ref=1)), SaleState)
            for n, frame in enumerate(HOSTILE, 2):
                if frame.ref == 0:
                    frame.ref = n
                answer = await ask(frame)
                assert isinstance(answer, Error) and answer.code == "bad_frame", (frame, answer)
                assert len(answer.message) < 600
            sold = await ask(Scan(code="7310000000010", ref=99))
            assert isinstance(sold, SaleState) and sold.lines, sold
            huge = await ask(CashTender(amount=10**11, ref=100))  # within the frame's bounds, not plausible
            assert isinstance(huge, Error) and huge.code == "tender_too_large", huge
            assert store.health.get("lane-1").restarts == 0
