"""The store registry: which stores central accepts, and every key each of them ever had.

A store is enrolled by an operator (`storepos central store enroll S001`), which opens a one-time
token: only its SHA-256 is kept, with an expiry, so a copy of the database enrols nobody. The store's
first connect presents the token with its public key and proves it holds the key (protocol.link); the
key becomes the store's current key and the token is spent in the same durable transaction, so a
second use is refused. Every later hello presents the current key. A rotation presents the new key,
the previous (current) one and the previous key's ROTATION signature over the new one: the new key
becomes current and the old one is kept, retired. Keys are never deleted, not even when a store is
revoked: central must still verify what a store signed before (`keys`, used at ingest).

Checking a hello (`claim`) only reads; what a hello changes (`settle`) runs after the store proved it
holds the key, and checks again inside its own write, so two connects racing with one token cannot
both enrol. Refusals are IdentityError with the code the store is told (protocol.link's LinkError).

SQL stays portable (no SQLite-only functions): central may move to PostgreSQL.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from central.registers import imports
from protocol import identity
from protocol.frames import LinkHello
from protocol.identity import Purpose, key_id
from runtime.clock import SystemClock
from runtime.database import immediate

TOKEN_HOURS = 72  # how long an enrolment token stays usable unless the operator says otherwise
MAX_TOKEN_HOURS = 24 * 366
HOUR_MS = 3_600_000

# The refusal codes a store can be told, each a different thing for its operator to do.
UNKNOWN_STORE = "unknown_store"
NOT_ENROLLED = "not_enrolled"
REVOKED = "revoked"
BAD_TOKEN = "bad_token"
TOKEN_EXPIRED = "token_expired"
BAD_STORE_ID = "bad_store_id"
BAD_KEY = "bad_key"


class IdentityError(ValueError):
    """A store central does not accept, or an operator request the registry refuses; `code` says which."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Claim:
    """What a hello asks of the registry, once checked: `known` (its current key), `enrol` (a token
    and a new key) or `rotate` (a new key signed by the current one). `public` is the key to prove."""

    store: str
    action: str
    public: bytes
    previous: bytes = b""


@dataclass(frozen=True)
class Enrolment:
    """One store as the operator sees it (`storepos central store list`)."""

    store: str
    status: str
    key_id: str  # the current key's id; "" before the first connect
    keys: int  # every key the store ever had, retired ones included
    created_at: int
    enrolled_at: int | None
    revoked_at: int | None
    token_expires: int  # an open token's expiry; 0 when none is open


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _checked_id(store: str) -> None:
    if not identity.valid_store_id(store):
        raise IdentityError(BAD_STORE_ID, f"{store[:64]!r} is not a store id (letters, digits, _ and -, at most 32)")


def _row(conn: sqlite3.Connection, store: str) -> tuple[str, bytes | None, int] | None:
    row = conn.execute(
        "SELECT status, token_hash, token_expires FROM store_identities WHERE store = ?", (store,)
    ).fetchone()
    return None if row is None else (row[0], row[1], row[2])


def enrol(conn: sqlite3.Connection, store: str, now: int, *, valid_hours: float = TOKEN_HOURS) -> str:
    """Open a one-time enrolment token for `store` and return it (shown once, never stored). An
    enrolled store may be given a new token (a store that lost its key): using it replaces the key.
    A revoked store stays revoked."""
    _checked_id(store)
    if not 0 < valid_hours <= MAX_TOKEN_HOURS:
        raise IdentityError("bad_hours", f"a token is valid for more than 0 and at most {MAX_TOKEN_HOURS} hours")
    row = _row(conn, store)
    if row is not None and row[0] == "revoked":
        raise IdentityError(REVOKED, f"store {store} is revoked and stays so; enrol the store under a new id")
    token = secrets.token_urlsafe(32)
    while token.startswith("-"):  # typed after `store init --token`, it would read as an option (1 in 64)
        token = secrets.token_urlsafe(32)
    expires = now + int(valid_hours * HOUR_MS)
    if row is None:
        conn.execute(
            "INSERT INTO store_identities (store, status, token_hash, token_expires, created_at) "
            "VALUES (?, 'pending', ?, ?, ?)",
            (store, _hash(token), expires, now),
        )
    else:
        conn.execute(
            "UPDATE store_identities SET token_hash = ?, token_expires = ? WHERE store = ?",
            (_hash(token), expires, store),
        )
    return token


def enrol_at(db: Path, store: str, *, valid_hours: float = TOKEN_HOURS) -> str:
    """`enrol` on central's database file (made and migrated when missing), beside a running central:
    the one way the CLI, the test kit, devtools, the demo and the benchmarks enrol a store."""
    conn = imports.open_catalog(db, create=True)
    try:
        with immediate(conn):
            return enrol(conn, store, SystemClock().now_ms(), valid_hours=valid_hours)
    finally:
        conn.close()


def register(conn: sqlite3.Connection, store: str, public: bytes, now: int) -> None:
    """Enrol `store` with `public` as its current key directly, without a token: for an operator who
    carries the public key over by hand, and in-process tests. Other current keys are retired."""
    _checked_id(store)
    identity.public_key(public)  # raises IdentityError for a malformed key
    row = _row(conn, store)
    if row is not None and row[0] == "revoked":
        raise IdentityError(REVOKED, f"store {store} is revoked and stays so")
    if row is None:
        conn.execute(
            "INSERT INTO store_identities (store, status, token_expires, created_at) VALUES (?, 'pending', 0, ?)",
            (store, now),
        )
    _make_current(conn, Claim(store, "enrol", public), now)


def revoke(conn: sqlite3.Connection, store: str, now: int) -> bool:
    """Refuse `store` from now on (its keys are kept, so its past records still verify); False when it
    was revoked already."""
    _checked_id(store)
    row = _row(conn, store)
    if row is None:
        raise IdentityError(UNKNOWN_STORE, f"central has no store {store} enrolled")
    if row[0] == "revoked":
        return False
    conn.execute(
        "UPDATE store_identities SET status = 'revoked', token_hash = NULL, token_expires = 0, revoked_at = ? "
        "WHERE store = ?",
        (now, store),
    )
    return True


def status(conn: sqlite3.Connection, store: str) -> str:
    """The store's status, or "" when central does not know it."""
    row = _row(conn, store)
    return "" if row is None else row[0]


def listing(conn: sqlite3.Connection) -> list[Enrolment]:
    rows = conn.execute(
        """
        SELECT s.store, s.status, s.created_at, s.enrolled_at, s.revoked_at,
               CASE WHEN s.token_hash IS NULL THEN 0 ELSE s.token_expires END,
               COALESCE((SELECT k.key_id FROM store_keys k WHERE k.store = s.store AND k.retired_at IS NULL), ''),
               (SELECT COUNT(*) FROM store_keys k WHERE k.store = s.store)
        FROM store_identities s ORDER BY s.store
        """
    ).fetchall()
    return [
        Enrolment(
            store=r[0],
            status=r[1],
            key_id=r[6],
            keys=r[7],
            created_at=r[2],
            enrolled_at=r[3],
            revoked_at=r[4],
            token_expires=r[5],
        )
        for r in rows
    ]


def keys(conn: sqlite3.Connection, store: str) -> dict[str, bytes]:
    """Every key `store` ever had, current and retired, by key id: what its records are verified with,
    also after a rotation or a revocation."""
    return {k: bytes(p) for k, p in conn.execute("SELECT key_id, public FROM store_keys WHERE store = ?", (store,))}


def _current(conn: sqlite3.Connection, store: str) -> set[bytes]:
    rows = conn.execute("SELECT public FROM store_keys WHERE store = ? AND retired_at IS NULL", (store,))
    return {bytes(r[0]) for r in rows}


def claim(conn: sqlite3.Connection, hello: LinkHello, now: int) -> Claim:
    """What central makes of a hello's identity, before the proof: the key the store must prove, or
    IdentityError. Reads only; the hello's fields are bounded already (protocol.link.bounds)."""
    store = hello.node
    _checked_id(store)
    row = _row(conn, store)
    if row is None:
        raise IdentityError(
            UNKNOWN_STORE, f"central does not know store {store}: enrol it at central (storepos central store enroll)"
        )
    state, token_hash, expires = row
    if state == "revoked":
        raise IdentityError(REVOKED, f"store {store} is revoked at central")
    if len(hello.key) != identity.PUBLIC_BYTES:
        raise IdentityError(BAD_KEY, f"store {store} presented no key")
    current = _current(conn, store)
    if hello.key in current:
        return Claim(store, "known", hello.key)  # also a retried enrolment or rotation that central settled
    if hello.previous:
        if hello.previous not in current:
            raise IdentityError(BAD_KEY, f"store {store} rotates from a key that is not its current key at central")
        if not identity.verify(hello.previous, hello.rotation, Purpose.ROTATION, store, hello.key):
            raise IdentityError(BAD_KEY, f"store {store}'s new key is not signed by its current key")
        return Claim(store, "rotate", hello.key, hello.previous)
    if hello.token:
        if token_hash is None or not hmac.compare_digest(bytes(token_hash), _hash(hello.token)):
            raise IdentityError(BAD_TOKEN, f"the enrolment token of store {store} is not one central has open")
        if now >= expires:
            raise IdentityError(TOKEN_EXPIRED, f"the enrolment token of store {store} has expired")
        return Claim(store, "enrol", hello.key)
    if state == "pending":
        raise IdentityError(NOT_ENROLLED, f"store {store} is not enrolled yet: it needs its enrolment token")
    raise IdentityError(BAD_KEY, f"store {store} presented a key central does not hold as its current key")


def settle(conn: sqlite3.Connection, hello: LinkHello, now: int) -> Claim:
    """After the proof: check the hello again inside this write and make what it asks durable (the
    enrolment with its token spent, or the rotation). A known key changes nothing."""
    checked = claim(conn, hello, now)
    if checked.action == "known":
        return checked
    if checked.action == "enrol":
        conn.execute(
            "UPDATE store_identities SET token_hash = NULL, token_expires = 0 WHERE store = ?", (checked.store,)
        )
    _make_current(conn, checked, now)
    return checked


def _make_current(conn: sqlite3.Connection, claim: Claim, now: int) -> None:
    kid = key_id(claim.public)
    signed_by = key_id(claim.previous) if claim.previous else ""
    conn.execute(
        "UPDATE store_keys SET retired_at = ? WHERE store = ? AND retired_at IS NULL AND key_id <> ?",
        (now, claim.store, kid),
    )
    conn.execute(
        "INSERT INTO store_keys (store, key_id, public, added_at, signed_by) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (store, key_id) DO UPDATE SET retired_at = NULL",
        (claim.store, kid, claim.public, now, signed_by),
    )
    conn.execute(
        "UPDATE store_identities SET status = 'enrolled', "
        "enrolled_at = CASE WHEN enrolled_at IS NULL THEN ? ELSE enrolled_at END WHERE store = ?",
        (now, claim.store),
    )
