"""Every frame of the central link, with arbitrary field values, and raw bytes, sent by a store that proved
its key (issue 13, "Must hold"): central keeps serving (another store is still welcomed and its batch
acknowledged) and applies nothing from them (no sale of the fuzzing store is ever stored: no fuzzed
record carries a signature its key made over the store's chain).

One central for every example (starting one per example would cost seconds); derandomized, and
FUZZ_EXAMPLES=N (see test_frame_fuzz.py) raises the count for a soak run.
"""

from __future__ import annotations

import itertools
import os

import trio
from hypothesis import given, settings
from trio_websocket import ConnectionClosed, WebSocketConnection

from central.app import CentralNode
from central.registers import sales
from protocol.codec import LINK_SUBPROTOCOL, LinkCodec
from protocol.frames import Ack, EventBatch, LinkWelcome, Ping, Pong
from protocol.link import greet
from protocol.websocket import dial
from tests.kit import certificates
from tests.kit.fuzzing import FUZZER, LINK_SETTINGS, STEPS
from tests.kit.journal import StoreKey
from tests.kit.nodes import registered

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0")) // 10 or 25
CODEC = LinkCodec()


async def test_any_link_frame_from_a_proven_store_leaves_central_serving_and_applies_nothing(
    central: CentralNode,
) -> None:
    hello, key = await registered(central, FUZZER)
    other = StoreKey("OTHER")
    await central.db.write(other.enrol)
    seqs, pings = itertools.count(1), itertools.count(1_000_000)

    async def session(steps: list[bytes | None]) -> None:
        """Send the steps, then a ping: central answers it unless it closed the link (a refusal)."""
        async with dial(central.url, subprotocols=[LINK_SUBPROTOCOL], ssl_context=certificates.trust()) as ws:
            assert isinstance(await greet(ws, hello, peer="central", key=key), LinkWelcome)
            try:
                for data in steps:
                    if data is not None:
                        await ws.send_message(data)
                ping = Ping(id=next(pings))
                await ws.send_message(CODEC.encode(ping))
                while not (isinstance(got := CODEC.decode(await ws.get_message()), Pong) and got.id == ping.id):
                    pass
            except ConnectionClosed:
                pass

    async def still_serving(ws: WebSocketConnection) -> None:
        seq = next(seqs)
        await ws.send_message(CODEC.encode(EventBatch(store="OTHER", stream="journal", events=[other.event(seq, seq)])))
        while not isinstance(got := CODEC.decode(await ws.get_message()), Ack):
            pass
        assert got == Ack(store="OTHER", stream="journal", seq=seq), got

    async def example(steps: list[bytes | None]) -> None:
        with trio.fail_after(30):
            await session(steps)
            async with dial(central.url, subprotocols=[LINK_SUBPROTOCOL], ssl_context=certificates.trust()) as ws:
                assert isinstance(await greet(ws, other.hello(), peer="central", key=other.signer.key), LinkWelcome)
                await still_serving(ws)
        assert await central.db.read(lambda c: sales.receipts(c, FUZZER)) == []

    @settings(LINK_SETTINGS, max_examples=EXAMPLES)
    @given(STEPS)
    def explore(steps: list[bytes | None]) -> None:
        trio.from_thread.run(example, steps)

    with trio.fail_after(EXAMPLES * 30):
        await trio.to_thread.run_sync(explore)
