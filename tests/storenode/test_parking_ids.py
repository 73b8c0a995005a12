"""A parked sale's short id as a cashier types it (storenode.lanes.parking.parse_id): what is read, and
what is refused with a clear error before the database is asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol.frames import ParkedList
from runtime.database import migrate, open_connection
from runtime.mailbox import Rejected
from storenode.lanes.parking import LISTED, left_parked, parse_id, short_id
from storenode.schema import MIGRATIONS
from till.terminal import show_parked


@pytest.mark.parametrize(
    ("typed", "no"), [("P12", 12), ("p12", 12), ("12", 12), (" P3 ", 3), ("S001-P7", 7), ("s001-p7", 7)]
)
def test_read(typed: str, no: int) -> None:
    assert parse_id(typed, "S001") == no
    assert parse_id(short_id(no), "S001") == no


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("S002-P7", "other_store"),
        ("P", "bad_parked_id"),
        ("P0", "bad_parked_id"),
        ("P-1", "other_store"),  # as typed, store "P"
        ("-P1", "bad_parked_id"),
        ("S001-", "bad_parked_id"),
        ("P²", "bad_parked_id"),  # a Unicode digit int() cannot read
        ("P1.5", "bad_parked_id"),
        ("P" + "9" * 20, "bad_parked_id"),
        ("", "bad_parked_id"),
    ],
)
def test_refused(typed: str, code: str) -> None:
    with pytest.raises(Rejected) as refused:
        parse_id(typed, "S001")
    assert refused.value.code == code


def test_a_till_is_listed_the_oldest_parked_sales_and_told_there_are_more(tmp_path: Path) -> None:
    """A store can hold any number of parked sales; the till's list is bounded (parking.LISTED) and says so."""
    conn = open_connection(tmp_path / "store.db")
    migrate(conn, MIGRATIONS)
    for n in range(LISTED + 5):
        conn.execute(
            "INSERT INTO parked_sales (sale_id, lane, operator, parked_at, lines, total, state)"
            " VALUES (?, 1, '7', ?, 1, 100, x'')",
            (f"s{n}", n),
        )
    assert len(left_parked(conn, "SEK")) == LISTED + 5
    listed = left_parked(conn, "SEK", LISTED)
    assert [p.id for p in listed[:2]] == ["P1", "P2"] and len(listed) == LISTED
    shown = show_parked(ParkedList(sales=listed, more=True))
    assert shown.startswith(f"the oldest {LISTED} of more parked") and "P1 " in shown
