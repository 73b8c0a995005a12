"""A store's journal read back as another process would: what tests check a sale or refund against."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from protocol.codec import decode_record
from protocol.frames import SaleRecord
from storenode.app import StoreNode


def journal(node: StoreNode) -> list[SaleRecord]:
    return journal_at(node.config.db_path)


def journal_at(db: Path) -> list[SaleRecord]:
    """A store's journal, read as another process would (read-only, beside the running node)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return journal_rows(conn)
    finally:
        conn.close()


def journal_rows(conn: sqlite3.Connection) -> list[SaleRecord]:
    """Every journal record on `conn`, lane by lane in receipt order."""
    rows = conn.execute("SELECT body FROM journal ORDER BY lane, receipt_no").fetchall()
    return [decode_record(body) for (body,) in rows]
