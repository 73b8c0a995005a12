"""The store's replica: transfers become live whole or not at all; gaps are refused; scans, searches
and price checks read it with the chain's one price rule."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TypeVar

import pytest

from central.registers import catalog
from central.registers.catalog import Barcode, Item, Price
from protocol.frames import CatalogChunk, CatalogPull
from runtime.database import immediate, migrate, open_connection
from storenode.schema import MIGRATIONS
from storenode.sync import replica, shadow
from tests.kit.catalog import read, seed, write
from tests.kit.nodes import HOUR, T0

T = TypeVar("T")


def open_store(path: Path) -> sqlite3.Connection:
    c = open_connection(path)
    migrate(c, MIGRATIONS)
    catalog = replica.read_catalog(replica.demo_catalog_path())
    with immediate(c):  # a store that has never heard from central sells the file's items
        replica.load(c, catalog, "SEK")
    return c


@pytest.fixture
def store(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = open_store(tmp_path / "store.db")
    yield c
    c.close()


@pytest.fixture
def sliced(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """A second store, beside `store`, for transfers made live through shadow tables."""
    c = open_store(tmp_path / "sliced.db")
    yield c
    c.close()


def job(store: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """One job in its own transaction, as the database actor runs it."""
    with immediate(store):
        return work(store)


def stage(
    store: sqlite3.Connection, chunk: CatalogChunk, asked: int, direct_rows: int = replica.DIRECT_ROWS
) -> int | None:
    return job(store, partial(replica.stage, chunk=chunk, asked=asked, direct_rows=direct_rows))


def pull_all(
    catalog_db: sqlite3.Connection,
    store: sqlite3.Connection,
    *,
    rows: int = 5000,
    cursor: bytes = b"",
    direct_rows: int = replica.DIRECT_ROWS,
) -> int:
    """Pull and stage a whole transfer (the rest of one, from `cursor`) after the store's version; a
    large one is then made live a slice per transaction and what it retired drained, as the follower does."""
    base = replica.state(store).version
    for _ in range(1000):
        chunk = read(catalog_db, CatalogPull(base=base, cursor=cursor), rows=rows)
        applied = stage(store, chunk, base, direct_rows)
        if applied is None and chunk.done:
            applied = apply_all(store)
        if applied is not None:
            while not job(store, partial(replica.drain_slice, rows=SLICE)):
                pass
            return applied
        base, cursor = chunk.base, chunk.cursor  # as the follower: a snapshot answer goes on as one
    raise AssertionError("a transfer that does not end")


SLICE = 7  # rows per slice in the sliced tests: many slices from a small catalogue


def apply_all(store: sqlite3.Connection) -> int:
    for _ in range(10_000):
        live = job(store, partial(replica.apply_slice, rows=SLICE))
        if live is not None:
            return live
    raise AssertionError("a build that does not end")


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


def contents(store: sqlite3.Connection) -> list[list[tuple[object, ...]]]:
    """Everything a transfer decides, search index included, whichever way it went live."""
    tables = [store.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in replica.TABLES]
    words = store.execute(  # the search index as searched: (word, item) for every word indexed
        "SELECT v.term, i.item FROM items_vocab v JOIN items i ON i.rowid = v.doc ORDER BY 1, 2"
    ).fetchall()
    return [*tables, words, store.execute("SELECT version, epoch, transfer_base, ready FROM replica").fetchall()]


def leftovers(store: sqlite3.Connection) -> list[str]:
    rows = store.execute(
        r"SELECT name FROM sqlite_schema WHERE name LIKE 'next\_%' ESCAPE '\' OR name LIKE 'retired\_%' ESCAPE '\'"
    ).fetchall()
    return [r[0] for r in rows] + [f"{shadow.steps_left(store)} steps"] * bool(shadow.steps_left(store))


def vocabulary(store: sqlite3.Connection) -> None:
    store.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.items_vocab USING fts5vocab(main, items_fts, instance)")


def changes(catalog_db: sqlite3.Connection) -> None:
    """A delta touching every register a transfer builds in shadow: names (the search index), new
    items and barcodes, changed, added and deleted prices."""
    write(catalog_db, "items", [Item(item=f"{n:04}", name=f"Renamed {n} fig", vat_rate=2500) for n in range(0, 40, 3)])
    write(catalog_db, "items", [Item(item=f"N{n:03}", name=f"New {n} kiwi", vat_rate=2500) for n in range(12)])
    write(catalog_db, "barcodes", [Barcode(code=f"9{n:06}", item=f"N{n:03}") for n in range(12)])
    write(catalog_db, "prices", [Price(item=f"{n:04}", price=500 + n, currency="SEK") for n in range(0, 40, 2)])
    write(
        catalog_db,
        "prices",
        [Price(item=f"N{n:03}", starts=T0, ends=T0 + HOUR, price=7, currency="SEK") for n in range(12)],
    )
    with immediate(catalog_db):
        catalog.delete_prices(catalog_db, [(f"N{n:03}", "", T0, T0 + HOUR) for n in range(0, 12, 4)])


def test_a_large_transfer_built_in_slices_goes_live_exactly_as_one_applied_at_once(
    catalog_db: sqlite3.Connection, store: sqlite3.Connection, sliced: sqlite3.Connection
) -> None:
    for c in (store, sliced):
        vocabulary(c)
    seed(catalog_db, 40)
    for step in ("snapshot", "delta", "snapshot again"):
        if step == "delta":
            changes(catalog_db)
        if step == "snapshot again":  # central restored: a snapshot replaces a live catalogue
            for c in (store, sliced):
                c.execute("UPDATE replica SET version = 999")
        version = pull_all(catalog_db, store, rows=20)
        assert pull_all(catalog_db, sliced, rows=20, direct_rows=5) == version
        assert contents(sliced) == contents(store), step
        assert leftovers(sliced) == [], step  # the swap's retired tables are drained
        sliced.execute("INSERT INTO items_fts (items_fts) VALUES ('integrity-check')")  # index matches items
    assert price(sliced, "0000002") == 502 and price(sliced, "0000001") == 101
    assert (price(sliced, "9000001", T0), price(sliced, "9000004", T0)) == (7, -1)  # N004's price was deleted
    found = replica.search(sliced, "fig", 20, "S001", "SEK", T0)
    assert sorted(f.item for f in found) == [f"{n:04}" for n in range(0, 40, 3)]
    before = {f.item for f in replica.search(sliced, "Item 3", 20, "S001", "SEK", T0)}
    assert "0003" not in before and "0031" in before  # renamed: the old name is gone
    # The search index is kept by the triggers again after the swap.
    sliced.execute("UPDATE items SET name = 'Plum' WHERE item = '0001'")
    assert [f.item for f in replica.search(sliced, "plum", 5, "S001", "SEK", T0)] == ["0001"]


def test_a_build_cut_between_slices_or_before_its_swap_leaves_the_old_version_live_and_goes_on(
    tmp_path: Path, catalog_db: sqlite3.Connection
) -> None:
    seed(catalog_db, 40)
    direct = open_store(tmp_path / "direct.db")
    store = open_store(tmp_path / "cut.db")
    old = pull_all(catalog_db, direct)
    assert pull_all(catalog_db, store) == old
    for c in (store, direct):
        vocabulary(c)
    before = contents(store)
    changes(catalog_db)
    new = pull_all(catalog_db, direct)
    chunk = read(catalog_db, CatalogPull(base=old))
    assert chunk.done and stage(store, chunk, old, direct_rows=5) is None  # complete, not yet live
    assert replica.state(store).ready == new and shadow.steps_left(store) > 3
    cut = 0
    while shadow.steps_left(store):
        assert job(store, partial(replica.apply_slice, rows=SLICE)) is None
        cut += 1
        if cut % 5 == 0:  # a kill: what the slice in flight did is rolled back, the rest was committed
            store.execute("BEGIN IMMEDIATE")
            replica.apply_slice(store, rows=SLICE)
            store.close()
            store = open_store(tmp_path / "cut.db")
            vocabulary(store)
            assert contents(store)[:-1] == before[:-1] and replica.state(store).version == old
            assert replica.state(store).ready == new
            assert price(store, "0000002") == 102  # the old version still sells
    store.close()  # cut after the last slice, before the swap
    store = open_store(tmp_path / "cut.db")
    vocabulary(store)
    assert contents(store)[:-1] == before[:-1] and replica.state(store).ready == new
    assert job(store, partial(replica.apply_slice, rows=SLICE)) == new  # the swap
    assert contents(store) == contents(direct)
    assert price(store, "0000002") == 502
    assert leftovers(store) != []  # the old tables, retired: drained a slice at a time, cut or not
    assert not job(store, partial(replica.drain_slice, rows=SLICE))
    store.close()
    store = open_store(tmp_path / "cut.db")
    while not job(store, partial(replica.drain_slice, rows=SLICE)):
        pass
    assert leftovers(store) == []
    vocabulary(store)
    assert contents(store) == contents(direct)
    store.close()
    direct.close()


def test_a_transfer_forgotten_while_being_built_leaves_nothing_behind(
    catalog_db: sqlite3.Connection, store: sqlite3.Connection
) -> None:
    seed(catalog_db, 30)
    chunk = read(catalog_db, CatalogPull(base=0))
    assert stage(store, chunk, 0, direct_rows=5) is None and replica.state(store).ready == chunk.version
    assert job(store, partial(replica.apply_slice, rows=SLICE)) is None
    with pytest.raises(replica.ReplicaGap, match="going live"):  # no other transfer meanwhile
        stage(store, chunk, 0)
    job(store, replica.forget_transfer)
    assert replica.state(store) == replica.ReplicaState(0, None, b"", "", None)
    while not job(store, partial(replica.drain_slice, rows=SLICE)):
        pass
    assert leftovers(store) == [] and price(store, "7310000000010") == 1590  # the seed sells on
