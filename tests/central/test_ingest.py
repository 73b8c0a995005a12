"""Central applies each store event exactly once, over a real link; the store replays after offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio

from central.app import CentralNode
from central.registers import giftcards, sales
from protocol.codec import LINK_SUBPROTOCOL, LinkCodec
from protocol.frames import (
    Ack,
    Answer,
    CashTender,
    Event,
    EventBatch,
    GiftCardMove,
    GiftCardMoveQuestion,
    GiftCardQuestion,
    LanesQuestion,
    LinkError,
    LinkWelcome,
    Login,
    Question,
    Receipt,
    Scan,
    StockQuestion,
)
from protocol.link import Refused, Session, greet
from protocol.websocket import dial
from runtime.clock import FixedClock
from storenode.app import StoreNode
from tests.kit import certificates
from tests.kit.journal import StoreKey
from tests.kit.nodes import central_node, enrolled, make_store_config, registered
from till.client import connect

KEY = StoreKey("S9")


def batch(*seqs: int, store: str = "S9") -> EventBatch:
    """Receipts numbered as their seqs on lane 1, signed by S9's key (the same bytes on every resend)."""
    return EventBatch(store=store, stream="journal", events=[KEY.event(s, s) for s in seqs])


async def test_duplicates_and_gaps_are_never_applied(central: CentralNode) -> None:
    codec = LinkCodec()
    await central.db.write(KEY.enrol)
    hello, key = KEY.hello(), KEY.signer.key
    with trio.fail_after(20):
        async with dial(central.url, subprotocols=[LINK_SUBPROTOCOL], ssl_context=certificates.trust()) as ws:
            welcome = await greet(ws, hello, peer="central", key=key)
            assert isinstance(welcome, LinkWelcome) and welcome.acked == {}

            async def send(frame: object) -> object:
                await ws.send_message(codec.encode(frame))
                return codec.decode(await ws.get_message())

            assert await send(batch(1, 2, 3)) == Ack(store="S9", stream="journal", seq=3)
            assert await send(batch(2, 3)) == Ack(store="S9", stream="journal", seq=3)  # a resend
            assert await send(batch(1, 2)) == Ack(store="S9", stream="journal", seq=2)  # names only what it got
            # a gap: nothing applied, and the ack says so
            assert await send(batch(5, 6)) == Ack(store="S9", stream="journal", seq=3, gap=True)
            assert await send(batch(3, 4, 5)) == Ack(store="S9", stream="journal", seq=5)
            refused = await send(EventBatch(store="S9", stream="journal", events=[Event(6, "sale", b"\xc1junk")]))
            assert isinstance(refused, LinkError) and refused.code == "bad_batch"
            other = await send(batch(6, store="S8"))
            assert isinstance(other, LinkError) and other.code == "unexpected"
            await ws.send_message(b"\x00\x01garbage")
            assert isinstance(codec.decode(await ws.get_message()), LinkError)
            assert await send(batch(6)) == Ack(store="S9", stream="journal", seq=6)  # the link survived it all
        got = await central.db.read(lambda c: sales.receipts(c, "S9"))
        assert [r.receipt_no for r in got] == [1, 2, 3, 4, 5, 6]
        async with dial(central.url, subprotocols=[LINK_SUBPROTOCOL], ssl_context=certificates.trust()) as ws:
            welcome = await greet(ws, hello, peer="central", key=key)
            assert isinstance(welcome, LinkWelcome) and welcome.acked == {"journal": 6}
            assert len(welcome.catalog_epoch) == 16  # named when central's database was made


async def test_a_store_sells_offline_and_replays_exactly_once(tmp_path: Path, nursery: trio.Nursery) -> None:
    # Reserve central's port first, so the store can be pointed at it while nobody listens there.
    probe = central_node(tmp_path / "probe.db", port=0)
    async with trio.open_nursery() as scratch:
        await scratch.start(probe.run)
        port = probe.bound_port
        scratch.cancel_scope.cancel()
    config = make_store_config(tmp_path, central_url=f"wss://127.0.0.1:{port}")
    store = StoreNode(enrolled(config, tmp_path / "central.db"), clock=FixedClock(0))
    await nursery.start(store.run)
    with trio.fail_after(60):
        async with connect(store.url, lane=1, till="T1") as till:
            await till.request(Login(operator="1", pin="1234"))
            for _ in range(5):
                await till.request(Scan(code="7310000000010"))
                assert isinstance(await till.request(CashTender(amount=2000)), Receipt)
            status = await till.status()
            assert status.link == "offline" and status.outbox == 10  # type: ignore[union-attr]  # 5 sales + 5 stock
        central = central_node(tmp_path / "central.db", port=port)
        await nursery.start(central.run)
        await store.signal.wait_empty()
        got = await central.db.read(lambda c: sales.receipts(c, "S001"))
        assert [r.receipt_no for r in got] == [1, 2, 3, 4, 5]
        assert store.link.online


async def test_questions_over_a_real_link_get_typed_answers_or_refusals(central: CentralNode) -> None:
    """A store's session asks central, which answers through questions.ANSWERS by the question's type."""
    await central.db.write(lambda c: giftcards.issue(c, "GC-1", "giftcard", 2500, "SEK", at=0))
    with trio.fail_after(20):
        hello, key = await registered(central, "S9")
        async with dial(central.url, subprotocols=[LINK_SUBPROTOCOL], ssl_context=certificates.trust()) as ws:
            await greet(ws, hello, peer="central", key=key)
            session = Session(ws, "central", refuse_all, ask_timeout=5)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(session.run, ignore_frames)
                card = (await session.ask(GiftCardQuestion(card="GC-1"))).card
                assert (card.card, card.balance, card.currency) == ("GC-1", 2500, "SEK")
                with pytest.raises(Refused, match="central could not answer GiftCardQuestion: no gift card GC-2"):
                    await session.ask(GiftCardQuestion(card="GC-2"))
                move = GiftCardMove(
                    move="m1", kind="redeem", card="GC-1", amount=500, currency="SEK", store="S8", sale_id="s", at=0
                )
                with pytest.raises(Refused, match="a move for store S8, not S9"):
                    await session.ask(GiftCardMoveQuestion(move=move))
                moved = await session.ask(GiftCardMoveQuestion(move=msgspec.structs.replace(move, store="S9")))
                assert moved.card.balance == 2000 and moved.card.amount == 500
                assert (await session.ask(StockQuestion(item="nothing"))).levels == []
                with pytest.raises(Refused, match="central does not answer LanesQuestion"):
                    await session.ask(LanesQuestion())
                nursery.cancel_scope.cancel()


async def refuse_all(question: Question[Any]) -> Answer:
    raise Refused("this test answers nothing")


async def ignore_frames(frame: Any) -> None:
    pass
