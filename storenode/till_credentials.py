"""Till credentials: which programs may attach to which lanes of this store.

`storepos store till enroll --lane N` makes one and shows it once: `<id>.<secret>`, the id naming the
row and the secret a random 32-byte token of which only a SHA-256 is kept (a random secret needs no slow
hash: nothing short enough to guess is ever hashed). A till sends it in its hello; the store compares
the hash in constant time and refuses a till whose credential is unknown (`not_enrolled`), revoked
(`revoked`) or for other lanes (`wrong_lane`) with that one error and nothing else.

Lane 0 is asking only (status, stock, prices): any valid credential may ask, and `--lane 0` makes a
credential that may do nothing else (for `storepos store status` on an office machine).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
from dataclasses import dataclass

ID_PREFIX = "tc-"
NOT_ENROLLED = "not_enrolled"
REVOKED = "revoked"
WRONG_LANE = "wrong_lane"


class CredentialError(ValueError):
    """A request about credentials that cannot be done (no lanes, an unknown id): said plainly."""


@dataclass(frozen=True)
class Credential:
    id: str
    name: str
    lanes: tuple[int, ...]
    created: int
    revoked: int  # when it was revoked (ms), 0: valid


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


_DECOY = _hash("no such credential")  # compared against when the id is unknown: the same work either way


def enrol(conn: sqlite3.Connection, lanes: list[int], name: str, now: int, *, ident: str = "", secret: str = "") -> str:
    """Store a new credential for `lanes` and return it whole (`<id>.<secret>`), for showing once.
    `ident` and `secret` are for test kits that enrol a credential they already hold; otherwise made here."""
    if not lanes or any(lane < 0 for lane in lanes):
        raise CredentialError("a till credential needs one or more lanes (0: asking only)")
    if len(name) > 64 or not name.isprintable():
        raise CredentialError("a till's name is at most 64 printable characters")
    ident = ident or ID_PREFIX + secrets.token_hex(4)
    secret = secret or secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO till_credentials (id, name, lanes, secret_hash, created) VALUES (?, ?, ?, ?, ?)",
        (ident, name, ",".join(str(lane) for lane in sorted(set(lanes))), _hash(secret), now),
    )
    return f"{ident}.{secret}"


def revoke(conn: sqlite3.Connection, ident: str, now: int) -> None:
    """Refuse the credential from now on (its row stays, so `list` shows what was revoked and when)."""
    found = conn.execute("SELECT revoked FROM till_credentials WHERE id = ?", (ident,)).fetchone()
    if found is None:
        raise CredentialError(f"no till credential {ident} (storepos store till list shows them)")
    if not found[0]:
        conn.execute("UPDATE till_credentials SET revoked = ? WHERE id = ?", (max(now, 1), ident))


def listing(conn: sqlite3.Connection) -> list[Credential]:
    rows = conn.execute("SELECT id, name, lanes, created, revoked FROM till_credentials ORDER BY created, id")
    return [
        Credential(ident, name, tuple(int(lane) for lane in lanes.split(",")), created, revoked)
        for ident, name, lanes, created, revoked in rows
    ]


def check(conn: sqlite3.Connection, credential: str, lane: int) -> str:
    """Why a till presenting `credential` may not say hello on `lane` (a refusal code), or "" if it may."""
    ident, _, secret = credential.partition(".")
    row = conn.execute("SELECT lanes, secret_hash, revoked FROM till_credentials WHERE id = ?", (ident,)).fetchone()
    stored = row[1] if row is not None else _DECOY
    matches = hmac.compare_digest(_hash(secret), stored)
    if row is None or not matches or not secret:
        return NOT_ENROLLED
    if row[2]:
        return REVOKED
    if lane and str(lane) not in row[0].split(","):
        return WRONG_LANE
    return ""
