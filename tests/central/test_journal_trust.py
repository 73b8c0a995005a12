"""The signed journal and verified ingest, attacked over real websockets: what a forger sends is refused
whole with an alarm at central and nothing of it applied; a real sale is never acknowledged away by a
forged event under its number; and a store deletes nothing a central (real or fake) did not
acknowledge of what this session sent."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import msgspec
import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketRequest

from central.app import CentralNode
from central.registers import alarms, cursors, sales
from protocol.codec import LINK_SUBPROTOCOL, LinkCodec, decode_record
from protocol.frames import (
    Ack,
    CashTender,
    Event,
    EventBatch,
    LinkError,
    LinkHello,
    LinkWelcome,
    Login,
    Ping,
    Pong,
    Receipt,
    Scan,
)
from protocol.link import accept, greet
from protocol.websocket import dial, serve
from runtime.clock import FixedClock
from storenode.app import StoreNode
from storenode.sync import outbox
from storenode.sync.link import ALARMS
from storepos import commands
from tests.kit import certificates
from tests.kit.journal import StoreKey
from tests.kit.nodes import T0, make_store_config, store_node
from till.client import connect

Send = Callable[[EventBatch], Awaitable[object]]


@asynccontextmanager
async def link(central: CentralNode, key: StoreKey) -> AsyncIterator[Send]:
    """A raw store link: hello, then each batch answered by one frame (an Ack or a LinkError)."""
    codec = LinkCodec()
    async with dial(central.url, subprotocols=[LINK_SUBPROTOCOL], ssl_context=certificates.trust()) as ws:
        await greet(ws, key.hello(), peer="central", key=key.signer.key)

        async def send(frame: EventBatch) -> object:
            await ws.send_message(codec.encode(frame))
            return codec.decode(await ws.get_message())

        yield send


def journal(*events: Event, store: str = "S9") -> EventBatch:
    return EventBatch(store=store, stream="journal", events=list(events))


async def alarm_kinds(central: CentralNode, store: str) -> list[str]:
    return [a.kind for a in await central.db.read(lambda c: alarms.alarms(c, store))]


async def held(central: CentralNode, store: str) -> tuple[list[int], dict[str, int]]:
    """The receipts central holds for the store, and its stream cursors."""
    records = await central.db.read(lambda c: sales.receipts(c, store))
    return [r.receipt_no for r in records], await central.db.read(lambda c: cursors.cursors(c, store))


async def test_forged_records_are_refused_whole_with_an_alarm_and_nothing_applied(central: CentralNode) -> None:
    key, forger = StoreKey("S9"), StoreKey("S9")
    await central.db.write(key.enrol)
    real = [key.event(n, n) for n in (1, 2, 3)]
    claimed = msgspec.structs.replace(forger.event(1, 1), key=key.signer.key_id)  # a forger's key, S9's key id
    altered = msgspec.structs.replace(real[1], body=forger.event(2, 2, total=1).body)  # inside an authentic batch
    cases = [
        (journal(claimed), "bad_signature"),
        (journal(real[0], altered, real[2]), "bad_signature"),  # the head's signature covers receipt 2 too
        (journal(forger.event(1, 1)), "unknown_key"),
        (journal(msgspec.structs.replace(real[0], sig=b"", key="")), "bad_signature"),
    ]
    with trio.fail_after(20):
        async with link(central, key) as send:
            for frame, code in cases:
                refused = await send(frame)
                assert isinstance(refused, LinkError) and refused.code == code, refused
                assert "journal seq" in refused.message
                assert await held(central, "S9") == ([], {})  # nothing of the batch kept, not even its cursor
            assert await send(journal(*real)) == Ack(store="S9", stream="journal", seq=3)  # the link lives on
    assert await held(central, "S9") == ([1, 2, 3], {"journal": 3})
    assert await alarm_kinds(central, "S9") == ["bad_signature", "bad_signature", "unknown_key", "bad_signature"]


async def test_a_record_ahead_of_the_lane_is_refused_as_a_receipt_gap(central: CentralNode) -> None:
    key = StoreKey("S9")
    await central.db.write(key.enrol)
    with trio.fail_after(20):
        async with link(central, key) as send:
            assert await send(journal(key.event(1, 1))) == Ack(store="S9", stream="journal", seq=1)
            ahead = await send(journal(key.event(2, 3)))  # two receipts ahead, properly signed, next seq
            assert isinstance(ahead, LinkError) and ahead.code == "receipt_gap"
            assert "lane 1 receipt 3" in ahead.message and "the next is 2" in ahead.message
            # It did not take seq 2 or block the lane: the real receipt 2 goes in under that seq.
            assert await send(journal(key.event(2, 2))) == Ack(store="S9", stream="journal", seq=2)
    assert await held(central, "S9") == ([1, 2], {"journal": 2})
    assert await alarm_kinds(central, "S9") == ["receipt_gap"]


async def test_identical_resends_after_a_lost_ack_are_acknowledged_and_applied_once(central: CentralNode) -> None:
    key = StoreKey("S9")
    await central.db.write(key.enrol)
    codec = LinkCodec()
    events = [key.event(n, n) for n in (1, 2, 3)]
    with trio.fail_after(20):
        async with dial(central.url, subprotocols=[LINK_SUBPROTOCOL], ssl_context=certificates.trust()) as ws:
            await greet(ws, key.hello(), peer="central", key=key.signer.key)  # the ack is lost with the link
            await ws.send_message(codec.encode(journal(*events[:2])))
            await ws.get_message()  # the ack arrives, and the store dies before it deletes anything
        async with link(central, key) as send:
            assert await send(journal(*events[:2])) == Ack(store="S9", stream="journal", seq=2)
            assert await send(journal(*events)) == Ack(store="S9", stream="journal", seq=3)
            assert await send(journal(events[0])) == Ack(store="S9", stream="journal", seq=1)  # what it sent
    assert await held(central, "S9") == ([1, 2, 3], {"journal": 3})
    assert await alarm_kinds(central, "S9") == []


async def test_another_event_under_a_used_seq_is_refused_as_a_conflict_never_acked(central: CentralNode) -> None:
    key = StoreKey("S9")
    await central.db.write(key.enrol)
    with trio.fail_after(20):
        async with link(central, key) as send:
            assert await send(journal(key.event(1, 1), key.event(2, 2))) == Ack(store="S9", stream="journal", seq=2)
            other = key.event(2, 2, total=999)  # validly signed even: a different record under seq 2
            refused = await send(journal(other))
            assert isinstance(refused, LinkError) and refused.code == "conflict"
            assert "stream journal seq 2" in refused.message
            # After a conflict nothing more of the stream is acknowledged in this session: an ack is
            # cumulative and would cover seq 2.
            later = await send(journal(key.event(3, 3)))
            assert isinstance(later, LinkError) and "earlier batch of this session was refused" in later.message
    assert await held(central, "S9") == ([1, 2], {"journal": 2})
    assert await alarm_kinds(central, "S9") == ["conflict"]


async def test_a_seq_under_the_cursor_that_central_has_no_record_of_is_never_acknowledged(
    central: CentralNode,
) -> None:
    key = StoreKey("S9")
    await central.db.write(key.enrol)
    await central.db.write(lambda c: c.execute("INSERT INTO stream_cursors VALUES ('S9', 'journal', 1)"))
    with trio.fail_after(20):
        async with link(central, key) as send:
            refused = await send(journal(key.event(1, 1)))
            assert isinstance(refused, LinkError) and refused.code == "conflict"
    assert await held(central, "S9") == ([], {"journal": 1})


async def test_a_real_sale_is_never_lost_to_a_forged_event_under_its_number(
    tmp_path: Path, central: CentralNode, nursery: trio.Nursery, capsys: pytest.CaptureFixture[str]
) -> None:
    # Something else sits at (S001, journal, 1) at central, as a forged event applied before would.
    planted = StoreKey("S001").event(1, 1, total=1)

    def plant(c: sqlite3.Connection) -> None:
        c.execute(
            "INSERT INTO sales (store, lane, receipt_no, kind, sale_id, currency, total, closed_at, seq, body)"
            " VALUES ('S001', 1, 1, 'sale', 'forged', 'SEK', 1, 0, 1, ?)",
            (planted.body,),
        )
        c.execute("INSERT INTO stream_cursors (store, stream, seq) VALUES ('S001', 'journal', 1)")

    await central.db.write(plant)
    store = store_node(tmp_path, central, "S001")
    await nursery.start(store.run)
    with trio.fail_after(30):
        async with connect(store.url, lane=1, till="T1") as till:
            await till.request(Login(operator="1", pin="1234"))
            await till.request(Scan(code="7310000000010"))
            receipt = await till.request(CashTender(amount=2000))
            assert isinstance(receipt, Receipt)
            health = await store.health.wait_until("sync", lambda h: "batch refused: conflict" in h.detail)
            assert "stream journal seq 1" in health.detail
            status = await till.status()
    assert await alarm_kinds(central, "S001") == ["conflict"]  # raised before the store was told
    queued = await store.db.read(lambda c: outbox.queued(c, "journal"))
    assert (
        len(queued) == 1 and decode_record(queued[0][1]).sale_id == receipt.sale_id
    )  # the real sale waits in the outbox
    booked = await central.db.read(lambda c: sales.receipts(c, "S001"))
    assert [r.sale_id for r in booked] == [decode_record(planted.body).sale_id]  # nothing more booked as S001
    assert any("welcome claims journal events up to 1" in a for a in store.link.alarms)  # and the store noticed
    assert status.outbox >= 1  # type: ignore[union-attr]
    sync = [a for a in status.actors if a.name == "sync"]  # type: ignore[union-attr]
    assert sync and "batch refused: conflict" in sync[0].detail
    config = tmp_path / "store.toml"
    config.write_text(f'store = "S001"\nlanes = [1, 2]\ndata_dir = "{tmp_path / "S001" / "store"}"\n')
    capsys.readouterr()
    assert await commands.store_status(config, store.url) == 0
    assert "batch refused: conflict: stream journal seq 1" in capsys.readouterr().out


async def test_central_verify_journal_finds_a_record_whose_stored_signature_was_altered(
    central: CentralNode, capsys: pytest.CaptureFixture[str]
) -> None:
    key = StoreKey("S9")
    await central.db.write(key.enrol)
    with trio.fail_after(20):
        async with link(central, key) as send:
            assert await send(journal(*(key.event(n, n) for n in (1, 2, 3)))) == Ack(
                store="S9", stream="journal", seq=3
            )
    assert await central.db.read(lambda c: sales.verify(c, "S9")) == (3, [])
    db = central.db.path
    assert commands.central_verify_journal(db, None) == 0

    def alter(c: sqlite3.Connection) -> None:  # the ingest checked only the head's signature: this is the audit's
        sig = c.execute("SELECT sig FROM sales WHERE store = 'S9' AND receipt_no = 2").fetchone()[0]
        c.execute("UPDATE sales SET sig = ? WHERE store = 'S9' AND receipt_no = 2", (bytes([sig[0] ^ 1]) + sig[1:],))

    await central.db.write(alter)
    checked, problems = await central.db.read(lambda c: sales.verify(c, "S9"))
    broken = "store S9 lane 1 receipt 2: its signature does not verify over the record's chain hash"
    assert checked == 3 and problems == [broken]
    capsys.readouterr()
    assert commands.central_verify_journal(db, "S9") == 1
    assert f"journal broken: {broken}" in capsys.readouterr().out


async def test_central_alarms_lists_what_was_refused(central: CentralNode, capsys: pytest.CaptureFixture[str]) -> None:
    key = StoreKey("S9")
    await central.db.write(key.enrol)
    with trio.fail_after(20):
        async with link(central, key) as send:
            for _ in range(2):  # the same refusal again counts up its alarm
                assert isinstance(await send(journal(key.event(1, 5))), LinkError)
            assert isinstance(
                await send(journal(msgspec.structs.replace(key.event(1, 1), key="\x1b[2Jevil"))), LinkError
            )
    found = await central.db.read(lambda c: alarms.alarms(c, "S9"))
    assert [(a.kind, a.count) for a in found] == [("receipt_gap", 2), ("unknown_key", 1)]
    assert "\x1b" not in found[1].detail  # a forger's bytes are kept printable
    capsys.readouterr()
    assert commands.central_alarms(central.db.path, "S9") == 1
    out = capsys.readouterr().out
    assert "store S9 receipt_gap (x2" in out and "unknown_key" in out
    assert commands.central_alarms(central.db.path, "S8") == 0


async def any_key(hello: LinkHello) -> bytes:
    return hello.key  # whoever answers at central's URL takes the store at its word


class FakeCentral:
    """Whatever answers at central's URL: welcomes with `acked` cursors, and acks each batch `beyond`
    its last seq (when set). Counts the batches it got."""

    def __init__(self, acked: dict[str, int], beyond: int | None = None) -> None:
        self.acked = acked
        self.beyond = beyond
        self.batches = 0
        self.two_batches = trio.Event()
        self.codec = LinkCodec()

    async def serve(self, request: WebSocketRequest) -> None:
        ws = await request.accept(subprotocol=LINK_SUBPROTOCOL)

        async def welcome(hello: LinkHello) -> LinkWelcome:
            return LinkWelcome(node="fake", acked=self.acked)

        try:
            await accept(ws, welcome, node="fake", identify=any_key)
            while True:
                frame = self.codec.decode(await ws.get_message())
                if isinstance(frame, Ping):
                    await ws.send_message(self.codec.encode(Pong(id=frame.id)))
                elif isinstance(frame, EventBatch):
                    self.batches += 1
                    if self.batches >= 2:
                        self.two_batches.set()
                    if self.beyond is not None and frame.events:
                        ack = Ack(store=frame.store, stream=frame.stream, seq=frame.events[-1].seq + self.beyond)
                        await ws.send_message(self.codec.encode(ack))
        except ConnectionClosed:
            pass


async def sell_two(store: StoreNode) -> None:
    async with connect(store.url, lane=1, till="T1") as till:
        await till.request(Login(operator="1", pin="1234"))
        for _ in range(2):
            await till.request(Scan(code="7310000000010"))
            assert isinstance(await till.request(CashTender(amount=2000)), Receipt)


@pytest.mark.parametrize(
    ("acked", "beyond", "alarm"),
    [
        ({"journal": 10**9, "stock": 10**9}, None, "central's welcome claims journal events up to 1000000000"),
        ({}, 5, "but this session sent only up to"),
    ],
    ids=["huge-welcome", "ack-beyond-sent"],
)
async def test_a_central_claiming_more_than_was_sent_deletes_nothing(
    tmp_path: Path, nursery: trio.Nursery, acked: dict[str, int], beyond: int | None, alarm: str
) -> None:
    fake = FakeCentral(acked, beyond)
    port = await nursery.start(serve, fake.serve, "127.0.0.1", 0, "fake central")
    config = make_store_config(tmp_path, central_url=f"ws://127.0.0.1:{port}", insecure=True)
    store = StoreNode(config, clock=FixedClock(T0))
    await nursery.start(store.run)
    with trio.fail_after(30):
        await sell_two(store)
        health = await store.health.wait_until(ALARMS, lambda h: any(alarm in a for a in store.link.alarms))
        await fake.two_batches.wait()  # both sales reached it (and, for one fake, its acks came back)
    assert health.state == "alarm" and "nothing deleted" in health.last_error
    queued = {s: await store.db.read(lambda c, s=s: outbox.queued(c, s)) for s in ("journal", "stock")}
    assert len(queued["journal"]) == 2 and len(queued["stock"]) == 2  # both real sales still on their way
    assert store.signal.backlog == 4
