"""Transfers of master data as central reads them: complete, resumable, consistent while central keeps
changing, and only this store's prices."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import msgspec
import pytest

from central import distribute
from central.registers import catalog
from central.registers.catalog import REGISTERS, Item, Price, VatRate
from central.schema import MIGRATIONS
from protocol.frames import CatalogChunk, CatalogPull
from runtime.database import migrate, open_connection
from tests.kit.catalog import read, seed, write

FIELDS = ("vat_rates", "groups", "items", "barcodes", "prices")


def transfer(
    catalog_db: sqlite3.Connection, base: int, *, cursor: bytes = b"", **limits: int
) -> tuple[list[CatalogChunk], dict[str, dict[Any, tuple[Any, ...]]]]:
    """Pull a whole transfer (the rest of one, from `cursor`); returns the chunks and the rows a store
    would have staged (last wins)."""
    chunks: list[CatalogChunk] = []
    staged: dict[str, dict[Any, tuple[Any, ...]]] = {name: {} for name in FIELDS}
    while True:
        chunk = read(catalog_db, CatalogPull(base=base, cursor=cursor), **limits)
        chunks.append(chunk)
        for name in FIELDS:
            for row in getattr(chunk, name):
                staged[name][row[:4] if name == "prices" else row[0]] = tuple(row)
        if chunk.done:
            return chunks, staged
        cursor = chunk.cursor
        assert len(chunks) < 1000, "a transfer that does not end"


def registers(catalog_db: sqlite3.Connection, store: str = "S001") -> dict[str, dict[Any, tuple[Any, ...]]]:
    """What a store's copy should hold: every register row (this store's and chain prices only)."""
    out: dict[str, dict[Any, tuple[Any, ...]]] = {}
    for name, kind in zip(FIELDS, ("vat-rates", "groups", "items", "barcodes", "prices"), strict=True):
        rows = [tuple(msgspec.structs.astuple(r)) for r in catalog.rows(catalog_db, REGISTERS[kind])]
        rows = [tuple(int(v) if isinstance(v, bool) else v for v in r) for r in rows]
        if name == "prices":
            out[name] = {r[:4]: r for r in rows if r[1] in ("", store)}
        else:
            out[name] = {r[0]: r for r in rows}
    return out


def test_a_snapshot_comes_in_chunks_and_holds_every_row(catalog_db: sqlite3.Connection) -> None:
    version = seed(catalog_db, 40)
    chunks, staged = transfer(catalog_db, 0, rows=7)
    assert len(chunks) > 10
    assert all(sum(len(getattr(c, f)) for f in FIELDS) <= 7 for c in chunks)
    assert [c.done for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert chunks[-1].version == version
    assert staged == registers(catalog_db)


def test_a_delta_holds_only_what_changed_after_the_base(catalog_db: sqlite3.Connection) -> None:
    before = seed(catalog_db, 20)
    after = write(catalog_db, "prices", [Price(item="0003", price=999, currency="SEK")])
    chunks, staged = transfer(catalog_db, before)
    assert len(chunks) == 1 and chunks[0].base == before and chunks[0].version == after
    assert staged["prices"] == {("0003", "", 0, 0): ("0003", "", 0, 0, 999, "SEK")}
    assert not any(staged[f] for f in FIELDS if f != "prices")
    # Up to date: an empty, finished transfer naming the same version.
    chunks, staged = transfer(catalog_db, after)
    assert chunks[0].done and chunks[0].version == after and not any(staged.values())


def test_rows_changed_while_a_transfer_runs_come_again_before_it_ends(catalog_db: sqlite3.Connection) -> None:
    seed(catalog_db, 30)
    first = read(catalog_db, CatalogPull(base=0), rows=10)
    assert not first.done and first.vat_rates and first.items  # item 0000 has been sent
    # Central changes a row the store already has, and one of a register the transfer finished.
    write(catalog_db, "items", [Item(item="0000", name="Renamed", vat_rate=2500)])
    newest = write(catalog_db, "vat-rates", [VatRate(code="A", rate=2400)])
    rest, _ = transfer(catalog_db, 0, cursor=first.cursor, rows=10)
    chunks = [first, *rest]
    names = {row[0]: row[1] for chunk in chunks for row in chunk.items}
    rates = [row for chunk in chunks[1:] for row in chunk.vat_rates]
    assert names["0000"] == "Renamed" and rates == [("A", 2400)]
    assert chunks[-1].version == newest


def test_a_store_gets_chain_prices_and_its_own_never_another_stores(catalog_db: sqlite3.Connection) -> None:
    seed(catalog_db, 2)
    write(
        catalog_db,
        "prices",
        [
            Price(item="0001", store="S001", price=50, currency="SEK"),
            Price(item="0001", store="S002", price=60, currency="SEK"),
        ],
    )
    _, staged = transfer(catalog_db, 0)
    assert {key[1] for key in staged["prices"]} == {"", "S001"}


def test_a_version_central_does_not_know_starts_a_snapshot(catalog_db: sqlite3.Connection) -> None:
    version = seed(catalog_db, 3)
    chunk = read(catalog_db, CatalogPull(base=version + 5, cursor=b"\x80"))
    assert chunk.base == 0 and chunk.done and len(chunk.items) == 3


@pytest.mark.parametrize(
    "cursor",
    [b"\xc1", msgspec.msgpack.encode({"items": [1]}), msgspec.msgpack.encode({"stores": [1, "S1"]}), b"\x01"],
)
def test_a_position_central_did_not_write_is_refused_by_name(catalog_db: sqlite3.Connection, cursor: bytes) -> None:
    seed(catalog_db, 3)
    with pytest.raises(distribute.BadPull, match="position"):
        read(catalog_db, CatalogPull(base=0, cursor=cursor))


def test_chunks_stay_under_the_byte_budget_and_a_huge_row_still_moves(catalog_db: sqlite3.Connection) -> None:
    seed(catalog_db, 10, info="x" * 1500)
    chunks, staged = transfer(catalog_db, 0, size=4000)
    for chunk in chunks:
        sizes = [distribute._size(row) for f in FIELDS for row in getattr(chunk, f)]
        assert sum(sizes) <= 4000 or len(sizes) == 1
    assert staged == registers(catalog_db)
    chunks, staged = transfer(catalog_db, 0, size=100)  # every item is bigger than the budget: one per chunk
    assert all(len(c.items) <= 1 for c in chunks)
    assert staged == registers(catalog_db)


def test_a_position_from_another_catalogue_is_refused(catalog_db: sqlite3.Connection, tmp_path: Path) -> None:
    seed(catalog_db, 20)
    first = read(catalog_db, CatalogPull(base=0), rows=5)
    other = open_connection(tmp_path / "other.db")
    try:
        migrate(other, MIGRATIONS)
        seed(other, 20)
        with pytest.raises(distribute.BadPull, match="another catalogue"):
            read(other, CatalogPull(base=0, cursor=first.cursor))
    finally:
        other.close()
