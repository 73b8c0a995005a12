"""Alarms at central: what a store sent that central refused for a reason an operator must look at
(a bad signature, a broken chain, a receipt gap, a different event under a used sequence number, a
key central does not know). They are kept, not only logged, because a refusal means a store's events
wait in its outbox until someone acts, and a log line scrolls away.

The detail is the refusal's own words, bounded and made printable (protocol.versions.shown) before it
is kept: it names the store's numbers, and a forger chooses what those records contain. A refused
store retries with backoff, so the same refusal comes back every few seconds: a repeat of a store's
newest alarm counts up that alarm instead of adding rows.
"""

from __future__ import annotations

import sqlite3

import msgspec

from protocol.versions import shown

DETAIL_CHARS = 400
KINDS = ("bad_signature", "chain_broken", "receipt_gap", "conflict", "unknown_key")


class Alarm(msgspec.Struct):
    id: int
    store: str
    kind: str
    detail: str
    first_at: int  # epoch ms
    last_at: int
    count: int


def raise_alarm(conn: sqlite3.Connection, store: str, kind: str, detail: str, at: int) -> int:
    """Keep an alarm (or count up the store's newest one when it is the same); returns its id."""
    store, detail = shown(store, 64), shown(detail, DETAIL_CHARS)
    newest = conn.execute(
        "SELECT id, kind, detail FROM alarms WHERE store = ? ORDER BY id DESC LIMIT 1", (store,)
    ).fetchone()
    if newest is not None and (newest[1], newest[2]) == (kind, detail):
        conn.execute("UPDATE alarms SET count = count + 1, last_at = ? WHERE id = ?", (at, newest[0]))
        return int(newest[0])
    row = conn.execute(
        "INSERT INTO alarms (store, kind, detail, first_at, last_at) VALUES (?,?,?,?,?) RETURNING id",
        (store, kind, detail, at, at),
    ).fetchone()
    return int(row[0])


def alarms(conn: sqlite3.Connection, store: str | None = None) -> list[Alarm]:
    """Every alarm, oldest first; one store's when `store` is given."""
    query = "SELECT id, store, kind, detail, first_at, last_at, count FROM alarms"
    rows = (
        conn.execute(query + " WHERE store = ? ORDER BY id", (store,))
        if store is not None
        else conn.execute(query + " ORDER BY id")
    )
    return [Alarm(*row) for row in rows]
