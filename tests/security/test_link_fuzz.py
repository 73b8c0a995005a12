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
import typing
from typing import Any

import msgspec
import trio
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from trio_websocket import ConnectionClosed, WebSocketConnection

from central.app import CentralNode
from central.registers import sales
from protocol.codec import LINK_SUBPROTOCOL, LinkCodec
from protocol.frames import Ack, Event, EventBatch, LinkMessage, LinkWelcome, Ping, Pong
from protocol.link import greet
from protocol.websocket import dial
from tests.kit import certificates
from tests.kit.fuzzing import ANY_TEXT, INT64_EDGES
from tests.kit.journal import StoreKey
from tests.kit.nodes import registered

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0")) // 10 or 25
FUZZER = "S777"
CODEC = LinkCodec()

INTS = st.one_of(st.integers(-5, 100), st.sampled_from(INT64_EDGES), st.integers(-(2**63), 2**64 - 1))
TEXT = st.one_of(ANY_TEXT, st.sampled_from(["", FUZZER, "OTHER", "journal", "stock", "giftcard", "S001"]))


def _values(hint: Any) -> st.SearchStrategy[Any]:
    """Values of a link frame's field type, any that MessagePack carries (nested structs, tuples, lists)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is int:
        return INTS
    if hint is str:
        return TEXT
    if hint is bytes:
        return st.binary(max_size=80)
    if hint is bool:
        return st.booleans()
    if hint is type(None):
        return st.none()
    if origin is list:
        return st.lists(_values(args[0]), max_size=4)
    if origin is dict:
        return st.dictionaries(_values(args[0]), _values(args[1]), max_size=3)
    if origin is tuple:
        return st.tuples(*(_values(a) for a in args))
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return st.one_of([_values(a) for a in args])
    if isinstance(hint, type) and issubclass(hint, msgspec.Struct):
        return link_frames(hint)
    raise TypeError(f"no fuzzing strategy for {hint!r}")


def link_frames(cls: type[msgspec.Struct]) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    return st.builds(cls, **{f.name: _values(hints[f.name]) for f in msgspec.structs.fields(cls)})


def _encoded(frame: Any) -> bytes | None:
    try:
        return CODEC.encode(frame)
    except OverflowError:
        return None


RAW = st.one_of(
    st.binary(max_size=200),
    st.lists(st.one_of(INTS, TEXT, st.binary(max_size=20)), max_size=8).map(msgspec.msgpack.encode),
    st.sampled_from([b"\x91" * 100_000 + b"\xc0", b"\xdd\xff\xff\xff\xff", b"\xc1"]),  # deep, huge, invalid
)
FORGER = StoreKey(FUZZER)  # the fuzzing store's id, but a key central never registered for it
FORGED = st.integers(1, 5).map(lambda n: EventBatch(store=FUZZER, stream="journal", events=[FORGER.event(n, n)]))
BATCHES = st.builds(
    EventBatch,
    store=st.sampled_from([FUZZER, "OTHER", ""]),
    stream=st.sampled_from(["journal", "stock", "giftcard", "x"]),
    events=_values(list[Event]),
)
ANY_FRAME = st.one_of([link_frames(c) for c in typing.get_args(LinkMessage)])
STEPS = st.lists(
    st.sampled_from([ANY_FRAME, ANY_FRAME, BATCHES, FORGED]).flatmap(lambda drawn: drawn.map(_encoded)) | RAW,
    max_size=8,
)

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # one central carries state across examples: no shrinking
    suppress_health_check=list(HealthCheck),
)


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

    @FUZZ
    @given(STEPS)
    def explore(steps: list[bytes | None]) -> None:
        trio.from_thread.run(example, steps)

    with trio.fail_after(EXAMPLES * 30):
        await trio.to_thread.run_sync(explore)
