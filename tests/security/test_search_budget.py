"""An item search costs bounded work: 20,000 words once stalled every lane for seconds and 300,000 pinned
the store's database thread for minutes, and the query ran on after its timeout."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from protocol.frames import Error, ItemSearch, SearchResult
from runtime.database import immediate, migrate, open_connection
from storenode.app import StoreNode
from storenode.schema import MIGRATIONS
from storenode.sync import replica
from tests.kit.nodes import T0
from till.client import connect


@pytest.fixture
def replica_db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = open_connection(tmp_path / "store.db")
    migrate(c, MIGRATIONS)
    with immediate(c):
        replica.load(c, replica.read_catalog(replica.demo_catalog_path()), "SEK")
    yield c
    c.close()


@pytest.mark.parametrize(
    ("text", "why"),
    [(" ".join(["milk"] * 20_000), "characters"), ("a b c d e f g", "words"), ("x" * 101, "characters")],
)
def test_a_search_beyond_its_size_is_refused_before_any_query(
    replica_db: sqlite3.Connection, text: str, why: str
) -> None:
    with pytest.raises(replica.SearchRefused, match=why):
        replica.search(replica_db, text, 20, "S001", "SEK", T0)


def test_repeated_words_count_once(replica_db: sqlite3.Connection) -> None:
    assert replica.search(replica_db, "milk milk milk milk milk milk milk", 20, "S001", "SEK", T0)


def test_a_search_over_its_budget_is_stopped_and_the_connection_is_free_again(
    replica_db: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replica, "SEARCH_STEPS", 1)  # the demo catalogue is too small to take 1,000 steps
    with pytest.raises(replica.SearchRefused, match="too much"):
        replica.search(replica_db, "m", 20, "S001", "SEK", T0, budget=-1.0)  # the deadline has passed
    # the progress handler is gone: the next query on the same connection runs to its end
    assert replica.search(replica_db, "m", 20, "S001", "SEK", T0)
    assert replica_db.execute("SELECT count(*) FROM items").fetchone()[0] > 0


async def test_a_store_answers_a_huge_search_with_a_refusal_and_searches_on(store: StoreNode) -> None:
    with trio.fail_after(20):
        async with connect(store.url, lane=1, till="T1") as till:
            refused = await till.request(ItemSearch(text=" ".join(["a"] * 500)))  # within the frame's bounds
            assert isinstance(refused, Error) and refused.code == "bad_search", refused
            assert len(refused.message) < 200
            found = await till.request(ItemSearch(text="milk"))
            assert isinstance(found, SearchResult) and found.items
