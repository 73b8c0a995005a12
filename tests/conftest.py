"""Shared fixtures: real nodes on 127.0.0.1 port 0 with real SQLite files under tmp_path. Fixtures only:
what they are built from lives in tests/kit, which test files import."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from central.app import CentralNode
from central.registers import identities
from central.schema import MIGRATIONS as CENTRAL_MIGRATIONS
from protocol import identity
from runtime.clock import FixedClock
from runtime.database import migrate, open_connection
from storenode.app import KEY_FILE, StoreNode
from tests.kit.nodes import T0, make_store_config


@pytest.fixture(autouse=True)
def enrolled_stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Until enrolment is merged (the identity change puts each store's key at central): central holds
    the key of every store node whose data folder is under this test's tmp_path, as enrolment would.
    In-process nodes only; tests of real processes register keys with devtools.store_keys."""
    held = identities.keys

    def keys(conn: sqlite3.Connection, store: str) -> dict[str, bytes]:
        found = held(conn, store)
        for path in tmp_path.rglob(str(KEY_FILE)):
            public = identity.public_bytes(identity.load_private(path))
            found.setdefault(identity.key_id(public), public)
        return found

    monkeypatch.setattr(identities, "keys", keys)


@pytest.fixture
async def central(tmp_path: Path, nursery: trio.Nursery) -> CentralNode:
    node = CentralNode(tmp_path / "central" / "central.db", port=0)
    await nursery.start(node.run)
    return node


@pytest.fixture
def catalog_db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """Central's database, migrated and empty, on a plain connection: the registers as operator commands
    and distribution read and write them, without a running node."""
    conn = open_connection(tmp_path / "central.db")
    migrate(conn, CENTRAL_MIGRATIONS)
    yield conn
    conn.close()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
async def store(tmp_path: Path, nursery: trio.Nursery, central: CentralNode, clock: FixedClock) -> StoreNode:
    node = StoreNode(make_store_config(tmp_path, central_url=central.url), clock=clock)
    await nursery.start(node.run)
    return node
