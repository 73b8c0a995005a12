"""Events waiting for central, numbered per stream; deleted only once central has acknowledged them.

Sequence numbers come from `streams.last_seq`, not from MAX(seq) of the outbox, because acked rows
are deleted and a number must never be handed out twice.
"""

from __future__ import annotations

import sqlite3

import trio

from protocol.frames import Event, Stream


def enqueue(conn: sqlite3.Connection, stream: str, kind: str, body: bytes) -> int:
    row = conn.execute(
        "INSERT INTO streams (stream, last_seq) VALUES (?, 1) "
        "ON CONFLICT (stream) DO UPDATE SET last_seq = last_seq + 1 RETURNING last_seq",
        (stream,),
    ).fetchone()
    seq = int(row[0])
    conn.execute("INSERT INTO outbox (stream, seq, kind, body) VALUES (?,?,?,?)", (stream, seq, kind, body))
    return seq


_PENDING = "SELECT seq, kind, body, x'', '' FROM outbox WHERE stream = ? AND seq > ? ORDER BY seq LIMIT ?"
_PENDING_JOURNAL = (  # the record's signature from the journal, by its outbox seq (a covering index)
    "SELECT o.seq, o.kind, o.body, j.sig, j.key FROM outbox o LEFT JOIN journal j ON j.seq = o.seq"
    " WHERE o.stream = ? AND o.seq > ? ORDER BY o.seq LIMIT ?"
)
MAX_BATCH_BYTES = 512 * 1024  # well under a websocket peer's 1 MiB message limit, whatever the sales hold


def pending(
    conn: sqlite3.Connection, stream: str, after: int, limit: int, max_bytes: int = MAX_BATCH_BYTES
) -> list[Event]:
    """The next events in order: at most `limit` of them and about `max_bytes` of bodies, but always
    at least one, so a batch of big sales never outgrows a websocket message and stalls replay.
    Journal events carry their record's signature and key id, read from the journal in this query."""
    rows = conn.execute(
        _PENDING_JOURNAL if stream == Stream.JOURNAL else _PENDING,
        (stream, after, limit),
    )
    events: list[Event] = []
    size = 0
    for seq, kind, body, sig, key in rows:
        size += len(body) + 96
        if events and size > max_bytes:
            break
        events.append(Event(seq=seq, kind=kind, body=body, sig=sig or b"", key=key or ""))
    return events


def pending_of(conn: sqlite3.Connection, after: dict[str, int], limit: int) -> dict[str, tuple[list[Event], bool]]:
    """`pending` for several streams in one database job, each with whether more wait behind its
    batch: the link reads every stream with one hop to the database thread and knows without
    another read whether it must come back."""
    found: dict[str, tuple[list[Event], bool]] = {}
    for stream, seq in after.items():
        events = pending(conn, stream, seq, limit)
        if events:
            more = conn.execute(
                "SELECT 1 FROM outbox WHERE stream = ? AND seq > ? LIMIT 1", (stream, events[-1].seq)
            ).fetchone()
            found[stream] = (events, more is not None)
    return found


def acknowledge(conn: sqlite3.Connection, stream: str, upto: int) -> int:
    return conn.execute("DELETE FROM outbox WHERE stream = ? AND seq <= ?", (stream, upto)).rowcount


def positions(conn: sqlite3.Connection) -> dict[str, tuple[int, int]]:
    """Per stream: (the seq before its oldest event still here, the last seq it ever numbered). A
    session resends from the first; central can never rightly claim more than the second."""
    out: dict[str, tuple[int, int]] = {}
    for stream, last in conn.execute("SELECT stream, last_seq FROM streams").fetchall():
        oldest = conn.execute("SELECT MIN(seq) FROM outbox WHERE stream = ?", (stream,)).fetchone()[0]
        out[stream] = ((oldest if oldest is not None else last + 1) - 1, last)
    return out


def oldest_unacked(conn: sqlite3.Connection, stream: str) -> int | None:
    """The lowest seq central has not acknowledged; every later event of the stream is in transit."""
    row = conn.execute("SELECT MIN(seq) FROM outbox WHERE stream = ?", (stream,)).fetchone()
    oldest: int | None = row[0]
    return oldest


def queued(conn: sqlite3.Connection, stream: str) -> list[tuple[str, bytes]]:
    """(kind, body) of every event of a stream central has not acknowledged yet, in order."""
    rows = conn.execute("SELECT kind, body FROM outbox WHERE stream = ? ORDER BY seq", (stream,))
    return [(kind, body) for kind, body in rows]


def backlog(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])


class OutboxSignal:
    """Wakes the sync link when a lane has queued something, and keeps the backlog count the tills
    show (counted once from the database by the link, then kept up to date without queries: lanes
    add what they queue, the link subtracts what central acknowledged). Outlives actor restarts."""

    def __init__(self) -> None:
        self._event = trio.Event()
        self._backlog = 0
        self._changed = trio.lowlevel.ParkingLot()

    @property
    def backlog(self) -> int:
        return self._backlog

    @backlog.setter
    def backlog(self, events: int) -> None:
        self._backlog = events
        self._changed.unpark_all()

    def notify(self, events: int = 1) -> None:
        self.backlog += events
        self._event.set()

    def acknowledged(self, events: int) -> None:
        self.backlog = max(0, self.backlog - events)

    async def wait(self) -> None:
        await self._event.wait()
        self._event = trio.Event()

    async def wait_empty(self) -> None:
        """Until central has acknowledged everything queued (bound it with trio.fail_after): for status
        consoles and tests, which would otherwise poll the count."""
        while self._backlog:
            await self._changed.park()
