"""The sale-close job on its own, in a real store database without a node: what one close leaves in the
journal, the outbox, stock and the lane's row (the lane runs it in one durable commit; bench/sync.py fills
its store.db with it)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from protocol import identity
from protocol.codec import decode_record
from protocol.frames import RecordTender
from runtime.database import immediate, migrate, open_connection
from runtime.mailbox import Rejected
from storenode import stock
from storenode.journal import chain
from storenode.lanes import basket, closing
from storenode.lanes.basket import READY, Item, LaneState
from storenode.lanes.saved import load_state
from storenode.schema import MIGRATIONS

STORE, SEK, NOW = "S001", "SEK", 1_795_000_000_000
SIGNER = chain.Signer(STORE, identity.generate())
COFFEE = Item(item="COFF", name="Coffee", price=6995, vat_rate=2500)
MILK = Item(item="MILK1", name="Milk 1l", price=1590, vat_rate=1200)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = open_connection(tmp_path / "store.db")
    migrate(conn, MIGRATIONS)
    yield conn
    conn.close()


def a_sale(lane: int = 2, sale_id: str = "") -> LaneState:
    state = basket.open_sale(LaneState(lane=lane, status=READY, operator="7"), sale_id or f"sale-{lane}", NOW)
    state = basket.add_line(state, COFFEE, COFFEE.item, 1)
    state = basket.add_line(state, MILK, MILK.item, 2)
    return basket.to_total(state)  # 101.75, 102.00 in cash


def close(db: sqlite3.Connection, state: LaneState, **how: Any) -> closing.Closed:
    with immediate(db):
        return closing.close_sale(db, state, store=STORE, currency=SEK, closed_at=NOW + 60_000, signer=SIGNER, **how)


def outbox(db: sqlite3.Connection) -> list[tuple[str, str]]:
    return db.execute("SELECT stream, kind FROM outbox ORDER BY seq, stream").fetchall()


def test_a_sale_closes_into_the_journal_the_outbox_and_stock_and_clears_the_lane(db: sqlite3.Connection) -> None:
    closed = close(db, a_sale(), kind="sale", tendered=20000)
    record = closed.record
    assert (record.lane, record.receipt_no, record.kind, record.total, record.change) == (2, 1, "sale", 10175, 9800)
    [(body,)] = db.execute("SELECT body FROM journal WHERE lane = 2").fetchall()
    assert decode_record(body) == record
    assert chain.verify(db, STORE, {SIGNER.key_id: SIGNER.public})[1] == []
    assert [(m.reason, sorted((x.item, x.qty) for x in m.lines)) for m in closed.movements] == [
        ("sale", [("COFF", -1), ("MILK1", -2)])
    ]
    assert stock.level(db, "MILK1") == -2
    assert closed.queued == 2 and sorted(outbox(db)) == [("journal", "sale"), ("stock", "sale")]
    assert closed.cleared == LaneState(lane=2, status=READY, operator="7")
    assert load_state(db, 2) == closed.cleared


def test_receipt_numbers_follow_on_per_lane(db: sqlite3.Connection) -> None:
    lanes = [1, 2, 1, 1]
    numbers = [
        close(db, a_sale(lane, f"s{n}"), kind="sale", tendered=10200).record.receipt_no for n, lane in enumerate(lanes)
    ]
    assert numbers == [1, 1, 2, 3]


def test_a_cancel_is_journaled_without_tenders_or_stock(db: sqlite3.Connection) -> None:
    closed = close(db, a_sale(), kind="cancel")
    assert (closed.record.kind, closed.record.tenders, closed.movements, closed.queued) == ("cancel", [], [], 1)
    assert outbox(db) == [("journal", "cancel")]
    assert load_state(db, 2) == closed.cleared == LaneState(lane=2, status=READY, operator="7")


def test_extra_events_go_in_the_same_transaction_and_are_counted(db: sqlite3.Connection) -> None:
    def extra(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO streams (stream, last_seq) VALUES ('giftcard', 0)")
        return 3

    state = basket.add_tender(a_sale(), RecordTender(kind="invoice", currency=SEK, amount=10175, reference="C-9"))
    closed = close(db, state, kind="sale", extra=extra)
    assert closed.queued == 1 + 1 + 3
    assert closed.record.tenders == state.tenders  # the invoice covered it: no cash
    assert db.execute("SELECT COUNT(*) FROM streams WHERE stream = 'giftcard'").fetchone() == (1,)


def test_a_refund_over_its_receipt_is_refused_and_nothing_is_written(db: sqlite3.Connection) -> None:
    close(db, a_sale(lane=1), kind="sale", tendered=10200)  # receipt S001-1-1: one coffee, two milk
    refund = basket.open_sale(LaneState(lane=2, status=READY, operator="7"), "refund-1", NOW)
    refund = msgspec.structs.replace(refund, refund_of="S001-1-1")
    refund = basket.add_returned(refund, [msgspec.structs.replace(line, qty=-3, amount=-4770, origin=2)
                                          for line in a_sale(lane=1).lines[1:]])  # fmt: skip
    before = outbox(db)
    with pytest.raises(Rejected, match=r"^over_return: "):
        close(db, refund, kind="sale")
    assert outbox(db) == before and load_state(db, 2) == LaneState(lane=2)


def test_an_event_takes_the_next_number_of_the_chain_and_verifies(db: sqlite3.Connection) -> None:
    """Events (issue 14: park, no-sale, cash count ...) are journaled in the lane's own chain between sales,
    signed and queued for central like a sale, and a refund cannot name one as its receipt."""
    from protocol.frames import RecordEvent
    from storenode.lanes import events, refunds

    close(db, a_sale(sale_id="s1"), kind="sale", tendered=10200)
    with immediate(db):
        event = events.journal_event(
            db,
            RecordEvent(code="nosale", reason="change for the safe"),
            store=STORE,
            lane=2,
            operator="7",
            currency=SEK,
            at=NOW + 90_000,
            signer=SIGNER,
        )
    assert (event.receipt_no, event.kind, event.event) == (
        2,
        "event",
        RecordEvent(code="nosale", reason="change for the safe"),
    )
    assert close(db, a_sale(sale_id="s2"), kind="sale", tendered=10200).record.receipt_no == 3
    assert chain.verify(db, STORE, {SIGNER.key_id: SIGNER.public})[1] == []
    assert ("journal", "event") in outbox(db)
    with pytest.raises(Rejected, match="not a sale"):
        refunds.original(db, f"{STORE}-2-2", STORE, SEK)
