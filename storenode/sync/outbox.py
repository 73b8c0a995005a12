"""Events waiting for central, numbered per stream; deleted only once central has acknowledged them.

Sequence numbers come from `streams.last_seq`, not from MAX(seq) of the outbox, because acked rows
are deleted and a number must never be handed out twice.
"""

from __future__ import annotations

import sqlite3

import trio

from protocol.codec import decode_record
from protocol.frames import Event


def enqueue(conn: sqlite3.Connection, stream: str, kind: str, body: bytes) -> int:
    row = conn.execute(
        "INSERT INTO streams (stream, last_seq) VALUES (?, 1) "
        "ON CONFLICT (stream) DO UPDATE SET last_seq = last_seq + 1 RETURNING last_seq",
        (stream,),
    ).fetchone()
    seq = int(row[0])
    conn.execute("INSERT INTO outbox (stream, seq, kind, body) VALUES (?,?,?,?)", (stream, seq, kind, body))
    return seq


def pending(conn: sqlite3.Connection, stream: str, after: int, limit: int) -> list[Event]:
    rows = conn.execute(
        "SELECT seq, kind, body FROM outbox WHERE stream = ? AND seq > ? ORDER BY seq LIMIT ?",
        (stream, after, limit),
    )
    return [Event(seq=seq, kind=kind, body=body) for seq, kind, body in rows]


def acknowledge(conn: sqlite3.Connection, stream: str, upto: int) -> int:
    return conn.execute("DELETE FROM outbox WHERE stream = ? AND seq <= ?", (stream, upto)).rowcount


def pending_receipts(conn: sqlite3.Connection, lane: int) -> set[int]:
    """Receipt numbers of a lane still waiting in the outbox: in transit, not lost."""
    out = set()
    for (body,) in conn.execute("SELECT body FROM outbox WHERE stream = 'journal'"):
        record = decode_record(body)
        if record.lane == lane:
            out.add(record.receipt_no)
    return out


def streams(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT DISTINCT stream FROM outbox ORDER BY stream")]


def backlog(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])


class OutboxSignal:
    """Wakes the sync link when a lane has queued something, and keeps the backlog count the tills
    show (counted once from the database by the link, then kept up to date without queries: lanes
    add what they queue, the link subtracts what central acknowledged). Outlives actor restarts."""

    def __init__(self) -> None:
        self._event = trio.Event()
        self.backlog = 0

    def notify(self, events: int = 1) -> None:
        self.backlog += events
        self._event.set()

    def acknowledged(self, events: int) -> None:
        self.backlog = max(0, self.backlog - events)

    async def wait(self) -> None:
        await self._event.wait()
        self._event = trio.Event()
