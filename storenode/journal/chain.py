"""The append-only fiscal journal: per-lane gapless receipt numbers, a SHA-256 hash chain, and the
store key's signature on every record.

hash = SHA-256(prev_hash || canonical record bytes). Receipt numbers and the previous hash are read
inside the same transaction that appends, so they cannot race; triggers refuse UPDATE and DELETE.
Verification re-derives everything from the stored bytes alone, so any edit of any column shows.

Each record is signed (protocol.identity, Purpose.JOURNAL, over store id and chain hash) when it is
appended, and the signature travels with it to central: the hash alone proves the chain is whole,
the signature proves this store's key made it, so nobody who can reach central's port can forge a
sale that verifies. The record's bytes and its hash rule are unchanged by signing. Rows journaled
before signatures existed are signed once at the node's start (`sign_unsigned`), before the link
sends anything, so every record central gets is signed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol import identity
from protocol.chain import GENESIS, chain_hash, signature_problem
from protocol.codec import FrameError, decode_record, encode_record
from protocol.frames import SaleRecord
from protocol.identity import Purpose


class Signer:
    """The store key, as the journal uses it: handed down from the node that loaded it, so no lane
    reads key files and the signed bytes are built only in protocol.identity."""

    def __init__(self, store: str, key: Ed25519PrivateKey | None) -> None:
        self.store = store
        self.key = key  # None: the node has no usable key; records stay unsigned until it has (sign_unsigned)
        self.public = identity.public_bytes(key) if key is not None else b""
        self.key_id = identity.key_id(self.public) if key is not None else ""

    def sign(self, chain_head: bytes) -> bytes:
        return identity.sign(self.key, Purpose.JOURNAL, self.store, chain_head) if self.key is not None else b""


def append(
    conn: sqlite3.Connection,
    lane: int,
    build: Callable[[int], SaleRecord],
    signer: Signer,
    enqueue: Callable[[SaleRecord, bytes], int] | None = None,
) -> tuple[SaleRecord, bytes]:
    """Append the record `build(receipt_no)` to the lane's chain, signed; returns it with its canonical
    bytes. `enqueue` queues it for central in the same transaction and gives its outbox seq, kept
    beside the receipt so "is this receipt still on its way?" is a comparison, not a search."""
    row = conn.execute(
        "SELECT receipt_no, hash FROM journal WHERE lane = ? ORDER BY receipt_no DESC LIMIT 1", (lane,)
    ).fetchone()
    receipt_no, prev = (row[0] + 1, row[1]) if row else (1, GENESIS)
    record = build(receipt_no)
    body = encode_record(record)
    seq = enqueue(record, body) if enqueue is not None else 0
    digest = chain_hash(prev, body)
    conn.execute(
        "INSERT INTO journal (lane, receipt_no, kind, sale_id, body, prev_hash, hash, seq, refund_of, sig, key)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (
            lane,
            receipt_no,
            record.kind,
            record.sale_id,
            body,
            prev,
            digest,
            seq,
            record.refund_of,
            signer.sign(digest),
            signer.key_id,
        ),
    )
    return record, body


def sign_unsigned(conn: sqlite3.Connection, signer: Signer) -> int:
    """Sign every record journaled before records were signed (their hashes are already there);
    returns how many. Run once at the node's start, before the link sends anything."""
    if signer.key is None:
        return 0
    rows = conn.execute("SELECT lane, receipt_no, hash FROM journal WHERE sig = x''").fetchall()
    for lane, receipt_no, digest in rows:
        conn.execute(
            "UPDATE journal SET sig = ?, key = ? WHERE lane = ? AND receipt_no = ?",
            (signer.sign(digest), signer.key_id, lane, receipt_no),
        )
    return len(rows)


def page(conn: sqlite3.Connection, lane: int, after: int, limit: int) -> list[tuple[int, bytes, int]]:
    """(receipt_no, hash, outbox seq) of a lane's receipts after `after`, in order."""
    rows = conn.execute(
        "SELECT receipt_no, hash, seq FROM journal WHERE lane = ? AND receipt_no > ? ORDER BY receipt_no LIMIT ?",
        (lane, after, limit),
    )
    return [(no, digest, seq) for no, digest, seq in rows]


def last_receipts(conn: sqlite3.Connection) -> dict[int, int]:
    """Each lane's last receipt number, by index lookups only: cheap however long the journal is."""
    out: dict[int, int] = {}
    lane = conn.execute("SELECT MIN(lane) FROM journal").fetchone()[0]
    while lane is not None:
        out[lane] = conn.execute("SELECT MAX(receipt_no) FROM journal WHERE lane = ?", (lane,)).fetchone()[0]
        lane = conn.execute("SELECT MIN(lane) FROM journal WHERE lane > ?", (lane,)).fetchone()[0]
    return out


def verify(conn: sqlite3.Connection, store: str, keys: dict[str, bytes]) -> tuple[int, list[str]]:
    """Check every lane's chain end to end and every record's signature as store `store`'s against
    `keys` (key id -> public key: the keys this store has had); returns (rows checked, problems
    naming lane and receipt)."""
    problems: list[str] = []
    checked = 0
    lanes = [r[0] for r in conn.execute("SELECT DISTINCT lane FROM journal ORDER BY lane")]
    for lane in lanes:
        expected_no, prev = 1, GENESIS
        rows = conn.execute(
            "SELECT receipt_no, kind, sale_id, body, prev_hash, hash, refund_of, sig, key FROM journal"
            " WHERE lane = ? ORDER BY receipt_no",
            (lane,),
        )
        for receipt_no, kind, sale_id, body, prev_hash, stored_hash, refund_of, sig, key in rows:
            checked += 1
            where = f"lane {lane} receipt {receipt_no}"
            if receipt_no != expected_no:
                problems.append(f"{where}: expected receipt {expected_no} (gap or reordering)")
            if prev_hash != prev:
                problems.append(f"{where}: previous-hash link broken")
            if chain_hash(prev_hash, body) != stored_hash:
                problems.append(f"{where}: hash does not match the record bytes")
            problem = signature_problem(keys, key, sig, store, stored_hash)
            if problem is not None:
                unsigned = " (the store node signs it at its next start)" if not sig else ""
                problems.append(f"{where}: {problem}{unsigned}")
            try:
                record = decode_record(body)
            except FrameError as exc:
                problems.append(f"{where}: {exc}")
            else:
                indexed = (record.lane, record.receipt_no, record.kind, record.sale_id, record.refund_of)
                if indexed != (lane, receipt_no, kind, sale_id, refund_of):
                    problems.append(f"{where}: indexed columns differ from the record")
            expected_no, prev = receipt_no + 1, stored_hash
    return checked, problems


def find(conn: sqlite3.Connection, lane: int, receipt_no: int) -> SaleRecord | None:
    row = conn.execute("SELECT body FROM journal WHERE lane = ? AND receipt_no = ?", (lane, receipt_no)).fetchone()
    return decode_record(row[0]) if row else None


def refunds_of(conn: sqlite3.Connection, receipt: str) -> list[SaleRecord]:
    """Every journaled sale that refunds `receipt` (cancelled refunds too: the caller looks at `kind`)."""
    rows = conn.execute("SELECT body FROM journal WHERE refund_of = ? AND refund_of != ''", (receipt,))
    return [decode_record(body) for (body,) in rows]
