"""Store identities at central: the keys each store has had, by key id.

Minimal: only what journal verification needs (`keys`, and `register` for tests and tools). The
identity change owns this module and its table (central migration 9) and adds the registry,
enrolment and rotation around them, with these two functions' signatures.
"""

from __future__ import annotations

import sqlite3

from protocol import identity


def keys(conn: sqlite3.Connection, store: str) -> dict[str, bytes]:
    """Every public key `store` has had (retired ones too: records signed before a rotation verify)."""
    return dict(conn.execute("SELECT key_id, public FROM store_keys WHERE store = ?", (store,)).fetchall())


def register(conn: sqlite3.Connection, store: str, public: bytes, now: int) -> None:
    """Hold `public` as one of `store`'s keys (what enrolment does; here for tests and tools)."""
    conn.execute(
        "INSERT OR IGNORE INTO store_keys (store, key_id, public) VALUES (?,?,?)",
        (store, identity.key_id(public), public),
    )
