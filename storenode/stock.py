"""Stock at this store: local levels for the tills, and signed deltas queued for central.

Both change in the caller's transaction, so a level never moves without its delta being queued
(and never twice): the same rule that keeps sales exactly-once keeps stock exact.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable

import msgspec

from protocol.frames import RecordLine, StockLine, StockMovement, Stream
from storenode.sync import outbox

STREAM = Stream.STOCK
MANUAL_REASONS = ("receipt", "transfer", "adjust")
_encoder = msgspec.msgpack.Encoder()


def record(conn: sqlite3.Connection, movement: StockMovement) -> None:
    for line in movement.lines:
        if movement.reason == "count":
            conn.execute(
                "INSERT INTO stock (item, qty) VALUES (?, ?) ON CONFLICT (item) DO UPDATE SET qty = excluded.qty",
                (line.item, line.qty),
            )
        else:
            conn.execute(
                "INSERT INTO stock (item, qty) VALUES (?, ?) ON CONFLICT (item) DO UPDATE SET qty = qty + excluded.qty",
                (line.item, line.qty),
            )
    outbox.enqueue(conn, STREAM, movement.reason, _encoder.encode(movement))


def sale_movements(store: str, sale_id: str, at: int, lines: Iterable[RecordLine]) -> list[StockMovement]:
    """What a completed sale does to stock: sold items leave (reason sale), returned ones come back
    (reason return); one movement per reason, one line per item."""
    sold: dict[str, int] = defaultdict(int)
    returned: dict[str, int] = defaultdict(int)
    for line in lines:
        if line.voided:
            continue
        amount = line.qty * line.weight_g if line.weight_g else line.qty  # weighed stock counts grams
        if amount > 0:
            sold[line.item] -= amount
        else:
            returned[line.item] -= amount
    out = []
    for reason, per_item in (("sale", sold), ("return", returned)):
        if per_item:
            out.append(
                StockMovement(
                    store=store,
                    reason=reason,
                    ref=sale_id,
                    at=at,
                    lines=[StockLine(item=i, qty=q) for i, q in sorted(per_item.items())],
                )
            )
    return out


def level(conn: sqlite3.Connection, item: str) -> int:
    row = conn.execute("SELECT qty FROM stock WHERE item = ?", (item,)).fetchone()
    return int(row[0]) if row else 0


def levels(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT item, qty FROM stock").fetchall())
