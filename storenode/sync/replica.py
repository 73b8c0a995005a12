"""The store's local copy of the master data it sells from.

The foundation loads it from a catalogue file (the packaged demo catalogue by default); distribution
from central replaces the loading, not the lookups.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from importlib import resources
from pathlib import Path

import msgspec

from storenode.lanes.basket import Item


class CatalogError(ValueError):
    pass


class CatalogItem(msgspec.Struct, forbid_unknown_fields=True):
    item: str
    name: str
    price: int  # per piece, or per kg for unit "kg"
    vat_rate: int
    barcodes: list[str]
    unit: str = "piece"  # piece | kg (weighed at the lane's scale)


class CatalogOperator(msgspec.Struct, forbid_unknown_fields=True):
    number: str
    name: str
    pin: str


class Catalog(msgspec.Struct, forbid_unknown_fields=True):
    items: list[CatalogItem]
    operators: list[CatalogOperator] = []


def demo_catalog_path() -> Path:
    return Path(str(resources.files("storenode") / "data" / "demo_catalog.json"))


def read_catalog(path: Path) -> Catalog:
    """Parse and check a whole catalogue before anything is written, so a bad file changes nothing."""
    try:
        catalog = msgspec.json.decode(path.read_bytes(), type=Catalog)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise CatalogError(f"{path}: {exc}") from exc
    seen_items: set[str] = set()
    seen_codes: dict[str, str] = {}
    for item in catalog.items:
        if item.item in seen_items:
            raise CatalogError(f"{path}: item {item.item} appears twice")
        seen_items.add(item.item)
        if item.price < 0 or not 0 <= item.vat_rate <= 10_000:
            raise CatalogError(f"{path}: item {item.item} has a bad price or VAT rate")
        if item.unit not in ("piece", "kg"):
            raise CatalogError(f"{path}: item {item.item} has unit {item.unit!r}; piece or kg")
        for code in item.barcodes:
            if code in seen_codes:
                raise CatalogError(f"{path}: barcode {code} belongs to {seen_codes[code]} and {item.item}")
            seen_codes[code] = item.item
    return catalog


def hash_pin(pin: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, 50_000)


def prepare_operators(catalog: Catalog) -> list[tuple[str, str, bytes, bytes]]:
    """Hash the PINs (slow on purpose) before the load transaction, outside the database thread."""
    rows = []
    for op in catalog.operators:
        salt = os.urandom(16)
        rows.append((op.number, op.name, salt, hash_pin(op.pin, salt)))
    return rows


def load(conn: sqlite3.Connection, catalog: Catalog, operators: list[tuple[str, str, bytes, bytes]]) -> int:
    conn.execute("DELETE FROM barcodes")
    conn.execute("DELETE FROM items")
    conn.executemany(
        "INSERT INTO items (item, name, price, vat_rate, unit) VALUES (?,?,?,?,?)",
        [(i.item, i.name, i.price, i.vat_rate, i.unit) for i in catalog.items],
    )
    conn.executemany(
        "INSERT INTO barcodes (code, item) VALUES (?,?)",
        [(code, i.item) for i in catalog.items for code in i.barcodes],
    )
    conn.execute("DELETE FROM operators")
    conn.executemany("INSERT INTO operators (number, name, salt, pin_hash) VALUES (?,?,?,?)", operators)
    return len(catalog.items)


def lookup(conn: sqlite3.Connection, code: str) -> Item | None:
    row = conn.execute(
        "SELECT i.item, i.name, i.price, i.vat_rate, i.unit FROM barcodes b JOIN items i ON i.item = b.item "
        "WHERE b.code = ?",
        (code,),
    ).fetchone()
    return Item(*row) if row else None


def operator(conn: sqlite3.Connection, number: str) -> tuple[str, bytes, bytes] | None:
    row = conn.execute("SELECT name, salt, pin_hash FROM operators WHERE number = ?", (number,)).fetchone()
    return (row[0], row[1], row[2]) if row else None
