"""Shared fixtures: real nodes on 127.0.0.1 port 0 with real SQLite files under tmp_path. Fixtures only:
what they are built from lives in tests/kit, which test files import."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from central.app import CentralNode
from central.schema import MIGRATIONS as CENTRAL_MIGRATIONS
from devtools import enrolment
from runtime.clock import FixedClock
from runtime.database import migrate, open_connection
from storenode.app import StoreNode
from storenode.config import StoreConfig
from tests.kit import certificates
from tests.kit.nodes import T0, central_node, enrolled, make_store_config


@pytest.fixture(scope="session", autouse=True)
def chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One TLS chain (CA, central's and the proxy's certificates) for the whole session."""
    folder = tmp_path_factory.mktemp("chain")
    certificates.use(folder)
    return folder


@pytest.fixture(scope="session", autouse=True)
def enrolled_tills(chain: Path) -> Iterator[None]:
    """Every store a test starts has the session's till credential enrolled for its lanes and serves
    its tills wss with a certificate from the test chain, which the tills trust (devtools.enrolment);
    tests of enrolment itself make their own credentials."""
    enrolment.kit_credential()
    enrolment.trust_chain(chain)
    setup = StoreNode.__init__

    def prepared(node: StoreNode, config: StoreConfig, *args: Any, **options: Any) -> None:
        enrolment.prepare(config, chain)
        setup(node, config, *args, **options)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(StoreNode, "__init__", prepared)
        yield


@pytest.fixture
async def central(tmp_path: Path, nursery: trio.Nursery) -> CentralNode:
    node = central_node(tmp_path / "central" / "central.db")
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
    node = StoreNode(enrolled(make_store_config(tmp_path, central_url=central.url), central), clock=clock)
    await nursery.start(node.run)
    return node
