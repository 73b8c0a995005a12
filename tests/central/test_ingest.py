"""Central applies each store event exactly once, over a real link; the store replays after offline."""

from __future__ import annotations

from pathlib import Path

import trio

from central.app import CentralNode
from central.registers import sales
from protocol.codec import LINK_SUBPROTOCOL, LinkCodec, encode_record
from protocol.frames import (
    Ack,
    CashTender,
    Event,
    EventBatch,
    LinkError,
    LinkHello,
    LinkWelcome,
    Login,
    Receipt,
    SaleRecord,
    Scan,
)
from protocol.websocket import dial
from runtime.clock import FixedClock
from storenode.app import StoreNode
from tests.kit.nodes import make_store_config
from till.client import connect


def record(receipt_no: int, store: str = "S9") -> bytes:
    return encode_record(
        SaleRecord(
            store=store,
            lane=1,
            receipt_no=receipt_no,
            kind="sale",
            sale_id=f"sale-{receipt_no}",
            operator="1",
            opened_at=0,
            closed_at=0,
            currency="SEK",
            lines=[],
            total=100 * receipt_no,
            rounding=0,
            vat=[],
            tenders=[],
            change=0,
        )
    )


def batch(*seqs: int, store: str = "S9") -> EventBatch:
    return EventBatch(store=store, stream="journal", events=[Event(seq=s, kind="sale", body=record(s)) for s in seqs])


async def test_duplicates_and_gaps_are_never_applied(central: CentralNode) -> None:
    codec = LinkCodec()
    with trio.fail_after(20):
        async with dial(central.url, subprotocols=[LINK_SUBPROTOCOL]) as ws:
            await ws.send_message(codec.encode(LinkHello(node="S9", role="store")))
            welcome = codec.decode(await ws.get_message())
            assert isinstance(welcome, LinkWelcome) and welcome.acked == {}

            async def send(frame: object) -> object:
                await ws.send_message(codec.encode(frame))
                return codec.decode(await ws.get_message())

            assert await send(batch(1, 2, 3)) == Ack(store="S9", stream="journal", seq=3)
            assert await send(batch(2, 3)) == Ack(store="S9", stream="journal", seq=3)  # a resend
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
        async with dial(central.url, subprotocols=[LINK_SUBPROTOCOL]) as ws:
            await ws.send_message(codec.encode(LinkHello(node="S9", role="store")))
            welcome = codec.decode(await ws.get_message())
            assert isinstance(welcome, LinkWelcome) and welcome.acked == {"journal": 6}
            assert len(welcome.catalog_epoch) == 16  # named when central's database was made


async def test_a_store_sells_offline_and_replays_exactly_once(tmp_path: Path, nursery: trio.Nursery) -> None:
    # Reserve central's port first, so the store can be pointed at it while nobody listens there.
    probe = CentralNode(tmp_path / "probe.db", port=0)
    async with trio.open_nursery() as scratch:
        await scratch.start(probe.run)
        port = probe.bound_port
        scratch.cancel_scope.cancel()
    config = make_store_config(tmp_path, central_url=f"ws://127.0.0.1:{port}")
    store = StoreNode(config, clock=FixedClock(0))
    await nursery.start(store.run)
    with trio.fail_after(60):
        async with connect(store.url, lane=1, till="T1") as till:
            await till.request(Login(operator="1", pin="1234"))
            for _ in range(5):
                await till.request(Scan(code="7310000000010"))
                assert isinstance(await till.request(CashTender(amount=2000)), Receipt)
            status = await till.status()
            assert status.link == "offline" and status.outbox == 10  # type: ignore[union-attr]  # 5 sales + 5 stock
        central = CentralNode(tmp_path / "central.db", port=port)
        await nursery.start(central.run)
        await store.signal.wait_empty()
        got = await central.db.read(lambda c: sales.receipts(c, "S001"))
        assert [r.receipt_no for r in got] == [1, 2, 3, 4, 5]
        assert store.link.online
