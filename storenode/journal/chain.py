"""The append-only fiscal journal: per-lane gapless receipt numbers and a SHA-256 hash chain.

hash = SHA-256(prev_hash || canonical record bytes). Receipt numbers and the previous hash are read
inside the same transaction that appends, so they cannot race; triggers refuse UPDATE and DELETE.
Verification re-derives everything from the stored bytes alone, so any edit of any column shows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from protocol.chain import GENESIS, chain_hash
from protocol.codec import FrameError, decode_record, encode_record
from protocol.frames import SaleRecord


def append(
    conn: sqlite3.Connection,
    lane: int,
    build: Callable[[int], SaleRecord],
    enqueue: Callable[[SaleRecord, bytes], int] | None = None,
) -> tuple[SaleRecord, bytes]:
    """Append the record `build(receipt_no)` to the lane's chain; returns it with its canonical bytes.
    `enqueue` queues it for central in the same transaction and gives its outbox seq, kept beside the
    receipt so "is this receipt still on its way?" is a comparison, not a search."""
    row = conn.execute(
        "SELECT receipt_no, hash FROM journal WHERE lane = ? ORDER BY receipt_no DESC LIMIT 1", (lane,)
    ).fetchone()
    receipt_no, prev = (row[0] + 1, row[1]) if row else (1, GENESIS)
    record = build(receipt_no)
    body = encode_record(record)
    seq = enqueue(record, body) if enqueue is not None else 0
    conn.execute(
        "INSERT INTO journal (lane, receipt_no, kind, sale_id, body, prev_hash, hash, seq, refund_of)"
        " VALUES (?,?,?,?,?,?,?,?,?)",
        (lane, receipt_no, record.kind, record.sale_id, body, prev, chain_hash(prev, body), seq, record.refund_of),
    )
    return record, body


def page(conn: sqlite3.Connection, lane: int, after: int, limit: int) -> list[tuple[int, bytes, int]]:
    """(receipt_no, hash, outbox seq) of a lane's receipts after `after`, in order."""
    rows = conn.execute(
        "SELECT receipt_no, hash, seq FROM journal WHERE lane = ? AND receipt_no > ? ORDER BY receipt_no LIMIT ?",
        (lane, after, limit),
    )
    return [(no, digest, seq) for no, digest, seq in rows]


def last_receipts(conn: sqlite3.Connection) -> dict[int, int]:
    """Each lane's last receipt number, by index lookups only: cheap however long the journal is."""
    out: dict[int, int] = {}
    lane = conn.execute("SELECT MIN(lane) FROM journal").fetchone()[0]
    while lane is not None:
        out[lane] = conn.execute("SELECT MAX(receipt_no) FROM journal WHERE lane = ?", (lane,)).fetchone()[0]
        lane = conn.execute("SELECT MIN(lane) FROM journal WHERE lane > ?", (lane,)).fetchone()[0]
    return out


def verify(conn: sqlite3.Connection) -> tuple[int, list[str]]:
    """Check every lane's chain end to end; returns (rows checked, problems naming lane and receipt)."""
    problems: list[str] = []
    checked = 0
    lanes = [r[0] for r in conn.execute("SELECT DISTINCT lane FROM journal ORDER BY lane")]
    for lane in lanes:
        expected_no, prev = 1, GENESIS
        rows = conn.execute(
            "SELECT receipt_no, kind, sale_id, body, prev_hash, hash, refund_of FROM journal WHERE lane = ?"
            " ORDER BY receipt_no",
            (lane,),
        )
        for receipt_no, kind, sale_id, body, prev_hash, stored_hash, refund_of in rows:
            checked += 1
            where = f"lane {lane} receipt {receipt_no}"
            if receipt_no != expected_no:
                problems.append(f"{where}: expected receipt {expected_no} (gap or reordering)")
            if prev_hash != prev:
                problems.append(f"{where}: previous-hash link broken")
            if chain_hash(prev_hash, body) != stored_hash:
                problems.append(f"{where}: hash does not match the record bytes")
            try:
                record = decode_record(body)
            except FrameError as exc:
                problems.append(f"{where}: {exc}")
            else:
                indexed = (record.lane, record.receipt_no, record.kind, record.sale_id, record.refund_of)
                if indexed != (lane, receipt_no, kind, sale_id, refund_of):
                    problems.append(f"{where}: indexed columns differ from the record")
            expected_no, prev = receipt_no + 1, stored_hash
    return checked, problems


def find(conn: sqlite3.Connection, lane: int, receipt_no: int) -> SaleRecord | None:
    row = conn.execute("SELECT body FROM journal WHERE lane = ? AND receipt_no = ?", (lane, receipt_no)).fetchone()
    return decode_record(row[0]) if row else None


def refunds_of(conn: sqlite3.Connection, receipt: str) -> list[SaleRecord]:
    """Every journaled sale that refunds `receipt` (cancelled refunds too: the caller looks at `kind`)."""
    rows = conn.execute("SELECT body FROM journal WHERE refund_of = ? AND refund_of != ''", (receipt,))
    return [decode_record(body) for (body,) in rows]
