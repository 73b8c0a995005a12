"""protocol.link's session over an in-memory transport: the hello and its version check, questions by
id, the heartbeat, and what happens to questions when the session ends.

The transport is a pair of memory channels that behaves as a websocket does at its edges (a closed
connection raises ConnectionClosed); "raw" peers are driven frame by frame with the link codec, so a
test can answer out of order, late, or not at all. Time is trio's autojump clock: virtual seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
from trio_websocket import CloseReason, ConnectionClosed

from protocol import identity
from protocol.codec import LinkCodec
from protocol.frames import (
    LINK_VERSION,
    Answer,
    ExchangeRate,
    JournalAnswer,
    JournalQuestion,
    LanesAnswer,
    LanesQuestion,
    LinkError,
    LinkFrame,
    LinkHello,
    LinkProof,
    LinkWelcome,
    Ping,
    Pong,
    Question,
    RatesAnswer,
    RatesQuestion,
    Refusal,
    StockQuestion,
)
from protocol.link import Incompatible, NoAnswer, Refused, Session, Silent, accept, greet, prove

CODEC = LinkCodec()
KEY = identity.generate()
HELLO = LinkHello(node="S001", role="store", key=identity.public_bytes(KEY))


async def identify(hello: LinkHello) -> bytes:
    """The registry's part, played: the one store it knows, S001, must prove KEY."""
    if hello.node != "S001":
        raise Refused(f"central does not know store {hello.node}", "unknown_store")
    return HELLO.key


class End:
    """One end of an in-memory connection, with a websocket's send_message / get_message."""

    def __init__(self, send: trio.MemorySendChannel[bytes | str], receive: trio.MemoryReceiveChannel[bytes | str]):
        self._send = send
        self._receive = receive

    async def send_message(self, message: bytes | str) -> None:
        try:
            await self._send.send(message)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise ConnectionClosed(CloseReason(1006, "the other end is gone")) from None

    async def get_message(self) -> bytes | str:
        try:
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise ConnectionClosed(CloseReason(1000, "closed")) from None

    def close(self) -> None:
        self._send.close()
        self._receive.close()

    # A raw peer's helpers: frames rather than bytes.
    async def send(self, frame: LinkFrame) -> None:
        await self.send_message(CODEC.encode(frame))

    async def receive(self) -> Any:
        return CODEC.decode(await self.get_message())


def pair() -> tuple[End, End]:
    a_send, b_receive = trio.open_memory_channel[bytes | str](16)
    b_send, a_receive = trio.open_memory_channel[bytes | str](16)
    return End(a_send, a_receive), End(b_send, b_receive)


def answering(table: dict[type, Callable[[Any], Answer]]) -> Callable[[Question[Any]], Awaitable[Answer]]:
    async def answer(question: Question[Any]) -> Answer:
        reply = table.get(type(question))
        if reply is None:
            raise Refused(f"nobody answers {type(question).__name__}")
        return reply(question)

    return answer


async def ignore(frame: Any) -> None:
    raise AssertionError(f"unexpected {frame!r}")


def rates(question: RatesQuestion) -> RatesAnswer:
    if question.base != "SEK":
        raise Refused(f"no rates for {question.base}")
    return RatesAnswer(rates=[ExchangeRate(base="SEK", currency="EUR", rate=11_450_000, at=1)])


async def welcome(hello: LinkHello) -> LinkWelcome:
    return LinkWelcome(node="central", acked={"journal": 3})


# -------------------------------------------------------------------------------------------------
# The hello and its version check
# -------------------------------------------------------------------------------------------------


async def test_hello_then_questions_both_ways(autojump_clock: trio.abc.Clock) -> None:
    store_end, central_end = pair()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            greeted = trio.Event()
            got: list[LinkWelcome] = []

            async def store_side() -> None:
                got.append(await greet(store_end, HELLO, peer="central", key=KEY))
                greeted.set()

            nursery.start_soon(store_side)
            hello = await accept(central_end, welcome, node="central", identify=identify)
            await greeted.wait()
            assert hello == HELLO
            assert got == [LinkWelcome(node="central", acked={"journal": 3}, version=LINK_VERSION)]

            store = Session(
                store_end, "central", answering({LanesQuestion: lambda q: LanesAnswer(last={1: 9})}), ask_timeout=3
            )
            central = Session(central_end, "store S001", answering({RatesQuestion: rates}), ask_timeout=3)
            nursery.start_soon(store.run, ignore)
            nursery.start_soon(central.run, ignore)
            answer = await store.ask(RatesQuestion(base="SEK"))
            assert isinstance(answer, RatesAnswer) and answer.rates[0].rate == 11_450_000 and answer.id > 0
            assert (await central.ask(LanesQuestion())).last == {1: 9}
            with pytest.raises(Refused, match="central could not answer RatesQuestion: no rates for NOK"):
                await store.ask(RatesQuestion(base="NOK"))
            with pytest.raises(Refused, match="nobody answers JournalQuestion"):
                await central.ask(JournalQuestion(lane=1, after=0, limit=10))
            nursery.cancel_scope.cancel()


async def test_central_refuses_a_store_of_another_version_and_both_say_why(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    store_end, central_end = pair()
    caplog.set_level(logging.WARNING, logger="protocol.link")
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            refused: list[Incompatible] = []

            async def store_side() -> None:
                with pytest.raises(Incompatible) as info:
                    await greet(store_end, LinkHello(node="S001", role="store", version=1), peer="central")
                refused.append(info.value)

            nursery.start_soon(store_side)
            with pytest.raises(Incompatible) as info:
                await accept(central_end, welcome, node="central", identify=identify)
    both = f"store S001 speaks link protocol version 1 but central speaks version {LINK_VERSION}"
    assert both in str(info.value)  # the refusing side
    assert both in str(refused[0]) and str(refused[0]).startswith("central refused us")  # the refused side
    assert any(both in r.getMessage() and "incompatible_version" in r.getMessage() for r in caplog.records)


async def test_a_store_refuses_a_central_of_another_version(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A central that does not check (an older one) welcomes anyone: the store refuses it, telling it why."""
    store_end, central_end = pair()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(central_end.receive)  # the hello, not checked
            await central_end.send(LinkWelcome(node="central", acked={}, version=1))
            with pytest.raises(Incompatible) as info:
                await greet(store_end, LinkHello(node="S001", role="store"), peer="central")
            told = await central_end.receive()
    both = f"central speaks link protocol version 1 but store S001 speaks version {LINK_VERSION}"
    assert (
        str(info.value)
        == f"we refused central: {both}: they cannot work together until one is upgraded to match the other"
    )
    assert isinstance(told, LinkError) and told.code == "incompatible_version" and both in told.message
    assert any(both in r.getMessage() for r in caplog.records)


async def test_a_hello_that_is_not_one_is_refused(autojump_clock: trio.abc.Clock) -> None:
    store_end, central_end = pair()
    with trio.fail_after(5):
        await store_end.send(Ping())
        with pytest.raises(Refused, match="expected a store hello"):
            await accept(central_end, welcome, node="central", identify=identify)
        told = await store_end.receive()
        assert isinstance(told, LinkError) and told.code == "hello_first"
        await central_end.send(LinkError(code="hello_first", message="send a store hello first"))
        with pytest.raises(Refused, match="central refused us: hello_first") as info:
            await greet(store_end, LinkHello(node="S001", role="store"), peer="central")
        assert info.value.code == "hello_first"


async def test_a_proof_made_for_another_challenge_is_refused_before_the_welcome(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A store that signs something else (an old nonce, another central's name) is refused with
    bad_proof, and `welcome` is never asked: nothing of the store's is touched."""
    store_end, central_end = pair()
    welcomed: list[LinkHello] = []

    async def counting(hello: LinkHello) -> LinkWelcome:
        welcomed.append(hello)
        return await welcome(hello)

    with trio.fail_after(5):
        await store_end.send(HELLO)
        async with trio.open_nursery() as nursery:
            refused: list[Refused] = []

            async def central_side() -> None:
                with pytest.raises(Refused) as info:
                    await accept(central_end, counting, node="central", identify=identify)
                refused.append(info.value)

            nursery.start_soon(central_side)
            challenge = await store_end.receive()
            assert challenge.node == "central" and len(challenge.nonce) == identity.NONCE_BYTES
            other = bytes(32)  # a recorded nonce: not this connection's
            await store_end.send(LinkProof(signature=prove(KEY, other, "central", "S001", HELLO.key)))
            told = await store_end.receive()
    assert isinstance(told, LinkError) and told.code == "bad_proof"
    assert refused[0].code == "bad_proof" and welcomed == []


async def test_a_hello_out_of_bounds_is_refused_before_identify(autojump_clock: trio.abc.Clock) -> None:
    asked: list[LinkHello] = []

    async def recording(hello: LinkHello) -> bytes:
        asked.append(hello)
        return await identify(hello)

    bad = [
        (LinkHello(node="S\x00001", role="store", key=HELLO.key), "bad_store_id"),
        (LinkHello(node="S" * 1000, role="store", key=HELLO.key), "bad_store_id"),
        (LinkHello(node="S001", role="store", key=b"\x01" * 31), "bad_key"),
        (LinkHello(node="S001", role="store", key=HELLO.key, token="t" * 100_000), "bad_token"),
        (LinkHello(node="S001", role="store", key=HELLO.key, previous=HELLO.key), "bad_key"),
    ]
    with trio.fail_after(5):
        for hello, code in bad:
            store_end, central_end = pair()
            await store_end.send(hello)
            with pytest.raises(Refused) as info:
                await accept(central_end, welcome, node="central", identify=recording)
            told = await store_end.receive()
            assert info.value.code == code and isinstance(told, LinkError) and told.code == code
            assert len(told.message) < 200  # the peer's name comes back bounded
    assert asked == []


# -------------------------------------------------------------------------------------------------
# Questions by id
# -------------------------------------------------------------------------------------------------


async def test_answers_find_their_question_by_id_in_any_order(autojump_clock: trio.abc.Clock) -> None:
    mine, raw = pair()
    session = Session(mine, "central", answering({}), ask_timeout=3)
    got: dict[str, Any] = {}
    both = trio.Event()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(session.run, ignore)

            async def ask(base: str) -> None:
                got[base] = await session.ask(RatesQuestion(base=base))
                if len(got) == 2:
                    both.set()

            nursery.start_soon(ask, "SEK")
            first = await raw.receive()
            nursery.start_soon(ask, "NOK")
            second = await raw.receive()
            assert (first.base, second.base) == ("SEK", "NOK") and first.id != second.id
            await raw.send(RatesAnswer(id=second.id, rates=[ExchangeRate("NOK", "EUR", 2, 0)]))
            await raw.send(RatesAnswer(id=first.id, rates=[ExchangeRate("SEK", "EUR", 1, 0)]))
            await both.wait()
            nursery.cancel_scope.cancel()
    assert got["SEK"].rates[0].rate == 1 and got["NOK"].rates[0].rate == 2


async def test_a_late_answer_is_dropped_and_the_next_question_gets_its_own(autojump_clock: trio.abc.Clock) -> None:
    mine, raw = pair()
    session = Session(mine, "central", answering({}), ask_timeout=3)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(session.run, ignore)
            start = trio.current_time()
            with pytest.raises(NoAnswer, match=r"central did not answer RatesQuestion within 3 s"):
                await session.ask(RatesQuestion(base="SEK"))
            assert trio.current_time() - start == pytest.approx(3)
            late = await raw.receive()
            # The caller's own deadline, shorter than the session's bound, is the one that counts.
            start = trio.current_time()
            with pytest.raises(trio.TooSlowError), trio.fail_after(1):
                await session.ask(RatesQuestion(base="NOK"))
            assert trio.current_time() - start == pytest.approx(1)
            await raw.receive()

            async def answer_late_then_right() -> None:
                question = await raw.receive()
                await raw.send(RatesAnswer(id=late.id, rates=[ExchangeRate("SEK", "EUR", 666, 0)]))
                await raw.send(RatesAnswer(id=424242, rates=[]))  # an id never asked
                await raw.send(RatesAnswer(id=question.id, rates=[ExchangeRate("DKK", "EUR", 7, 0)]))

            nursery.start_soon(answer_late_then_right)
            answer = await session.ask(RatesQuestion(base="DKK"))
            assert answer.rates[0].rate == 7
            nursery.cancel_scope.cancel()


async def test_an_answer_of_the_wrong_type_is_no_answer(autojump_clock: trio.abc.Clock) -> None:
    mine, raw = pair()
    session = Session(mine, "central", answering({}), ask_timeout=3)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(session.run, ignore)

            async def answer_wrongly() -> None:
                question = await raw.receive()
                await raw.send(Pong(id=question.id))

            nursery.start_soon(answer_wrongly)
            with pytest.raises(NoAnswer, match="answered StockQuestion with Pong, not StockAnswer"):
                await session.ask(StockQuestion(item="1001"))
            nursery.cancel_scope.cancel()


async def test_pending_questions_fail_at_once_when_the_session_ends(autojump_clock: trio.abc.Clock) -> None:
    mine, raw = pair()
    session = Session(mine, "central", answering({}), ask_timeout=60)
    failures: list[str] = []

    async def ask() -> None:
        with pytest.raises(NoAnswer) as info:
            await session.ask(RatesQuestion(base="SEK"))
        failures.append(str(info.value))

    with trio.fail_after(5):  # far less than the questions' own 60 s
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(ask)

            async def read() -> None:
                with pytest.raises(ConnectionClosed):
                    await session.run(ignore)

            nursery.start_soon(read)
            for _ in range(3):
                await raw.receive()
            raw.close()  # the peer goes away with three questions unanswered
    assert len(failures) == 3
    assert all(
        f.startswith("central did not answer RatesQuestion: the session ended: ConnectionClosed") for f in failures
    )
    with pytest.raises(NoAnswer, match="central cannot answer RatesQuestion: the session ended"):
        await session.ask(RatesQuestion(base="SEK"))  # and nothing waits on a session that is over


async def test_questions_are_answered_with_their_id_and_refused_when_they_cannot_be(
    autojump_clock: trio.abc.Clock,
) -> None:
    mine, raw = pair()

    def journal(question: JournalQuestion) -> JournalAnswer:
        if question.lane != 1:
            raise ValueError("no such lane")  # a bug in an answerer refuses one question, not the link
        return JournalAnswer(lane=1, entries=[])

    session = Session(mine, "central", answering({JournalQuestion: journal}), ask_timeout=3)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(session.run, ignore)
            await raw.send(JournalQuestion(id=41, lane=1, after=0, limit=10))
            assert await raw.receive() == JournalAnswer(id=41, lane=1, entries=[])
            await raw.send(JournalQuestion(id=42, lane=2, after=0, limit=10))
            refusal = await raw.receive()
            assert isinstance(refusal, Refusal) and refusal.id == 42 and "ValueError: no such lane" in refusal.message
            await raw.send(LanesQuestion(id=43))
            assert await raw.receive() == Refusal(id=43, message="nobody answers LanesQuestion")
            await raw.send_message(b"\xc1 not a frame")
            bad = await raw.receive()
            assert isinstance(bad, LinkError) and bad.code == "bad_frame"
            await raw.send(Ping(id=44))
            assert await raw.receive() == Pong(id=44)  # the link lived through all of it
            nursery.cancel_scope.cancel()


async def test_other_frames_are_delivered_in_order(autojump_clock: trio.abc.Clock) -> None:
    mine, raw = pair()
    session = Session(mine, "store S001", answering({}), ask_timeout=3)
    delivered: list[Any] = []
    three = trio.Event()

    async def deliver(frame: Any) -> None:
        delivered.append(frame)
        if len(delivered) == 3:
            three.set()

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(session.run, deliver)
            frames = [
                LinkError(code="a", message="1"),
                LinkWelcome(node="x", acked={}),
                LinkError(code="b", message="2"),
            ]
            for frame in frames:
                await raw.send(frame)
            await three.wait()
            nursery.cancel_scope.cancel()
    assert delivered == frames


# -------------------------------------------------------------------------------------------------
# Heartbeat
# -------------------------------------------------------------------------------------------------


async def test_a_silent_peer_ends_the_session_within_three_heartbeats(autojump_clock: trio.abc.Clock) -> None:
    mine, raw = pair()
    session = Session(mine, "central", answering({}), ask_timeout=3, heartbeat=1.0)
    pings: list[Any] = []

    async def swallow() -> None:  # the connection stays open; nothing is answered
        while True:
            pings.append(await raw.receive())

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(swallow)
            start = trio.current_time()
            with pytest.raises(Silent, match="central missed its heartbeat: central did not answer Ping within 2 s"):
                await session.run(ignore)
            assert trio.current_time() - start == pytest.approx(3)  # a ping after 1 s, then 2 s for its pong
            nursery.cancel_scope.cancel()
    assert [type(p) for p in pings] == [Ping]


async def test_heartbeats_keep_a_live_session_up(autojump_clock: trio.abc.Clock) -> None:
    a_end, b_end = pair()
    a = Session(a_end, "b", answering({}), ask_timeout=3, heartbeat=1.0)
    b = Session(b_end, "a", answering({}), ask_timeout=3, heartbeat=0.5)
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(a.run, ignore)
            nursery.start_soon(b.run, ignore)
            await trio.sleep(100)  # a hundred virtual seconds of pings both ways, none missed
            nursery.cancel_scope.cancel()
