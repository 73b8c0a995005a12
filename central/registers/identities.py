"""Store identities at central: the keys each store has had, by key id.

Minimal: only what journal verification needs (`keys`). The identity change owns this module and
its table (central migration 9) and adds the registry, enrolment and rotation around it.
"""

from __future__ import annotations

import sqlite3


def keys(conn: sqlite3.Connection, store: str) -> dict[str, bytes]:
    """Every public key `store` has had (retired ones too: records signed before a rotation verify)."""
    return dict(conn.execute("SELECT key_id, public FROM store_keys WHERE store = ?", (store,)).fetchall())
