"""A lane's state as the store database keeps it: one row per lane, the LaneState in MessagePack.

Its own module because more than the lane reads or writes that row: the sale-close job (closing) saves
the cleared lane, the refund check reads the other lanes' open refunds, and the lane imports both: here
none of them has to import the lane.

The row also counts its saves (`seq`): the lane's state file (statefile.py) records which save each of its
records was built on, so a restart can tell whether the file or the row is newer without either side
having to be told about the other. Every save bumps it, whoever makes it, in the same statement.

The row can be older than the lane: a change that is not a refund is kept in the lane's state file, not
here, until the lane next saves through the database. Only the refund check reads other lanes' rows, and
only their refunds (`refund_of`), which the file never holds: a lane in a refund saves every change here.
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
        "INSERT INTO lanes (lane, state, seq) VALUES (?, ?, 1) "
        "ON CONFLICT (lane) DO UPDATE SET state = excluded.state, seq = lanes.seq + 1",
        (state.lane, _encoder.encode(state)),
    )


def load_state(conn: sqlite3.Connection, lane: int) -> LaneState:
    return load_saved(conn, lane)[1]


def load_saved(conn: sqlite3.Connection, lane: int) -> tuple[int, LaneState]:
    """The lane's saved state and how many saves made it (0: never saved)."""
    row = conn.execute("SELECT seq, state FROM lanes WHERE lane = ?", (lane,)).fetchall()
    return (row[0][0], _decoder.decode(row[0][1])) if row else (0, LaneState(lane=lane))


def saved_seq(conn: sqlite3.Connection, lane: int) -> int:
    row = conn.execute("SELECT seq FROM lanes WHERE lane = ?", (lane,)).fetchall()
    return int(row[0][0]) if row else 0


def other_lanes(conn: sqlite3.Connection, lane: int) -> Iterator[LaneState]:
    """Every other lane's saved state (a sale there may hold part of the same receipt's refund)."""
    for (body,) in conn.execute("SELECT state FROM lanes WHERE lane != ?", (lane,)):
        yield _decoder.decode(body)
