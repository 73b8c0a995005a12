"""Exactly-once application of store event streams.

One rule carries it: an event is applied in the same transaction that advances the store's stream
cursor, and only if its seq is the cursor + 1. A resend (seq <= cursor) is skipped, a gap
(seq > cursor + 1) stops the batch; the ack names the cursor so the store resends from there.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from protocol.frames import Event

Applier = Callable[[sqlite3.Connection, str, Event], None]


class EventError(ValueError):
    """An event central cannot apply; the whole batch is refused and nothing of it is kept."""


def cursors(conn: sqlite3.Connection, store: str) -> dict[str, int]:
    return dict(conn.execute("SELECT stream, seq FROM stream_cursors WHERE store = ?", (store,)).fetchall())


def apply_in_order(
    conn: sqlite3.Connection, store: str, stream: str, events: list[Event], apply: Applier
) -> tuple[int, bool]:
    """Apply what is next in order; returns the new cursor (highest contiguous seq applied) and
    whether a gap stopped the batch."""
    row = conn.execute("SELECT seq FROM stream_cursors WHERE store = ? AND stream = ?", (store, stream)).fetchone()
    cursor = row[0] if row else 0
    gap = False
    for event in events:
        if event.seq <= cursor:
            continue
        if event.seq != cursor + 1:
            gap = True
            break
        apply(conn, store, event)
        cursor = event.seq
    conn.execute(
        "INSERT INTO stream_cursors (store, stream, seq) VALUES (?,?,?) "
        "ON CONFLICT (store, stream) DO UPDATE SET seq = excluded.seq",
        (store, stream, cursor),
    )
    return cursor, gap
