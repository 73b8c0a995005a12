"""A lane's state as the store database keeps it: one row per lane, the LaneState in MessagePack.

Its own module because more than the lane reads or writes that row: the sale-close job (closing) saves
the cleared lane, the refund check reads the other lanes' open refunds, and the lane imports both: here
none of them has to import the lane.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import msgspec

from storenode.lanes.basket import LaneState

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(LaneState)


def save_state(conn: sqlite3.Connection, state: LaneState) -> None:
    conn.execute(
        "INSERT INTO lanes (lane, state) VALUES (?, ?) ON CONFLICT (lane) DO UPDATE SET state = excluded.state",
        (state.lane, _encoder.encode(state)),
    )


def load_state(conn: sqlite3.Connection, lane: int) -> LaneState:
    row = conn.execute("SELECT state FROM lanes WHERE lane = ?", (lane,)).fetchone()
    return _decoder.decode(row[0]) if row else LaneState(lane=lane)


def other_lanes(conn: sqlite3.Connection, lane: int) -> Iterator[LaneState]:
    """Every other lane's saved state (a sale there may hold part of the same receipt's refund)."""
    for (body,) in conn.execute("SELECT state FROM lanes WHERE lane != ?", (lane,)):
        yield _decoder.decode(body)
