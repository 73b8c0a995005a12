"""Stock per location at central, moved only by the stores' signed deltas (and derived from counts)."""

from __future__ import annotations

import sqlite3

import msgspec

from central.registers.cursors import EventError
from protocol.frames import Event, StockLevel, StockMovement

_decoder = msgspec.msgpack.Decoder(StockMovement)
REASONS = {"sale", "return", "receipt", "transfer", "adjust", "count"}


def apply(conn: sqlite3.Connection, store: str, event: Event) -> None:
    try:
        movement = _decoder.decode(event.body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise EventError(f"event {event.seq}: bad stock movement: {exc}") from exc
    if movement.store != store or movement.reason not in REASONS:
        raise EventError(f"event {event.seq}: movement for {movement.store!r} with reason {movement.reason!r}")
    for line in movement.lines:
        delta = line.qty
        if movement.reason == "count":  # only a count needs the level: deltas just add
            row = conn.execute("SELECT qty FROM stock WHERE location = ? AND item = ?", (store, line.item)).fetchone()
            delta = line.qty - (row[0] if row else 0)
        conn.execute(
            "INSERT INTO stock (location, item, qty) VALUES (?,?,?) "
            "ON CONFLICT (location, item) DO UPDATE SET qty = qty + ?",
            (store, line.item, delta, delta),
        )
        conn.execute(
            "INSERT INTO stock_moves (store, seq, item, reason, delta, ref, at) VALUES (?,?,?,?,?,?,?)",
            (store, event.seq, line.item, movement.reason, delta, movement.ref, movement.at),
        )


def levels(conn: sqlite3.Connection, item: str) -> list[StockLevel]:
    rows = conn.execute("SELECT location, item, qty FROM stock WHERE item = ? ORDER BY location", (item,))
    return [StockLevel(*row) for row in rows]
