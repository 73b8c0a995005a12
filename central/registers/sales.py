"""The chain's sales journal at central: every store event applied exactly once.

Exactly once rests on one rule: an event is applied in the same transaction that advances the
store's stream cursor, and only if its seq is the cursor + 1. A resend (seq <= cursor) is skipped, a
gap (seq > cursor + 1) stops the batch; the ack names the cursor so the store resends from there.
"""

from __future__ import annotations

import sqlite3

import msgspec

from protocol.codec import decode_record
from protocol.frames import Event, SaleRecord


class SalesError(ValueError):
    """An event central cannot apply; the whole batch is refused and nothing of it is kept."""


class StoreSummary(msgspec.Struct):
    store: str
    sales: int
    cancelled: int
    total: int
    currency: str
    last_closed_at: int


def cursors(conn: sqlite3.Connection, store: str) -> dict[str, int]:
    return dict(conn.execute("SELECT stream, seq FROM stream_cursors WHERE store = ?", (store,)).fetchall())


def apply_batch(conn: sqlite3.Connection, store: str, stream: str, events: list[Event]) -> int:
    """Apply what is next in order; returns the new cursor (highest contiguous seq applied)."""
    row = conn.execute("SELECT seq FROM stream_cursors WHERE store = ? AND stream = ?", (store, stream)).fetchone()
    cursor = row[0] if row else 0
    for event in events:
        if event.seq <= cursor:
            continue
        if event.seq != cursor + 1:
            break
        _apply(conn, store, event)
        cursor = event.seq
    conn.execute(
        "INSERT INTO stream_cursors (store, stream, seq) VALUES (?,?,?) "
        "ON CONFLICT (store, stream) DO UPDATE SET seq = excluded.seq",
        (store, stream, cursor),
    )
    return cursor


def _apply(conn: sqlite3.Connection, store: str, event: Event) -> None:
    if event.kind not in ("sale", "cancel"):
        raise SalesError(f"event {event.seq}: unknown kind {event.kind!r}")
    record: SaleRecord = decode_record(event.body)
    if record.store != store or record.kind != event.kind:
        raise SalesError(f"event {event.seq}: record is for store {record.store!r} kind {record.kind!r}")
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
