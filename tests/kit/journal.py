"""A store's journal read back as another process would: what tests check a sale or refund against."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from central.registers import identities
from protocol import identity
from protocol.chain import GENESIS, chain_hash
from protocol.codec import decode_record, encode_record
from protocol.frames import Event, LinkHello, SaleRecord
from storenode.app import StoreNode
from storenode.journal.chain import Signer


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


class StoreKey:
    """A store's key and journal records signed as the store signs them, for tests that speak the link
    themselves (a forger, a store resending): `event` chains each lane's receipts from the last made."""

    def __init__(self, store: str) -> None:
        self.signer = Signer(store, identity.generate())
        self.hashes: dict[tuple[int, int], bytes] = {}  # (lane, receipt) -> chain hash of the record made

    def enrol(self, conn: sqlite3.Connection) -> None:
        """Central holds this key for the store (what enrolment does; central migration 9's table)."""
        identities.register(conn, self.signer.store, self.signer.public, 0)

    def hello(self) -> LinkHello:
        """The hello of a store holding this key (greet proves it with `signer.key`)."""
        return LinkHello(node=self.signer.store, role="store", key=self.signer.public)

    def event(self, seq: int, receipt_no: int, *, lane: int = 1, total: int | None = None, store: str = "") -> Event:
        record = SaleRecord(
            store=store or self.signer.store,
            lane=lane,
            receipt_no=receipt_no,
            kind="sale",
            sale_id=f"sale-{lane}-{receipt_no}-{total}",
            operator="1",
            opened_at=0,
            closed_at=0,
            currency="SEK",
            lines=[],
            total=100 * receipt_no if total is None else total,
            rounding=0,
            vat=[],
            tenders=[],
            change=0,
        )
        body = encode_record(record)
        digest = chain_hash(self.hashes.get((lane, receipt_no - 1), GENESIS), body)
        self.hashes[(lane, receipt_no)] = digest
        return Event(seq=seq, kind="sale", body=body, sig=self.signer.sign(digest), key=self.signer.key_id)
