"""A parked sale's short id as a cashier types it (storenode.lanes.parking.parse_id): what is read, and
what is refused with a clear error before the database is asked."""

from __future__ import annotations

import pytest

from runtime.mailbox import Rejected
from storenode.lanes.parking import parse_id, short_id


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
