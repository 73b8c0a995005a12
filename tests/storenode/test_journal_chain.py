"""The fiscal journal's chain, as properties: whatever the order lanes sell in, each lane's receipts are
numbered 1, 2, 3 ... without gaps, the hash chain verifies and every record carries the store key's
signature over its hash; and any change to any stored record, by someone who bypassed the append-only
triggers, is found by `verify`. Pure SQLite in memory, no node."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import identity
from protocol.frames import SaleRecord
from runtime.database import migrate
from storenode.journal import chain
from storenode.schema import MIGRATIONS
from tests.kit.printing import make_record

STORE = "S001"
SIGNER = chain.Signer(STORE, identity.generate())
KEYS = {SIGNER.key_id: SIGNER.public}
LANES = st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=25)


@pytest.fixture(scope="module")
def conn() -> Iterator[sqlite3.Connection]:
    """One migrated store schema for all examples; each example runs in a transaction it rolls back."""
    c = sqlite3.connect(":memory:", isolation_level=None)
    migrate(c, MIGRATIONS)
    yield c
    c.close()


def sale(lane: int, no: int, kind: str = "sale") -> SaleRecord:
    return msgspec.structs.replace(make_record(no, kind=kind), lane=lane, sale_id=f"sale-{lane}-{no}")


def sell(c: sqlite3.Connection, lanes: list[int], kinds: list[str] | None = None) -> None:
    for i, lane in enumerate(lanes):
        kind = kinds[i % len(kinds)] if kinds else "sale"
        chain.append(c, lane, lambda no, lane=lane, kind=kind: sale(lane, no, kind), SIGNER)


@given(lanes=LANES, kinds=st.lists(st.sampled_from(["sale", "cancel"]), min_size=1, max_size=3))
def test_receipts_are_gapless_per_lane_and_the_chain_verifies(
    conn: sqlite3.Connection, lanes: list[int], kinds: list[str]
) -> None:
    conn.execute("BEGIN")
    try:
        sell(conn, lanes, kinds)
        per_lane = Counter(lanes)
        for lane, count in per_lane.items():
            numbers = [r[0] for r in conn.execute("SELECT receipt_no FROM journal WHERE lane = ?", (lane,))]
            assert sorted(numbers) == list(range(1, count + 1))
            assert [no for no, _, _ in chain.page(conn, lane, 0, 100)] == list(range(1, count + 1))
        assert chain.last_receipts(conn) == dict(per_lane)
        assert chain.verify(conn, STORE, KEYS) == (len(lanes), [])
        for lane, count in per_lane.items():
            found = chain.find(conn, lane, count)
            assert found is not None and (found.lane, found.receipt_no) == (lane, count)
    finally:
        conn.execute("ROLLBACK")


def _flip(blob: bytes, at: int) -> bytes:
    at %= len(blob)
    return blob[:at] + bytes([blob[at] ^ 0x01]) + blob[at + 1 :]


TAMPERS = ["body", "hash", "prev_hash", "receipt_no", "kind", "sale_id", "refund_of", "delete", "sig", "key"]


@settings(max_examples=150)
@given(lanes=LANES, pick=st.integers(min_value=0), how=st.sampled_from(TAMPERS), at=st.integers(min_value=0))
def test_any_tampered_record_is_detected(
    conn: sqlite3.Connection, lanes: list[int], pick: int, how: str, at: int
) -> None:
    conn.execute("BEGIN")
    try:
        sell(conn, lanes)
        assert chain.verify(conn, STORE, KEYS)[1] == []
        conn.execute("DROP TRIGGER journal_no_update")  # what someone editing the file would do
        conn.execute("DROP TRIGGER journal_no_delete")
        rows = conn.execute(
            "SELECT lane, receipt_no, body, hash, prev_hash, sig FROM journal ORDER BY lane, receipt_no"
        )
        lane, no, body, digest, prev, sig = rows.fetchall()[pick % len(lanes)]
        last = conn.execute("SELECT MAX(receipt_no) FROM journal WHERE lane = ?", (lane,)).fetchone()[0]
        if how == "delete" and no == last:
            no = 1  # dropping a lane's newest receipt leaves a valid shorter chain: central's copy shows that
            if last == 1:
                how = "body"
        where = "WHERE lane = ? AND receipt_no = ?"
        change = {
            "body": ("UPDATE journal SET body = ? " + where, (_flip(body, at), lane, no)),
            "hash": ("UPDATE journal SET hash = ? " + where, (_flip(digest, at), lane, no)),
            "prev_hash": ("UPDATE journal SET prev_hash = ? " + where, (_flip(prev, at), lane, no)),
            "receipt_no": ("UPDATE journal SET receipt_no = receipt_no + 1000 " + where, (lane, no)),
            "kind": ("UPDATE journal SET kind = 'cancel' || kind " + where, (lane, no)),
            "sale_id": ("UPDATE journal SET sale_id = 'x' || sale_id " + where, (lane, no)),
            "refund_of": ("UPDATE journal SET refund_of = 'S001-9-9' " + where, (lane, no)),
            "delete": ("DELETE FROM journal " + where, (lane, no)),
            "sig": ("UPDATE journal SET sig = ? " + where, (_flip(sig, at), lane, no)),
            "key": ("UPDATE journal SET key = 'feedfacefeedface' " + where, (lane, no)),
        }[how]
        conn.execute(*change)
        _, problems = chain.verify(conn, STORE, KEYS)
        assert problems, f"{how} of lane {lane} receipt {no} went unnoticed"
        assert all(f"lane {lane} " in p for p in problems)  # the problems name the tampered lane
    finally:
        conn.execute("ROLLBACK")


def test_the_triggers_refuse_edits_and_deletes(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN")
    try:
        sell(conn, [1, 1])
        for statement in ("UPDATE journal SET kind = 'cancel'", "DELETE FROM journal"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(statement)
        assert chain.verify(conn, STORE, KEYS) == (2, [])
    finally:
        conn.execute("ROLLBACK")


def test_records_journaled_before_signing_are_signed_once_and_only_the_signature_may_be_set(
    conn: sqlite3.Connection,
) -> None:
    conn.execute("BEGIN")
    try:
        sell(conn, [1, 2, 1])
        conn.execute("DROP TRIGGER journal_no_update")  # rows as they were before store migration 13
        conn.execute("UPDATE journal SET sig = x'', key = ''")
        conn.execute(TRIGGER)
        assert any("not signed" in p for p in chain.verify(conn, STORE, KEYS)[1])
        assert chain.sign_unsigned(conn, SIGNER) == 3
        assert chain.verify(conn, STORE, KEYS) == (3, [])
        assert chain.sign_unsigned(conn, SIGNER) == 0
        for statement in (
            "UPDATE journal SET sig = x'00', key = 'k'",  # a signature is set once
            "UPDATE journal SET sig = x'', key = ''",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(statement)
        conn.execute("DROP TRIGGER journal_no_update")
        conn.execute("UPDATE journal SET sig = x'', key = '' WHERE lane = 2")
        conn.execute(TRIGGER)
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):  # never with another column
            conn.execute("UPDATE journal SET sig = x'01', key = 'k', body = x'00' WHERE lane = 2")
        assert chain.sign_unsigned(conn, SIGNER) == 1
        assert chain.verify(conn, STORE, KEYS) == (3, [])
        other = {identity.key_id(identity.public_bytes(identity.generate())): SIGNER.public}
        assert all("not one the store holds or held" in p for p in chain.verify(conn, STORE, other)[1])
    finally:
        conn.execute("ROLLBACK")


TRIGGER = (
    next(m.sql for m in MIGRATIONS if m.version == 13)
    .split("DROP TRIGGER journal_no_update;")[1]
    .split("CREATE INDEX")[0]
    .strip()
)
