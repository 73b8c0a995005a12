"""The store's replica: transfers become live whole or not at all; gaps are refused; scans, searches
and price checks read it with the chain's one price rule."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from central.registers import catalog
from central.registers.catalog import Barcode, Item, Price
from protocol.frames import CatalogChunk, CatalogPull
from runtime.database import migrate, open_connection
from storenode.schema import MIGRATIONS
from storenode.sync import replica
from tests.kit.catalog import read, seed, write
from tests.kit.nodes import HOUR, T0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = open_connection(tmp_path / "store.db")
    migrate(c, MIGRATIONS)
    catalog = replica.read_catalog(replica.demo_catalog_path())
    replica.load(c, catalog, [], "SEK")  # a store that has never heard from central sells the file's items
    yield c
    c.close()


def stage(store: sqlite3.Connection, chunk: CatalogChunk, asked: int) -> int | None:
    store.execute("BEGIN IMMEDIATE")
    try:
        applied = replica.stage(store, chunk, asked)
    except BaseException:
        store.execute("ROLLBACK")
        raise
    store.execute("COMMIT")
    return applied


def pull_all(
    catalog_db: sqlite3.Connection, store: sqlite3.Connection, *, rows: int = 5000, cursor: bytes = b""
) -> int:
    """Pull and stage a whole transfer (the rest of one, from `cursor`) after the store's version."""
    base = replica.state(store).version
    for _ in range(1000):
        chunk = read(catalog_db, CatalogPull(base=base, cursor=cursor), rows=rows)
        applied = stage(store, chunk, base)
        if applied is not None:
            return applied
        cursor = chunk.cursor
    raise AssertionError("a transfer that does not end")


def price(store: sqlite3.Connection, code: str, at: int = T0, shop: str = "S001") -> int | None:
    item = replica.lookup(store, code, shop, "SEK", at)
    return None if item is None else item.price


def snapshot(store: sqlite3.Connection) -> list[list[tuple[object, ...]]]:
    tables = ("items", "barcodes", "prices", "vat_rates", "item_groups", "replica")
    return [store.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in tables]


def test_a_transfer_goes_live_only_when_complete_and_replaces_the_seed(
    catalog_db: sqlite3.Connection,
    store: sqlite3.Connection,
) -> None:
    assert price(store, "7310000000010") == 1590  # the demo file's milk
    version = seed(catalog_db, 30)
    before = snapshot(store)
    chunk = read(catalog_db, CatalogPull(base=0), rows=10)
    assert stage(store, chunk, 0) is None
    assert snapshot(store)[:-1] == before[:-1]  # staged only: the live tables are untouched
    assert replica.state(store).transfer_base == 0
    assert price(store, "0000003") is None
    assert pull_all(catalog_db, store, rows=10) == version  # resumed from the staged cursor
    assert price(store, "0000003") == 103
    assert price(store, "7310000000010") is None  # a snapshot: what central does not hold is gone
    assert store.execute("SELECT count(*) FROM stage_items").fetchone() == (0,)


def test_a_delta_with_a_gap_is_refused_and_changes_nothing(
    catalog_db: sqlite3.Connection,
    store: sqlite3.Connection,
) -> None:
    v1 = seed(catalog_db, 5)
    pull_all(catalog_db, store)
    v2 = write(catalog_db, "prices", [Price(item="0001", price=5, currency="SEK")])
    v3 = write(catalog_db, "prices", [Price(item="0002", price=6, currency="SEK")])
    assert (v1, v2, v3) == (v1, v1 + 1, v1 + 2)
    before = snapshot(store)
    skipped = read(catalog_db, CatalogPull(base=v2))  # built on v2, which this store never had
    with pytest.raises(replica.ReplicaGap, match=f"after version {v2}; this store holds version {v1}"):
        stage(store, skipped, v1)
    with pytest.raises(replica.ReplicaGap):
        stage(store, skipped, v2)  # even when asked for: the store does not hold v2
    assert snapshot(store) == before
    assert price(store, "0000001") == 101
    assert pull_all(catalog_db, store) == v3  # asking for what it missed
    assert (price(store, "0000001"), price(store, "0000002")) == (5, 6)


def test_a_central_that_starts_over_sends_a_snapshot_that_replaces_everything(
    catalog_db: sqlite3.Connection,
    store: sqlite3.Connection,
) -> None:
    seed(catalog_db, 3)
    pull_all(catalog_db, store)
    store.execute("UPDATE replica SET version = 999")  # as if central had been restored from an older backup
    assert pull_all(catalog_db, store) < 999
    assert price(store, "0000002") == 102


def test_store_price_beats_chain_and_campaigns_run_from_start_to_end(
    catalog_db: sqlite3.Connection,
    store: sqlite3.Connection,
) -> None:
    seed(catalog_db, 1)
    write(
        catalog_db,
        "prices",
        [
            Price(item="0000", store="S001", price=90, currency="SEK"),
            Price(item="0000", starts=T0 + HOUR, ends=T0 + 2 * HOUR, price=80, currency="SEK"),
            Price(item="0000", store="S001", starts=T0 + 3 * HOUR, ends=T0 + 4 * HOUR, price=70, currency="SEK"),
        ],
    )
    pull_all(catalog_db, store)
    assert price(store, "0000000", shop="S002") == 100  # another store: the chain price
    expected = {T0: 90, T0 + HOUR: 80, T0 + 2 * HOUR - 1: 80, T0 + 2 * HOUR: 90, T0 + 3 * HOUR: 70, T0 + 4 * HOUR: 90}
    assert {at: price(store, "0000000", at) for at in expected} == expected
    info = replica.item_info(store, "0000000", "S001", "SEK", T0 + HOUR)
    assert info is not None and (info.price, info.campaign_ends) == (80, T0 + 2 * HOUR)


def test_search_finds_word_prefixes_and_skips_retired_items(
    catalog_db: sqlite3.Connection,
    store: sqlite3.Connection,
) -> None:
    write(catalog_db, "vat-rates", [])
    seed(catalog_db, 0)
    write(
        catalog_db,
        "items",
        [
            Item(item="1", name="Bananas Fresh", vat_rate=1200, unit="kg"),
            Item(item="2", name="Banana bread", vat_rate=1200),
            Item(item="3", name="Kött bullar", receipt_text="MEATBALLS", vat_rate=1200),
            Item(item="4", name="Bandage", vat_rate=2500, active=False),
            Item(item="5", name='Weird "quote" name*', vat_rate=2500),
        ],
    )
    write(
        catalog_db,
        "barcodes",
        [
            Barcode(code="2300005", item="1"),
            Barcode(code="7310000000058", item="1"),
            Barcode(code="12345670", item="2"),
        ],
    )
    write(catalog_db, "prices", [Price(item="1", price=2490, currency="SEK")])
    pull_all(catalog_db, store)

    def names(text: str) -> list[str]:
        return [f.name for f in replica.search(store, text, 10, "S001", "SEK", T0)]

    assert sorted(names("ban")) == ["Banana bread", "Bananas Fresh"]  # not the retired Bandage
    assert names("ban fre") == ["Bananas Fresh"]
    assert names("kott") == ["Kött bullar"] and names("meatb") == ["Kött bullar"]
    assert names('"quote') == ['Weird "quote" name*'] and names("*") == [] and names("") == []
    found = {f.item: f for f in replica.search(store, "ban", 10, "S001", "SEK", T0)}
    # the item's full barcode, not its lower-sorting variable-measure key
    assert (found["1"].code, found["1"].price, found["1"].unit) == ("7310000000058", 2490, "kg")
    assert (found["2"].code, found["2"].price) == ("12345670", -1)  # no price here: shown, not sellable


def test_deleted_prices_leave_the_store_and_the_newer_of_delete_and_re_add_wins(
    catalog_db: sqlite3.Connection,
    store: sqlite3.Connection,
) -> None:
    seed(catalog_db, 3)
    write(catalog_db, "prices", [Price(item="0001", starts=T0, ends=T0 + HOUR, price=5, currency="SEK")])
    pull_all(catalog_db, store)
    assert price(store, "0000001") == 5
    campaign = [("0001", "", T0, T0 + HOUR)]

    def delete(keys: list[tuple[str, str, int, int]]) -> None:
        catalog_db.execute("BEGIN IMMEDIATE")
        catalog.delete_prices(catalog_db, keys)
        catalog_db.execute("COMMIT")

    delete(campaign)
    pull_all(catalog_db, store)
    assert price(store, "0000001") == 101  # the campaign is gone; the chain price again
    # Within one transfer: a price deleted and imported again, another imported and then deleted.
    write(catalog_db, "prices", [Price(item="0000", price=99, currency="SEK")])  # something to start on
    base = replica.state(store).version
    first = read(catalog_db, CatalogPull(base=base), rows=1)
    assert stage(store, first, base) is None
    cursor = first.cursor

    def step() -> None:
        nonlocal cursor
        chunk = read(catalog_db, CatalogPull(base=base, cursor=cursor), rows=1)
        assert stage(store, chunk, base) is None
        cursor = chunk.cursor

    again = [Price(item="0001", starts=T0, ends=T0 + HOUR, price=6, currency="SEK")]
    write(catalog_db, "prices", [Price(item="0002", starts=T0, ends=T0 + HOUR, price=7, currency="SEK")])
    step()  # 0002's new campaign is staged, then deleted at central
    delete([("0002", "", T0, T0 + HOUR)])
    write(catalog_db, "prices", again)  # 0001's campaign is back, staged, deleted, staged deleted, back again
    step()
    delete(campaign)
    step()  # the deletion of 0002's campaign
    step()  # the deletion of 0001's
    write(catalog_db, "prices", again)
    applied = pull_all(catalog_db, store, rows=1, cursor=cursor)
    assert applied == catalog.version(catalog_db)
    assert (price(store, "0000001"), price(store, "0000002")) == (6, 102)
