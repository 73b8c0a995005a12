"""The store's receipt index: what a cashier looks a receipt up by (its id, when, its total, the last four
digits of a card that paid it), kept beside the journal so a lookup never decodes a journal body.

Why a table of its own and not a search of the journal: the journal holds each record as signed bytes,
so finding "the receipts of 49.00 last week" there means decoding every body of the period; among a
million receipts that is seconds, and the issue wants 20 ms. The index is written in the same
transaction as the journal row (storenode.lanes.closing), so it can never name a receipt the journal does
not hold nor miss one it does; the journal stays the truth, the index only says where to look.

A store that journaled receipts before the index existed fills it once at start (`backfill`), lane by
lane from the last receipt indexed, so the fill resumes where a crash stopped it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from protocol.codec import decode_record
from protocol.frames import SaleRecord

INDEXED_KINDS = ("sale", "cancel")  # receipts a cashier can look up (events are not receipts)
BACKFILL_BATCH = 5000


def last4(masked_pan: str) -> str:
    """The last four digits of a masked card number ("476173******0119" -> "0119"), "" without four."""
    digits = masked_pan.strip()[-4:]
    return digits if len(digits) == 4 and digits.isascii() and digits.isdigit() else ""


def cards_of(record: SaleRecord) -> set[str]:
    """The last four digits of every card that moved money in the sale (approved calls only)."""
    return {
        found
        for payment in record.payments
        if payment.method == "card" and payment.outcome == "approved" and (found := last4(payment.masked_pan))
    }


def index_record(conn: sqlite3.Connection, record: SaleRecord) -> None:
    """Index one journaled record, in the caller's transaction (the one that journals it)."""
    if record.kind not in INDEXED_KINDS:
        return
    conn.execute(
        "INSERT OR IGNORE INTO receipt_index (lane, receipt_no, closed_at, total, kind) VALUES (?,?,?,?,?)",
        (record.lane, record.receipt_no, record.closed_at, record.total, record.kind),
    )
    conn.executemany(
        "INSERT OR IGNORE INTO receipt_cards (card, closed_at, lane, receipt_no) VALUES (?,?,?,?)",
        [(card, record.closed_at, record.lane, record.receipt_no) for card in sorted(cards_of(record))],
    )


def backfill(conn: sqlite3.Connection) -> int:
    """Index the receipts journaled before the index existed (store migration 19 noted, per lane, the last
    receipt then: everything after it was indexed as it was journaled); returns how many records were read.
    Progress is kept per batch, so a fill cut short resumes where it stopped."""
    done = 0
    for lane, after, upto in conn.execute("SELECT lane, done, upto FROM receipt_index_backlog").fetchall():
        while after < upto:
            rows = conn.execute(
                "SELECT receipt_no, body FROM journal WHERE lane = ? AND receipt_no > ? AND receipt_no <= ?"
                " ORDER BY receipt_no LIMIT ?",
                (lane, after, upto, BACKFILL_BATCH),
            ).fetchall()
            if not rows:
                break
            for _, body in rows:
                index_record(conn, decode_record(body))
            after = rows[-1][0]
            done += len(rows)
            conn.execute("UPDATE receipt_index_backlog SET done = ? WHERE lane = ?", (after, lane))
        conn.execute("DELETE FROM receipt_index_backlog WHERE lane = ?", (lane,))
    return done


@dataclass(frozen=True)
class Where:
    """One lookup: by id (lane and number), or by any of period, exact total and card (together: all hold)."""

    lane: int = 0
    receipt_no: int = 0
    since: int = 0  # epoch ms, inclusive
    until: int = 0  # epoch ms, exclusive; 0: no end
    total: int | None = None
    card: str = ""


def find(conn: sqlite3.Connection, where: Where, limit: int) -> tuple[list[tuple[int, int]], bool]:
    """(lane, receipt number) of the newest receipts matching, at most `limit`, and whether more match.

    Each kind of lookup has its own index leading with what it is looked up by and then the time, so the
    newest `limit + 1` rows are an index range read, whatever the journal's length."""
    if where.lane:
        row = conn.execute(
            "SELECT lane, receipt_no FROM receipt_index WHERE lane = ? AND receipt_no = ?",
            (where.lane, where.receipt_no),
        ).fetchone()
        return ([(row[0], row[1])] if row else []), False
    until = where.until or 2**62
    if where.card:
        sql = "SELECT c.lane, c.receipt_no FROM receipt_cards c"
        conds = ["c.card = ?", "c.closed_at >= ?", "c.closed_at < ?"]
        args: list[object] = [where.card, where.since, until]
        if where.total is not None:
            sql += " JOIN receipt_index r ON r.lane = c.lane AND r.receipt_no = c.receipt_no"
            conds.append("r.total = ?")
            args.append(where.total)
        order = "c.closed_at DESC, c.lane DESC, c.receipt_no DESC"
    elif where.total is not None:
        sql = "SELECT lane, receipt_no FROM receipt_index"
        conds = ["total = ?", "closed_at >= ?", "closed_at < ?"]
        args = [where.total, where.since, until]
        order = "closed_at DESC, lane DESC, receipt_no DESC"
    else:
        sql = "SELECT lane, receipt_no FROM receipt_index INDEXED BY receipt_index_at"
        conds = ["closed_at >= ?", "closed_at < ?"]
        args = [where.since, until]
        order = "closed_at DESC, lane DESC, receipt_no DESC"
    rows = conn.execute(f"{sql} WHERE {' AND '.join(conds)} ORDER BY {order} LIMIT ?", (*args, limit + 1)).fetchall()
    return [(lane, no) for lane, no in rows[:limit]], len(rows) > limit
