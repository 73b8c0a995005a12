"""Central's returns register (issue 14, receipts): what was returned of each receipt chain-wide, held by
stores' claims and recorded from refunds as they arrive in the journal stream."""

from __future__ import annotations

import sqlite3

import pytest

from central.registers import alarms, returns
from protocol.codec import encode_record
from protocol.frames import RecordLine, SaleRecord

RID = "S001-1-7"


def record(
    *, store: str, receipt_no: int, lines: list[RecordLine], refund_of: str = "", kind: str = "sale"
) -> SaleRecord:
    return SaleRecord(
        store=store,
        lane=1,
        receipt_no=receipt_no,
        kind=kind,
        sale_id=f"{store}-{receipt_no}",
        operator="1",
        opened_at=1,
        closed_at=2,
        currency="SEK",
        lines=lines,
        total=sum(line.amount for line in lines),
        rounding=0,
        vat=[],
        tenders=[],
        change=0,
        refund_of=refund_of,
    )


def returned(origin: int, qty: int) -> RecordLine:
    return RecordLine(1, "MILK", "7310000000010", "Milk", -qty, 1590, -1590 * qty, 1200, False, origin=origin)


@pytest.fixture
def conn(catalog_db: sqlite3.Connection) -> sqlite3.Connection:
    """Central's database holding receipt S001-1-7: two milk (line 1) and a butter (line 2)."""
    sale = record(
        store="S001",
        receipt_no=7,
        lines=[
            RecordLine(1, "MILK", "7310000000010", "Milk", 2, 1590, 3180, 1200, False),
            RecordLine(2, "BUTR", "7310000000027", "Butter", 1, 5490, 5490, 1200, False),
        ],
    )
    catalog_db.execute(
        "INSERT INTO sales (store, lane, receipt_no, kind, sale_id, currency, total, closed_at, seq, body)"
        " VALUES ('S001', 1, 7, 'sale', 'S001-7', 'SEK', ?, 2, 1, ?)",
        (sale.total, encode_record(sale)),
    )
    return catalog_db


def test_a_claim_beyond_what_was_sold_is_refused_and_changes_nothing(conn: sqlite3.Connection) -> None:
    returns.claim(conn, RID, "refund-a", "S002", {1: 2}, at=3)
    with pytest.raises(returns.Refusal, match="line 1"):
        returns.claim(conn, RID, "refund-b", "S003", {1: 1}, at=3)
    with pytest.raises(returns.Refusal, match="line 9"):
        returns.claim(conn, RID, "refund-b", "S003", {9: 1}, at=3)
    with pytest.raises(returns.Refusal, match="no receipt"):
        returns.claim(conn, "S009-1-1", "refund-b", "S003", {1: 1}, at=3)
    assert returns.taken(conn, RID) == {1: 2}
    returns.claim(conn, RID, "refund-a", "S002", {1: 1}, at=4)  # the same refund changes its mind
    returns.claim(conn, RID, "refund-b", "S003", {1: 1, 2: 1}, at=4)
    assert returns.taken(conn, RID) == {1: 2, 2: 1}


def test_a_release_frees_only_that_stores_held_lines(conn: sqlite3.Connection) -> None:
    returns.claim(conn, RID, "refund-a", "S002", {2: 1}, at=3)
    assert returns.release(conn, "refund-a", "S003") == 0  # not S003's refund
    assert returns.release(conn, "refund-a", "S002") == 1
    assert returns.taken(conn, RID) == {}


def test_a_refund_arriving_replaces_its_claim_and_a_double_return_is_an_alarm(conn: sqlite3.Connection) -> None:
    returns.claim(conn, RID, "S002-3", "S002", {1: 2}, at=3)
    returns.journaled(conn, "S002", record(store="S002", receipt_no=3, lines=[returned(1, 2)], refund_of=RID))
    assert returns.taken(conn, RID) == {1: 2} and alarms.alarms(conn) == []
    with pytest.raises(returns.Refusal):  # a closed refund cannot be changed by a claim
        returns.claim(conn, RID, "S002-3", "S002", {1: 1}, at=4)

    # The home store refunded one milk offline: it arrives later, is kept, and raised as an alarm.
    returns.journaled(conn, "S001", record(store="S001", receipt_no=9, lines=[returned(1, 1)], refund_of=RID))
    assert returns.taken(conn, RID) == {1: 3}
    (alarm,) = alarms.alarms(conn)
    assert alarm.kind == "double_return" and RID in alarm.detail and "line 1: 3 of 2" in alarm.detail


def test_an_own_receipt_not_at_central_yet_is_held_as_asked(conn: sqlite3.Connection) -> None:
    returns.claim(conn, "S004-1-1", "refund-x", "S004", {1: 1}, at=3)
    assert returns.taken(conn, "S004-1-1") == {1: 1}
    with pytest.raises(returns.Refusal):  # another store's claim on it needs central's copy
        returns.claim(conn, "S004-1-1", "refund-y", "S005", {1: 1}, at=3)


def test_a_cancelled_refund_arriving_releases_its_claim(conn: sqlite3.Connection) -> None:
    returns.claim(conn, RID, "S002-4", "S002", {2: 1}, at=3)
    returns.journaled(
        conn, "S002", record(store="S002", receipt_no=4, lines=[returned(2, 1)], refund_of=RID, kind="cancel")
    )
    assert returns.taken(conn, RID) == {}


def test_a_claim_is_bounded_where_the_link_decodes_it() -> None:
    """Central keeps a row per claimed line: a claim of thousands of lines, a line 0 or a quantity of 0 is
    refused as a bad frame before any of it reaches the returns register."""
    from protocol.codec import FrameError, LinkCodec
    from protocol.frames import ReturnClaimQuestion

    codec = LinkCodec()
    fine = ReturnClaimQuestion(id=1, receipt="S001-1-7", claim="r1", lines={1: 2})
    assert codec.decode(codec.encode(fine)) == fine
    for lines in ({n: 1 for n in range(1, 1002)}, {0: 1}, {1: 0}):
        with pytest.raises(FrameError):
            codec.decode(codec.encode(ReturnClaimQuestion(id=1, receipt="S001-1-7", claim="r1", lines=lines)))
    with pytest.raises(FrameError):
        codec.decode(codec.encode(ReturnClaimQuestion(id=1, receipt="S" * 300, claim="r1", lines={1: 1})))
