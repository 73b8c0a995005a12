"""The chain's master registers at central: VAT rates, item groups, stores, items, barcodes, prices,
tills, till configuration, operators and discount reasons.

Central owns these; every store sells from a copy (central/distribute.py sends it). Two rules shape
the storage:
- every committed change bumps one catalogue version and stamps each row it changed with it, so a
  store is sent exactly what changed after the version it holds;
- writing a row identical to the stored one is not a change, so re-sending the same data (importing
  an export) changes nothing and bumps nothing: a version always means new data.

Prices can be deleted (`delete_prices`): each leaves a tombstone with the deleting version, which
distribution sends like a row. Nothing else is deleted yet: an item is retired with `active = false`
and a barcode moves to another item by being imported for it.

SQL stays in this module and portable (ON CONFLICT upserts, LIKE, CASE; no SQLite-only functions),
for a central that may later run on PostgreSQL. Sorting for export happens in Python, so the order
does not depend on a database's collation.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from protocol import pins, pricing
from protocol.gs1 import Gs1Config, check_digit, valid
from protocol.pricing import PriceRule

# An identifier: an item number, a store id, a group code. No whitespace, so it survives being
# typed at a till, pasted into a spreadsheet and compared as a key.
Key = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^\S+$")]
Name = Annotated[str, Meta(min_length=1, max_length=80)]
# One receipt line is 42 characters on 80 mm paper; the amount and its spacing need the rest.
ReceiptText = Annotated[str, Meta(max_length=30)]
Text = Annotated[str, Meta(max_length=2000)]
BasisPoints = Annotated[int, Meta(ge=0, le=10_000)]  # 2500 = 25 %
Code = Annotated[str, Meta(min_length=1, max_length=64)]  # a barcode; its digits are checked by barcode_problem
Minor = Annotated[int, Meta(ge=0)]  # money in minor units of the price's currency
Millis = Annotated[int, Meta(ge=0)]  # epoch milliseconds


class VatRate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    code: Key
    rate: BasisPoints


class Group(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    item_group: Key
    name: Name
    parent: Key | None = None  # None: a top-level group


class Store(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    store: Key
    name: Name


class Item(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    item: Key
    name: Name
    receipt_text: ReceiptText = ""  # empty: the receipt prints the name
    item_group: Key | None = None
    vat_rate: BasisPoints
    unit: Literal["piece", "kg"] = "piece"
    info: Text = ""
    warranty: Text = ""
    popup: Text = ""  # shown to the cashier when the item is scanned ("check age")
    active: bool = True


class Barcode(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    code: Code
    item: Key


class Price(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    item: Key
    store: str = ""  # "": the chain price; otherwise the store it is for
    starts: Millis = 0
    ends: Millis = 0  # 0: a standing price; otherwise a campaign valid in [starts, ends)
    price: Minor
    currency: str


LaneNumber = Annotated[int, Meta(ge=1, le=999)]
StoreOrChain = Annotated[str, Meta(max_length=64, pattern=r"^\S*$")]  # "": the whole chain
RECEIPT_WIDTH = 42  # characters on an 80 mm receipt line
QUICK_LABEL = 16  # characters on a quick key


class Till(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    store: Key
    till: Key
    name: Name
    lane: LaneNumber  # the lane the till sells on


class TillConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """How a store's tills look. The chain's row (store "") applies where a store has none of its own.
    Texts hold one receipt line per line; quick keys are "label=barcode", one per line, in key order."""

    store: StoreOrChain = ""
    receipt_header: Text = ""
    receipt_footer: Text = ""
    quick_keys: Text = ""


ALL_STORES = pins.ALL_STORES


class Operator(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """An operator as central stores it: never the PIN, only its slow hash (protocol.pins), which is sent
    only to the stores the operator works at and never exported. `stores` is "*" (every store of the
    chain) or store ids joined by commas, sorted."""

    number: Key
    name: Name
    role: Literal["cashier", "supervisor", "manager"] = "cashier"
    stores: str
    pin_hash: str


class DiscountReason(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Why a cashier gives a manual discount or sets a price by hand (issue 14): the code is what the till
    types and the journal keeps with each discount; a reason no longer used is retired (`active` false),
    never deleted, so the codes of old receipts still have their meaning."""

    code: Key
    name: Name
    active: bool = True


class PriceKey(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A deleted price: its key, as its tombstone keeps it for distribution."""

    item: Key
    store: str = ""
    starts: Millis = 0
    ends: Millis = 0


@dataclass(frozen=True)
class Register:
    """One register's table: its row type names the columns, `key` the ones that identify a row."""

    kind: str  # the name operators use: `storepos central import KIND FILE`
    table: str
    row: type[msgspec.Struct]
    key: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return self.row.__struct_fields__


# In dependency order: each register refers only to registers before it.
REGISTERS: dict[str, Register] = {
    r.kind: r
    for r in (
        Register("vat-rates", "vat_rates", VatRate, ("code",)),
        Register("groups", "item_groups", Group, ("item_group",)),
        Register("stores", "stores", Store, ("store",)),
        Register("items", "items", Item, ("item",)),
        Register("barcodes", "barcodes", Barcode, ("code",)),
        Register("prices", "prices", Price, ("item", "store", "starts", "ends")),
        Register("tills", "tills", Till, ("store", "till")),
        Register("till-config", "till_configs", TillConfig, ("store",)),
        Register("discount-reasons", "discount_reasons", DiscountReason, ("code",)),
        Register("operators", "operators", Operator, ("number",)),
    )
}
# Not a register operators import: the keys of deleted prices, sent to stores like register rows.
PRICE_TOMBSTONES = Register("price-deletes", "price_tombstones", PriceKey, ("item", "store", "starts", "ends"))


@dataclass(frozen=True)
class Applied:
    """What an upsert did; `version` is the catalogue version after it (unchanged if nothing changed)."""

    inserted: int
    updated: int
    unchanged: int
    version: int

    @property
    def changed(self) -> bool:
        return bool(self.inserted or self.updated)


def version(conn: sqlite3.Connection) -> int:
    found: int = conn.execute("SELECT version FROM catalog_version WHERE id = 1").fetchone()[0]
    return found


def _next_version(conn: sqlite3.Connection) -> int:
    """Take the next catalogue version for the change the caller's transaction is making."""
    new_version = version(conn) + 1
    conn.execute("UPDATE catalog_version SET version = ? WHERE id = 1", (new_version,))
    return new_version


def epoch(conn: sqlite3.Connection) -> str:
    """The catalogue's name for the series its versions count in (see central migration 7)."""
    found: str = conn.execute("SELECT epoch FROM catalog_version WHERE id = 1").fetchone()[0]
    return found


def key_of(register: Register, row: msgspec.Struct) -> tuple[Any, ...]:
    return tuple(getattr(row, column) for column in register.key)


def _stored_values(row: msgspec.Struct) -> tuple[Any, ...]:
    """A row as the database holds it (booleans as 0/1), so stored and new rows compare equal."""
    return tuple(int(v) if isinstance(v, bool) else v for v in msgspec.structs.astuple(row))


def upsert(conn: sqlite3.Connection, register: Register, rows: Sequence[msgspec.Struct]) -> Applied:
    """Insert new rows and update changed ones under one new version; the caller owns the transaction.

    Rows equal to what is stored are skipped, so the version moves only when the data does.
    """
    columns = register.columns
    key_at = [columns.index(k) for k in register.key]
    stored: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for values in conn.execute(f"SELECT {', '.join(columns)} FROM {register.table}"):
        stored[tuple(values[i] for i in key_at)] = tuple(values)
    changes: list[tuple[Any, ...]] = []
    inserted = 0
    for row in rows:
        values = _stored_values(row)
        old = stored.get(tuple(values[i] for i in key_at))
        if old == values:
            continue
        inserted += old is None
        changes.append(values)
    if not changes:
        return Applied(0, 0, len(rows), version(conn))
    new_version = _next_version(conn)
    updates = ", ".join(f"{c} = excluded.{c}" for c in (*columns, "version") if c not in register.key)
    conn.executemany(
        f"INSERT INTO {register.table} ({', '.join(columns)}, version) VALUES ({', '.join('?' * (len(columns) + 1))}) "
        f"ON CONFLICT ({', '.join(register.key)}) DO UPDATE SET {updates}",
        [(*values, new_version) for values in changes],
    )
    if register.kind == "prices":  # a price deleted earlier and imported again is no longer deleted
        conn.executemany(
            "DELETE FROM price_tombstones WHERE item = ? AND store = ? AND starts = ? AND ends = ?",
            [tuple(values[i] for i in key_at) for values in changes],
        )
    return Applied(inserted, len(changes) - inserted, len(rows) - len(changes), new_version)


def rows(conn: sqlite3.Connection, register: Register) -> list[msgspec.Struct]:
    """Every row of a register, sorted by key: the same data always reads back in the same order."""
    columns = register.columns
    out = [
        msgspec.convert(dict(zip(columns, values, strict=True)), register.row, strict=False)
        for values in conn.execute(f"SELECT {', '.join(columns)} FROM {register.table}")
    ]
    out.sort(key=lambda row: key_of(register, row))
    return out


def delete_prices(conn: sqlite3.Connection, keys: Sequence[tuple[str, str, int, int]]) -> int:
    """Delete prices by key under one new version, leaving tombstones for distribution; returns the
    version. The caller owns the transaction and has checked that every key exists."""
    new_version = _next_version(conn)
    conn.executemany("DELETE FROM prices WHERE item = ? AND store = ? AND starts = ? AND ends = ?", keys)
    conn.executemany(
        "INSERT OR REPLACE INTO price_tombstones (item, store, starts, ends, version) VALUES (?, ?, ?, ?, ?)",
        [(*key, new_version) for key in keys],
    )
    return new_version


def existing_prices(conn: sqlite3.Connection, keys: Sequence[tuple[str, str, int, int]]) -> set[tuple[Any, ...]]:
    found = set()
    for key in keys:
        row = conn.execute(
            "SELECT item, store, starts, ends FROM prices WHERE item = ? AND store = ? AND starts = ? AND ends = ?", key
        ).fetchone()
        if row is not None:
            found.add(tuple(row))
    return found


def row_versions(conn: sqlite3.Connection, register: Register) -> dict[tuple[Any, ...], int]:
    """The version that last changed each row, by key: what distribution will send deltas from."""
    key = ", ".join(register.key)
    return {tuple(r[:-1]): r[-1] for r in conn.execute(f"SELECT {key}, version FROM {register.table}")}


def changed_after(
    conn: sqlite3.Connection,
    register: Register,
    base: int,
    after: Sequence[Any] | None,
    limit: int,
    store: str | None = None,
) -> list[tuple[Any, ...]]:
    """Rows changed after version `base`, in (version, key) order, from just after position `after`
    (a (version, *key) tuple from an earlier call) on; each row ends with its version.

    Ordering by version is what lets a transfer run while central keeps changing: a row changed
    after it was sent gets a higher version and so comes again later in the same transfer. `store`
    keeps another store's prices out of a store's copy.
    """
    columns = ", ".join((*register.columns, "version"))
    order = ("version", *register.key)
    # After a position, the row-value comparison alone (its version is already past `base`): SQLite
    # and PostgreSQL both seek the (version, key) index with it, where adding `version > ?` would make
    # SQLite scan from `base` on every call.
    params: list[object]
    if after is None:
        where, params = ["version > ?"], [base]
    else:
        where, params = [f"({', '.join(order)}) > ({', '.join('?' * len(order))})"], list(after)
    if store is not None and "store" in register.columns:
        where.append("store IN ('', ?)")
        params.append(store)
    params.append(limit)
    sql = f"SELECT {columns} FROM {register.table} WHERE {' AND '.join(where)} ORDER BY {', '.join(order)} LIMIT ?"
    return conn.execute(sql, params).fetchall()


def barcodes_known(conn: sqlite3.Connection, codes: Iterable[str]) -> set[str]:
    wanted = sorted(set(codes))
    known: set[str] = set()
    for start in range(0, len(wanted), 500):
        part = wanted[start : start + 500]
        rows = conn.execute(f"SELECT code FROM barcodes WHERE code IN ({', '.join('?' * len(part))})", part)
        known.update(code for (code,) in rows)
    return known


def vat_rates(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT code, rate FROM vat_rates").fetchall())


def vat_rates_in_use(conn: sqlite3.Connection) -> set[int]:
    return {rate for (rate,) in conn.execute("SELECT DISTINCT vat_rate FROM items")}


def group_parents(conn: sqlite3.Connection) -> dict[str, str | None]:
    return dict(conn.execute("SELECT item_group, parent FROM item_groups").fetchall())


def store_ids(conn: sqlite3.Connection) -> set[str]:
    return {store for (store,) in conn.execute("SELECT store FROM stores")}


def item_units(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT item, unit FROM items").fetchall())


def price_currencies(conn: sqlite3.Connection) -> set[str]:
    return {currency for (currency,) in conn.execute("SELECT DISTINCT currency FROM prices")}


def keys_with_prefixes(conn: sqlite3.Connection, prefixes: Iterable[str]) -> dict[str, str]:
    """Variable-measure keys (prefix + 5 digits) with these prefixes, mapped to the item they sell."""
    out: dict[str, str] = {}
    for prefix in prefixes:
        out.update(conn.execute("SELECT code, item FROM barcodes WHERE code LIKE ?", (prefix + "_____",)).fetchall())
    return out


def measured_prefixes(gs1: Gs1Config) -> set[str]:
    return {*gs1.weight_prefixes, *gs1.price_prefixes}


def barcode_problem(code: str, gs1: Gs1Config) -> str | None:
    """Why `code` cannot be a catalogue barcode, or None when it can.

    A lane looks up exactly what the scanner sends (EAN-13, EAN-8, UPC-A, check digit included) or,
    for a variable-measure label, the 7-digit key in front of the weight or price. So those are the
    only shapes worth storing; anything else would never be found and is a typing slip.
    """
    if not (code.isascii() and code.isdigit()):
        return f"{code!r} is not a barcode: digits only"
    prefixes = measured_prefixes(gs1)
    if len(code) == 7:
        if code[:2] in prefixes:
            return None
        return (
            f"{code} is 7 digits, a variable-measure key, but {code[:2]} is not a configured "
            f"weight or price prefix ({', '.join(sorted(prefixes))})"
        )
    if len(code) not in (8, 12, 13):
        return f"{code} has {len(code)} digits; EAN-8, UPC-A and EAN-13 have 8, 12 and 13"
    if not valid(code):
        return f"{code} has check digit {code[-1]}; it should be {check_digit(code[:-1])}"
    if len(code) == 13 and code[:2] in prefixes:
        return f"{code} is a variable-measure label (prefix {code[:2]}); register its key {code[:7]}"
    return None


def is_weight_key(code: str, gs1: Gs1Config) -> bool:
    return len(code) == 7 and code[:2] in gs1.weight_prefixes


def price_at(conn: sqlite3.Connection, item: str, store: str, at_ms: int) -> int | None:
    """The item's price at `store` at `at_ms` by the chain's one rule (protocol/pricing.py), or None."""
    rules = conn.execute(
        "SELECT store, starts, ends, price FROM prices WHERE item = ? AND store IN (?, '')", (item, store)
    ).fetchall()
    applied = pricing.applicable((PriceRule(*r) for r in rules), store, at_ms)
    return None if applied is None else applied.price


def operator_hashes(conn: sqlite3.Connection) -> dict[str, str]:
    """Each operator's stored PIN hash, by number: an import keeps it when the PIN given is the same."""
    return dict(conn.execute("SELECT number, pin_hash FROM operators").fetchall())


def operator_for_store(row: Sequence[Any], store: str) -> tuple[Any, ...]:
    """An operator row as a store is sent it: the PIN hash only where the operator works, "" elsewhere
    (so a store that held it drops it, and no store holds hashes it has no use for)."""
    number, name, role, stores, pin_hash = row
    return (number, name, role, stores, pin_hash if pins.works_at(stores, store) else "")
