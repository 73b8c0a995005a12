"""The chain's sales journal at central: each store's journal records, as the store hashed them."""

from __future__ import annotations

import sqlite3

import msgspec

from central.registers.cursors import EventError
from protocol.chain import GENESIS, chain_hash
from protocol.codec import decode_record
from protocol.frames import Event, SaleRecord

AFTER_A_HOLE = b"\xff" * 32  # no store chain starts here, so nothing after a hole can match


class StoreSummary(msgspec.Struct):
    store: str
    sales: int
    cancelled: int
    total: int
    currency: str
    last_closed_at: int


def apply(conn: sqlite3.Connection, store: str, event: Event) -> None:
    if event.kind not in ("sale", "cancel"):
        raise EventError(f"event {event.seq}: unknown kind {event.kind!r}")
    record: SaleRecord = decode_record(event.body)
    if record.store != store or record.kind != event.kind:
        raise EventError(f"event {event.seq}: record is for store {record.store!r} kind {record.kind!r}")
    conn.execute(
        "INSERT INTO sales (store, lane, receipt_no, kind, sale_id, currency, total, closed_at, seq, body) "
        "VALUES (?,?,?,?,?,?,?,?,?,?)",
        (
            store,
            record.lane,
            record.receipt_no,
            record.kind,
            record.sale_id,
            record.currency,
            record.total,
            record.closed_at,
            event.seq,
            event.body,
        ),
    )


def summaries(conn: sqlite3.Connection) -> list[StoreSummary]:
    rows = conn.execute(
        "SELECT store, SUM(kind = 'sale'), SUM(kind = 'cancel'), SUM(CASE WHEN kind = 'sale' THEN total ELSE 0 END), "
        "MAX(currency), MAX(closed_at) FROM sales GROUP BY store ORDER BY store"
    )
    return [StoreSummary(*row) for row in rows]


def receipts(conn: sqlite3.Connection, store: str) -> list[SaleRecord]:
    rows = conn.execute("SELECT body FROM sales WHERE store = ? ORDER BY lane, receipt_no", (store,))
    return [decode_record(body) for (body,) in rows]


class LaneChain(msgspec.Struct):
    lane: int
    receipts: int
    head: bytes  # the hash of the last receipt, chained from the first as the store chained it


def chains(conn: sqlite3.Connection, store: str) -> tuple[dict[int, LaneChain], list[str]]:
    """Re-derive every lane's hash chain from the bodies central holds: if a head equals the store's
    journal head, every receipt before it is byte-identical too. Problems name lane and receipt."""
    out: dict[int, LaneChain] = {}
    problems: list[str] = []
    rows = conn.execute("SELECT lane, receipt_no, body FROM sales WHERE store = ? ORDER BY lane, receipt_no", (store,))
    for lane, receipt_no, body in rows:
        chain = out.setdefault(lane, LaneChain(lane=lane, receipts=0, head=GENESIS))
        if receipt_no != chain.receipts + 1:
            problems.append(f"store {store} lane {lane}: receipt {receipt_no} follows {chain.receipts}")
        chain.receipts = receipt_no
        chain.head = chain_hash(chain.head, body)
    return out, problems


def lanes(conn: sqlite3.Connection, store: str) -> dict[int, int]:
    return dict(conn.execute("SELECT lane, MAX(receipt_no) FROM sales WHERE store = ? GROUP BY lane", (store,)))


def receipt_hashes(conn: sqlite3.Connection, store: str, lane: int) -> dict[int, bytes]:
    """Each receipt's chain hash as central re-derives it from the bytes it holds. After a hole in
    central's copy the chain cannot continue, so every later receipt shows as a difference too."""
    out: dict[int, bytes] = {}
    head, expected = GENESIS, 1
    rows = conn.execute(
        "SELECT receipt_no, body FROM sales WHERE store = ? AND lane = ? ORDER BY receipt_no", (store, lane)
    )
    for receipt_no, body in rows:
        if receipt_no != expected:
            head = AFTER_A_HOLE
        head = chain_hash(head, body)
        out[receipt_no] = head
        expected = receipt_no + 1
    return out
