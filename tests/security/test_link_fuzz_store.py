"""The other way round: a central (a fake one with the chain's certificate, at the transport seam) sends a
store's link every link frame with arbitrary fields, and raw bytes. The store keeps selling, its lanes
never restart, and its journal verifies."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import trio
from hypothesis import given, settings
from trio_websocket import ConnectionClosed, WebSocketRequest

from protocol.codec import LINK_SUBPROTOCOL, FrameError, LinkCodec
from protocol.frames import LinkChallenge, LinkWelcome, Ping, Pong
from protocol.websocket import serve
from runtime.clock import FixedClock
from runtime.supervision import Backoff
from storenode.app import StoreNode
from storenode.journal import chain
from tests.kit import certificates
from tests.kit.fuzzing import LINK_SETTINGS, STEPS
from tests.kit.nodes import make_store_config
from tests.kit.wiretill import wire_sale

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0")) // 10 or 15
CODEC = LinkCodec()


async def test_any_link_frame_from_central_leaves_the_store_selling(
    tmp_path: Path, nursery: trio.Nursery, clock: FixedClock
) -> None:
    sessions: trio.MemorySendChannel[list[bytes | None]]
    sessions, pending = trio.open_memory_channel[list[bytes | None]](0)
    done = trio.Event()

    async def fake_central(request: WebSocketRequest) -> None:
        """Welcome the store as central does (its proof unchecked: this central trusts anyone), then send
        the next example's frames, and keep reading whatever the store says until it or the test ends."""
        nonlocal done
        ws = await request.accept(subprotocol=LINK_SUBPROTOCOL)
        try:
            await ws.get_message()  # the hello
            await ws.send_message(CODEC.encode(LinkChallenge(node="central", nonce=os.urandom(32))))
            await ws.get_message()  # the proof
            await ws.send_message(CODEC.encode(LinkWelcome(node="central", acked={})))
            async with trio.open_nursery() as inner:

                async def drain() -> None:  # answering the store's heartbeat, so only the fuzzing ends a link
                    with contextlib.suppress(ConnectionClosed):
                        while True:
                            with contextlib.suppress(FrameError):
                                frame = CODEC.decode(await ws.get_message())
                                if isinstance(frame, Ping):
                                    await ws.send_message(CODEC.encode(Pong(id=frame.id)))

                inner.start_soon(drain)
                steps = await pending.receive()
                with contextlib.suppress(ConnectionClosed):  # the store may close a link it cannot trust
                    for data in steps:
                        if data is not None:
                            await ws.send_message(data)
                    await ws.aclose()
                inner.cancel_scope.cancel()
        except ConnectionClosed:
            pass
        finally:
            done.set()

    port = await nursery.start(
        lambda task_status: serve(
            fake_central,
            "127.0.0.1",
            0,
            "fake central",
            ssl_context=certificates.central_context(),
            task_status=task_status,
        )
    )
    config = make_store_config(tmp_path, central_url=f"wss://127.0.0.1:{port}")
    node = StoreNode(config, clock=clock)
    node.link.backoff = Backoff(initial=0.01, cap=0.05)  # one reconnect per example: no need to wait it out
    node.link.refused_retry = 0.05  # a fuzzed LinkError may read as central refusing the store
    await nursery.start(node.run)
    lanes = dict(node.lanes)

    async def example(steps: list[bytes | None]) -> None:
        nonlocal done
        with trio.fail_after(30):
            done = trio.Event()
            await sessions.send(steps)
            await done.wait()
            await wire_sale(node, "storepos.msgpack")
            assert dict(node.lanes) == lanes
            assert all(node.health.get(f"lane-{n}").restarts == 0 for n in lanes), node.health.snapshot()
        keys = {node.signer.key_id: node.signer.public}
        checked, problems = await node.db.read(lambda c: chain.verify(c, node.config.store, keys))
        assert checked >= 1 and problems == [], problems

    @settings(LINK_SETTINGS, max_examples=EXAMPLES)
    @given(STEPS)
    def explore(steps: list[bytes | None]) -> None:
        trio.from_thread.run(example, steps)

    with trio.fail_after(EXAMPLES * 30 + 30):
        await trio.to_thread.run_sync(explore)
