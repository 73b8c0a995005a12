"""Master data for tests: rows committed at central as an import commits them (on a plain connection, or
from another thread beside a running central node), and chunks read as a store pulls them."""

from __future__ import annotations

import sqlite3
from typing import Any

import trio

from central import distribute
from central.app import CentralNode
from central.registers import catalog, imports
from central.registers.catalog import REGISTERS, Barcode, Item, Price, VatRate
from protocol.frames import CatalogChunk, CatalogPull
from runtime.database import immediate


def write(catalog_db: sqlite3.Connection, kind: str, rows: list[Any]) -> int:
    """Commit rows of one register as an import does; returns the version they made."""
    with immediate(catalog_db):
        return catalog.upsert(catalog_db, REGISTERS[kind], rows).version


def seed(catalog_db: sqlite3.Connection, count: int, *, info: str = "") -> int:
    write(catalog_db, "vat-rates", [VatRate(code="A", rate=2500)])
    write(catalog_db, "items", [Item(item=f"{n:04}", name=f"Item {n}", vat_rate=2500, info=info) for n in range(count)])
    write(catalog_db, "barcodes", [Barcode(code=f"{n:07}", item=f"{n:04}") for n in range(count)])
    return write(catalog_db, "prices", [Price(item=f"{n:04}", price=100 + n, currency="SEK") for n in range(count)])


def read(catalog_db: sqlite3.Connection, pull: CatalogPull, **limits: int) -> CatalogChunk:
    catalog_db.execute("BEGIN")  # the database actor runs every job in a transaction; so do we
    try:
        return distribute.read_chunk(catalog_db, "S001", pull, **limits)
    finally:
        catalog_db.execute("COMMIT")


def central_write(central: CentralNode, kind: str, rows: list[Any]) -> int:
    """Commit rows as `storepos central import` does: another process's connection to central's file."""
    conn = imports.open_catalog(central.db.path, create=False)
    try:
        return write(conn, kind, rows)
    finally:
        conn.close()


async def commit(central: CentralNode, kind: str, rows: list[Any]) -> int:
    return await trio.to_thread.run_sync(central_write, central, kind, rows)


async def seed_central(central: CentralNode, count: int) -> int:
    await commit(central, "vat-rates", [VatRate(code="A", rate=1200)])
    items = [Item(item=f"{n:04}", name=f"Item {n}", vat_rate=1200) for n in range(count)]
    items[0] = Item(item="0000", name="Beer", vat_rate=1200, popup="Check age: 18+", info="Lager 5%")
    await commit(central, "items", items)
    await commit(central, "barcodes", [Barcode(code=f"{n:07}", item=f"{n:04}") for n in range(count)])
    prices = [Price(item=f"{n:04}", price=1000 + n, currency="SEK") for n in range(count)]
    return await commit(central, "prices", prices)
