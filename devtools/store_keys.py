"""A store's key made ahead of its first start and registered at central, for test and demo setups.

Journal verification at central needs the store's public key (central/registers/identities.py).
Until enrolment (`storepos central store enroll` + `storepos store init --token`) replaces it, the
setups that start a store beside a central put the key there themselves: made where the store node
looks for it (storenode.app.KEY_FILE under its data_dir), its public half written into central's
store_keys.
"""

from __future__ import annotations

from pathlib import Path

from central.registers import identities
from central.schema import MIGRATIONS as CENTRAL_MIGRATIONS
from protocol import identity
from runtime.clock import SystemClock
from runtime.database import immediate, migrate, open_connection
from storenode.app import KEY_FILE


def register(central_db: Path, store: str, data_dir: Path) -> str:
    """Make (or read) the store's key under `data_dir` and register it at central; returns its key id."""
    key, _ = identity.load_or_create(data_dir / KEY_FILE)
    public = identity.public_bytes(key)
    central_db.parent.mkdir(parents=True, exist_ok=True)
    conn = open_connection(central_db)
    try:
        migrate(conn, CENTRAL_MIGRATIONS)
        with immediate(conn):
            identities.register(conn, store, public, SystemClock().now_ms())
    finally:
        conn.close()
    return identity.key_id(public)
