"""Exactly-once application of store event streams, and never a different event under a used number.

One rule carries it: an event is applied in the same transaction that advances the store's stream
cursor, and only if its seq is the cursor + 1. A gap (seq > cursor + 1) stops the batch; the ack
names the cursor so the store resends from there.

A resend (seq <= cursor) is acknowledged only when it is the event central applied under that
number: central keeps a digest of every event it applies, per (store, stream, seq) (or asks the
register, where that keeps the event whole: the journal's sales rows), and an event that reuses a
seq with other content is refused whole (`Untrusted`, code `conflict`), never acknowledged as a
duplicate. Acknowledging it would let the store delete a real sale because something else had taken
its number first. Stock and gift-card events applied before digests were kept have none; a resend of
one is acknowledged as before (there is nothing to compare it with).

The ack names the highest seq *of this batch* central holds, contiguously from the stream's start:
never a number the store did not send, so a store can check every ack against what it sent.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable

from protocol.frames import Event

Applier = Callable[[sqlite3.Connection, str, Event], None]


class EventError(ValueError):
    """An event central cannot apply; the whole batch is refused and nothing of it is kept."""

    code = "bad_batch"  # the LinkError code the store is told
    alarm = False  # whether it is also kept as an alarm (central/registers/alarms.py)


class Untrusted(EventError):
    """An event that may be forged or altered (a bad signature, a broken chain, a receipt gap, another
    event under a used seq, an unknown key): refused whole like any bad event, and kept as an alarm."""

    alarm = True

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def cursors(conn: sqlite3.Connection, store: str) -> dict[str, int]:
    return dict(conn.execute("SELECT stream, seq FROM stream_cursors WHERE store = ?", (store,)).fetchall())


def digest(event: Event) -> bytes:
    """What an event says, for telling a resend from another event under the same seq. The journal's
    signature is not part of it: a record signed at the store's start after an unsigned first send is
    still the same record."""
    return hashlib.sha256(event.kind.encode() + b"\x00" + event.body).digest()


Same = Callable[[sqlite3.Connection, str, Event], bool]  # is this what the register holds under its seq?


def apply_in_order(
    conn: sqlite3.Connection,
    store: str,
    stream: str,
    events: list[Event],
    apply: Applier,
    same: Same | None = None,
) -> tuple[int, bool]:
    """Apply what is next in order; returns the highest seq of this batch central now holds
    contiguously (or, when a gap stopped the batch, the cursor) and whether a gap stopped it.
    Raises Untrusted (conflict) for a seq already used by another event. `same` asks the register
    itself whether a resend is what it applied (the journal's sales rows keep each event whole);
    without it, a digest of each applied event is kept here."""
    row = conn.execute("SELECT seq FROM stream_cursors WHERE store = ? AND stream = ?", (store, stream)).fetchone()
    cursor = row[0] if row else 0
    held = 0
    gap = False
    digests: list[tuple[str, str, int, bytes]] = []
    for event in events:
        if event.seq <= cursor:
            if not (same(conn, store, event) if same is not None else _same_digest(conn, store, stream, event)):
                raise Untrusted(
                    "conflict",
                    f"stream {stream} seq {event.seq}: central already holds a different event under this number;"
                    " refused, not acknowledged (the store keeps it)",
                )
            held = max(held, event.seq)
            continue
        if event.seq != cursor + 1:
            gap = True
            break
        apply(conn, store, event)
        if same is None:
            digests.append((store, stream, event.seq, digest(event)))
        cursor = held = event.seq
    conn.executemany("INSERT INTO event_digests (store, stream, seq, digest) VALUES (?,?,?,?)", digests)
    conn.execute(
        "INSERT INTO stream_cursors (store, stream, seq) VALUES (?,?,?) "
        "ON CONFLICT (store, stream) DO UPDATE SET seq = excluded.seq",
        (store, stream, cursor),
    )
    return (cursor, True) if gap else (held, False)


def _same_digest(conn: sqlite3.Connection, store: str, stream: str, event: Event) -> bool:
    """Whether `event` is what was applied under its seq; True for events applied before digests were
    kept (nothing to compare with)."""
    row = conn.execute(
        "SELECT digest FROM event_digests WHERE store = ? AND stream = ? AND seq = ?", (store, stream, event.seq)
    ).fetchone()
    return row is None or bytes(row[0]) == digest(event)
