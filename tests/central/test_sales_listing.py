"""Central lists a refund as a refund, with the receipt it pays back, and counts sales and refunds apart
(issue 14): before, a refund was listed as kind `sale` with a negative total and counted among the sales.
Journal records go in through the same ingest check central runs on every batch (sales.Incoming), into a
real, migrated central database; and a journal stored before central kept `refund_of` lists the same."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from central.registers import sales
from central.schema import MIGRATIONS
from protocol.chain import GENESIS, chain_hash
from protocol.codec import encode_record
from protocol.frames import Event, SaleRecord
from runtime.database import migrate, open_connection
from storepos.commands import central_sales
from tests.kit.journal import StoreKey

KEY = StoreKey("S1")


def record(
    receipt_no: int, total: int, *, kind: str = "sale", refund_of: str = "", salesperson: str = ""
) -> SaleRecord:
    return SaleRecord(
        store="S1",
        lane=1,
        receipt_no=receipt_no,
        kind=kind,
        sale_id=f"sale-{receipt_no}",
        operator="1",
        opened_at=0,
        closed_at=receipt_no,
        currency="SEK",
        lines=[],
        total=total,
        rounding=0,
        vat=[],
        tenders=[],
        change=0,
        refund_of=refund_of,
        salesperson=salesperson,
    )


def event(r: SaleRecord) -> Event:
    body = encode_record(r)
    digest = chain_hash(KEY.hashes.get((r.lane, r.receipt_no - 1), GENESIS), body)
    KEY.hashes[(r.lane, r.receipt_no)] = digest
    return Event(seq=r.receipt_no, kind=r.kind, body=body, sig=KEY.signer.sign(digest), key=KEY.signer.key_id)


def ingest(conn: sqlite3.Connection, records: list[SaleRecord]) -> None:
    incoming = sales.Incoming(conn, "S1")
    for r in records:
        incoming(conn, "S1", event(r))
    incoming.verify_heads()


DAY = [
    record(1, 10000, salesperson="2"),
    record(2, 5000),
    record(3, -2500, refund_of="S1-1-1"),
    record(4, 700, kind="cancel"),
    record(5, -1000, refund_of="S1-1-2", salesperson="2"),
]


def central_db(tmp_path: Path, *, old: int = 0) -> Path:
    """Central's database holding DAY; its first `old` records stored as central stored them before it kept
    `refund_of` (the migration leaves those rows NULL), the rest ingested since."""
    KEY.hashes.clear()
    db = tmp_path / "central.db"
    conn = open_connection(db)
    try:
        migrate(conn, [m for m in MIGRATIONS if m.version < 14])
        KEY.enrol(conn)
        for r in DAY[:old]:
            conn.execute(
                "INSERT INTO sales (store, lane, receipt_no, kind, sale_id, currency, total, closed_at, seq, body)"
                " VALUES (?,?,?,?,?,?,?,?,?,?)",
                (r.store, r.lane, r.receipt_no, r.kind, r.sale_id, r.currency, r.total, r.closed_at, r.receipt_no,
                 encode_record(r)),
            )  # fmt: skip
            event(r)  # the chain goes on from it
        migrate(conn, MIGRATIONS)
        conn.execute("BEGIN")
        ingest(conn, DAY[old:])
        conn.execute("COMMIT")
    finally:
        conn.close()
    return db


def check_day(db: Path) -> None:
    conn = open_connection(db, readonly=True)
    try:
        (summary,) = sales.summaries(conn)
        listed = sales.listing(conn, "S1")
    finally:
        conn.close()
    assert (summary.sales, summary.total) == (2, 15000)  # before: 4 sales, total 115.00
    assert (summary.refunds, summary.refunded) == (2, 3500)
    assert summary.cancelled == 1
    assert [(x.receipt_no, x.kind, x.total, x.refund_of, x.salesperson) for x in listed] == [
        (1, "sale", 10000, "", "2"),
        (2, "sale", 5000, "", ""),
        (3, "refund", -2500, "S1-1-1", ""),
        (4, "cancel", 700, "", ""),
        (5, "refund", -1000, "S1-1-2", "2"),
    ]


def test_refunds_are_listed_and_counted_apart_from_sales(tmp_path: Path) -> None:
    check_day(central_db(tmp_path))


def test_an_old_journal_stored_before_central_kept_refund_of_lists_the_same(tmp_path: Path) -> None:
    db = central_db(tmp_path, old=3)
    conn = open_connection(db, readonly=True)
    try:
        assert conn.execute("SELECT count(*) FROM sales WHERE refund_of IS NULL").fetchone() == (3,)
    finally:
        conn.close()
    check_day(db)


def test_storepos_central_sales_says_refund_and_its_receipt(tmp_path: Path, capsys: object) -> None:
    db = central_db(tmp_path)
    assert central_sales(db, None) == 0
    assert central_sales(db, "S1") == 0
    out = capsys.readouterr().out.splitlines()  # type: ignore[attr-defined]
    assert out[0] == "store S1: 2 sales, 1 cancelled, total SEK 150.00; 2 refunds, refunded SEK 35.00"
    assert out[1].endswith("sale sale-1  salesperson 2") and " sale  " in out[1]
    assert " refund SEK     -25.00  sale sale-3  refund of S1-1-1" in out[3]
