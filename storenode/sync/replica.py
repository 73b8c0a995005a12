"""The store's local copy of central's master data: what every scan, search and price check reads.

Two sources fill it. Central's transfers (storenode/sync/catalog.py pulls them) stage rows beside the
live tables and make them live at once when complete: a small one applied in one transaction, a large
one built in shadow tables a slice at a time and swapped in by renames in one transaction (shadow.py),
so lanes never wait long behind it. Either way the replica is always exactly some version central
published, and a cut transfer, or a cut build, leaves selling on the last good one. A catalogue file
(the packaged demo catalogue by default) seeds a store that has never heard from central (version 0)
and supplies the operators while central holds none for the chain (storenode.operators: central's
register, once it has any operator, replaces the file's list).
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import msgspec

from protocol import pins, pricing, quickkeys
from protocol.frames import CatalogChunk, Found, ItemInfo
from protocol.pricing import PriceRule
from storenode.lanes.basket import Item
from storenode.sync import shadow


class CatalogError(ValueError):
    pass


class CatalogItem(msgspec.Struct, forbid_unknown_fields=True):
    item: str
    name: str
    price: int  # per piece, or per kg for unit "kg"
    vat_rate: int
    barcodes: list[str]
    unit: str = "piece"  # piece | kg (weighed at the lane's scale)
    popup: str = ""


class CatalogOperator(msgspec.Struct, forbid_unknown_fields=True):
    """An operator of a store that gets none from central: the PIN only as its slow hash (protocol.pins;
    `storepos store pin-hash` makes one). A plain `pin` is refused by name, never read."""

    number: str
    name: str
    pin_hash: str = ""
    role: str = "cashier"  # cashier | supervisor | manager
    pin: str = ""  # refused: a file of plain-text PINs is how they leaked


class CatalogDiscountReason(msgspec.Struct, forbid_unknown_fields=True):
    """A discount reason of a store that gets none from central (issue 14): the code typed at the till."""

    code: str
    name: str


class Catalog(msgspec.Struct, forbid_unknown_fields=True):
    items: list[CatalogItem]
    operators: list[CatalogOperator] = []
    discount_reasons: list[CatalogDiscountReason] = []


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
    numbers: set[str] = set()
    for op in catalog.operators:
        if op.pin:
            raise CatalogError(
                f"{path}: operator {op.number} has a plain-text pin; give pin_hash instead (storepos store pin-hash)"
            )
        if not pins.well_formed(op.pin_hash):
            raise CatalogError(f"{path}: operator {op.number} needs a pin_hash as `storepos store pin-hash` prints it")
        if op.role not in pins.ROLES:
            raise CatalogError(f"{path}: operator {op.number} has role {op.role!r}; one of {', '.join(pins.ROLES)}")
        if op.number in numbers:
            raise CatalogError(f"{path}: operator {op.number} appears twice")
        numbers.add(op.number)
    codes: set[str] = set()
    for reason in catalog.discount_reasons:
        if not re.fullmatch(r"\S{1,64}", reason.code) or not 1 <= len(reason.name) <= 80:
            raise CatalogError(f"{path}: discount reason {reason.code!r} needs a code without spaces and a name")
        if reason.code in codes:
            raise CatalogError(f"{path}: discount reason {reason.code} appears twice")
        codes.add(reason.code)
    return catalog


class ReplicaGap(ValueError):
    """A chunk that does not build on what this store holds; applying it would make up a version."""


@dataclass(frozen=True)
class ReplicaState:
    version: int  # the version the live tables hold exactly (0: only a catalogue file, or nothing)
    transfer_base: int | None  # a transfer in progress builds on this version; None: none in progress
    cursor: bytes  # where it stands, as central wrote it
    epoch: str = ""  # the central catalogue `version` counts in; "": not known (a file's seed, an old copy)
    ready: int | None = None  # a complete transfer of this version is being built to go live (apply_slice)


def state(conn: sqlite3.Connection) -> ReplicaState:
    row = conn.execute("SELECT version, transfer_base, cursor, epoch, ready FROM replica WHERE id = 1").fetchone()
    return ReplicaState(*row)


# Register tables in the order a transfer fills them, with the columns of central's registers (what a
# store holds of central's catalogue; the benchmark's floor copies exactly these).
TABLES: dict[str, tuple[str, ...]] = {
    "vat_rates": ("code", "rate"),
    "item_groups": ("item_group", "name", "parent"),
    "items": ("item", "name", "receipt_text", "item_group", "vat_rate", "unit", "info", "warranty", "popup", "active"),
    "barcodes": ("code", "item"),
    "prices": ("item", "store", "starts", "ends", "price", "currency"),
    "tills": ("store", "till", "name", "lane"),
    "till_configs": ("store", "receipt_header", "receipt_footer", "quick_keys"),
    "operators": ("number", "name", "role", "stores", "pin_hash"),
    "discount_reasons": ("code", "name", "active"),
}
_KEYS: dict[str, tuple[str, ...]] = {
    "vat_rates": ("code",),
    "item_groups": ("item_group",),
    "items": ("item",),
    "barcodes": ("code",),
    "prices": ("item", "store", "starts", "ends"),
    "tills": ("store", "till"),
    "till_configs": ("store",),
    "operators": ("number",),
    "discount_reasons": ("code",),
}
_SEARCHED = ("name", "receipt_text")  # the columns of items the search index (items_fts) holds

# A complete transfer with at most this many rows to write (those staged, and for a snapshot the live
# ones it replaces) goes live in the transaction of its last chunk: some 20 ms of SQLite on a small
# machine, as long as a lane may wait. A larger one is built beside the live tables a slice at a time
# (apply_slice) and swapped in: two to three times the work in all, so only worth it when large.
DIRECT_ROWS = 20_000
SLICE_ROWS = 3_000  # rows per slice of such a build: under 10 ms each mostly (the search index's up to 25)


def _rows_of(chunk: CatalogChunk) -> dict[str, Sequence[tuple[object, ...]]]:
    return {
        "vat_rates": chunk.vat_rates,
        "item_groups": chunk.groups,
        "items": chunk.items,
        "barcodes": chunk.barcodes,
        "prices": chunk.prices,
        "tills": chunk.tills,
        "till_configs": chunk.till_configs,
        "operators": chunk.operators,
        "discount_reasons": chunk.discount_reasons,
    }


_STAGE = (*(f"stage_{t}" for t in TABLES), "stage_price_deletes")


def _count(conn: sqlite3.Connection, table: str, limit: int) -> int:
    """Rows in `table`, counted no further than `limit` (a full count of a million rows is slow)."""
    return int(conn.execute(f"SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT ?)", (limit,)).fetchone()[0])


def _clear_stage(conn: sqlite3.Connection) -> None:
    """Empty the stage: a large stage table is swapped for an empty one (deleting its rows in one go
    would hold the database as long as staging them did) and drained later, by drain_slice."""
    for table in _STAGE:
        if _count(conn, table, DIRECT_ROWS + 1) > DIRECT_ROWS:
            shadow.renew(conn, table, shadow.new_tag())
        else:
            conn.execute(f"DELETE FROM {table}")


_PRICE_KEY = "item = ? AND store = ? AND starts = ? AND ends = ?"


def stage(conn: sqlite3.Connection, chunk: CatalogChunk, asked: int, *, direct_rows: int = DIRECT_ROWS) -> int | None:
    """Keep one chunk of a transfer; when it is the last, make the whole transfer live, or (more than
    `direct_rows` rows to write) ready to be built and swapped in by apply_slice. Returns the version
    now live when it is, else None. The caller's transaction makes each call all or nothing.

    `asked` is the base the store asked for. Central may answer 0 instead (it does not know the
    store's version, say after being restored): that is a snapshot replacing everything. Any other
    base is a gap, refused before anything changes.
    """
    now = state(conn)
    if now.ready is not None:
        raise ReplicaGap(f"version {now.ready} is complete and going live; it must be live before another transfer")
    if chunk.base not in (asked, 0) or (chunk.base and chunk.base != now.version):
        raise ReplicaGap(f"central sent changes after version {chunk.base}; this store holds version {now.version}")
    if now.transfer_base != chunk.base:  # a new transfer, or central started over: forget what was staged
        _clear_stage(conn)
        shadow.discard(conn)
    for table, rows in _rows_of(chunk).items():
        if rows:
            columns = TABLES[table]
            conn.executemany(
                f"INSERT OR REPLACE INTO stage_{table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                rows,
            )
    # Of a price and its deletion, the one later in a transfer is the newer (central sends each again
    # when it changes): a price staged after its deletion cancels it; a deletion staged after its price
    # wins at apply, where deletes go last.
    if chunk.prices:
        conn.executemany(f"DELETE FROM stage_price_deletes WHERE {_PRICE_KEY}", [p[:4] for p in chunk.prices])
    if chunk.deleted_prices:
        conn.executemany("INSERT OR REPLACE INTO stage_price_deletes VALUES (?, ?, ?, ?)", chunk.deleted_prices)
    if not chunk.done:
        conn.execute("UPDATE replica SET transfer_base = ?, cursor = ? WHERE id = 1", (chunk.base, chunk.cursor))
        return None
    if chunk.version == 0:  # central has no catalogue yet: keep what a catalogue file seeded
        forget_transfer(conn)
        return 0
    snapshot = chunk.base == 0
    work = _work(conn, snapshot, direct_rows + 1)
    if sum(work.values()) > direct_rows:
        _plan(conn, snapshot, [t for t, rows in work.items() if rows > direct_rows // 8])
        conn.execute(
            "UPDATE replica SET transfer_base = ?, cursor = ?, ready = ?, ready_epoch = ? WHERE id = 1",
            (chunk.base, chunk.cursor, chunk.version, chunk.epoch),
        )
        return None
    _apply(conn, snapshot, list(TABLES))
    _live(conn, chunk.version, chunk.epoch)
    return chunk.version


def _work(conn: sqlite3.Connection, snapshot: bool, limit: int) -> dict[str, int]:
    """Rows each table's change writes (each counted no further than `limit`)."""
    work = {table: _count(conn, f"stage_{table}", limit) for table in TABLES}
    work["prices"] += _count(conn, "stage_price_deletes", limit)
    if snapshot:  # what the snapshot does not hold is deleted
        for table in TABLES:
            work[table] += _count(conn, table, limit)
    return work


def _plan(conn: sqlite3.Connection, snapshot: bool, large: list[str]) -> None:
    """Shadow tables for the large tables' new content and the slices that fill them: a snapshot's
    rows as staged; otherwise the live rows with the staged ones over them. The search index is built
    on the shadow items. The small tables change in the swap itself."""
    tag = shadow.new_tag()
    for table in large:
        target = shadow.create_shadow(conn, table, tag)
        columns, keys = TABLES[table], _KEYS[table]
        if snapshot:
            shadow.plan(conn, shadow.COPY, target, f"stage_{table}", columns, keys)
        else:
            shadow.plan(conn, shadow.COPY, target, table, columns, keys)
            shadow.plan(conn, shadow.UPSERT, target, f"stage_{table}", columns, keys)
        if table == "prices":
            shadow.plan(conn, shadow.DELETE, target, "stage_price_deletes", keys, keys)
        if table == "items":
            index = shadow.create_shadow(conn, "items_fts", tag)
            shadow.plan(conn, shadow.COPY, index, target, ("rowid", *_SEARCHED), ("rowid",))


def _apply(conn: sqlite3.Connection, snapshot: bool, tables: list[str]) -> None:
    """The staged rows of `tables` into the live tables, in this transaction."""
    if snapshot:  # a snapshot: what it does not hold is gone (a catalogue file's seed, say)
        for table in tables:
            conn.execute(f"DELETE FROM {table}")
    for table in tables:
        columns = TABLES[table]
        names = ", ".join(columns)
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in _KEYS[table])
        # An upsert, not INSERT OR REPLACE: a replaced row would not fire the search index's triggers.
        conn.execute(
            f"INSERT INTO {table} ({names}) SELECT {names} FROM stage_{table} WHERE true "
            f"ON CONFLICT ({', '.join(_KEYS[table])}) DO UPDATE SET {updates}"
        )
    if "prices" in tables:
        conn.execute(
            "DELETE FROM prices WHERE (item, store, starts, ends) IN "
            "(SELECT item, store, starts, ends FROM stage_price_deletes)"
        )


def _live(conn: sqlite3.Connection, version: int, epoch: str) -> None:
    _clear_stage(conn)
    conn.execute(
        "UPDATE replica SET version = ?, transfer_base = NULL, cursor = x'', epoch = ?, ready = NULL, "
        "ready_epoch = '' WHERE id = 1",
        (version, epoch),
    )


def apply_slice(conn: sqlite3.Connection, rows: int = SLICE_ROWS) -> int | None:
    """One slice of building a complete transfer's tables, or, once all are built, the swap that
    makes them live. Returns the version live once it is (at once when nothing is being built), else
    None. Each call is its own short job: a kill between two leaves the old version live and the
    build going on from the last slice; the swap is renames in one transaction."""
    now = state(conn)
    if now.ready is None:
        return now.version
    if shadow.step(conn, rows):
        return None
    built = [t for t in TABLES if shadow.exists(conn, shadow.SHADOW + t)]
    _apply(conn, now.transfer_base == 0, [t for t in TABLES if t not in built])
    tag = shadow.new_tag()
    triggers: list[tuple[str, str]] = []
    if "items" in built:  # its search index goes with it; the triggers that keep it are moved over
        built.append("items_fts")
        triggers = conn.execute(
            "SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = 'items'"
        ).fetchall()
        for name, _ in triggers:
            conn.execute(f"DROP TRIGGER {name}")
    for table in built:
        shadow.retire(conn, table, tag)
        conn.execute(f"ALTER TABLE {shadow.SHADOW}{table} RENAME TO {table}")
    for _, sql in triggers:
        conn.execute(sql)
    # The stage is emptied by drain_slice, not here: swapping each full stage table for an empty one
    # would cost the swap as much again. Until then it is kept from use by the transfer's end here.
    conn.execute(
        "UPDATE replica SET version = ready, epoch = ready_epoch, transfer_base = NULL, cursor = x'', "
        "ready = NULL, ready_epoch = '' WHERE id = 1"
    )
    return now.ready


def drain_slice(conn: sqlite3.Connection, rows: int = SLICE_ROWS) -> bool:
    """Empty the stage of a transfer made live by a swap, then delete a slice of what was retired;
    True when nothing is left."""
    now = state(conn)
    idle = now.transfer_base is None and now.ready is None
    if idle and any(conn.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone() for t in _STAGE):
        _clear_stage(conn)
        return False
    return shadow.drain(conn, rows)


def forget_transfer(conn: sqlite3.Connection) -> None:
    """Drop a transfer in progress (central no longer recognises its position); the live tables stay."""
    _clear_stage(conn)
    shadow.discard(conn)
    conn.execute("UPDATE replica SET transfer_base = NULL, cursor = x'', ready = NULL, ready_epoch = '' WHERE id = 1")


def load(conn: sqlite3.Connection, catalog: Catalog, currency: str) -> int | None:
    """Load the file's operators, and the items too unless central's data is already here: returns how
    many items were loaded, or None when the replica holds a version from central (which always wins)."""
    conn.execute("DELETE FROM file_operators")
    conn.executemany(
        "INSERT INTO file_operators (number, name, role, pin_hash) VALUES (?, ?, ?, ?)",
        [(op.number, op.name, op.role, op.pin_hash) for op in catalog.operators],
    )
    conn.execute("DELETE FROM file_discount_reasons")
    conn.executemany(
        "INSERT INTO file_discount_reasons (code, name) VALUES (?, ?)",
        [(r.code, r.name) for r in catalog.discount_reasons],
    )
    if state(conn).version:
        return None
    for table in ("barcodes", "prices", "items"):
        conn.execute(f"DELETE FROM {table}")
    conn.executemany(
        "INSERT INTO items (item, name, receipt_text, item_group, vat_rate, unit, info, warranty, popup, active) "
        "VALUES (?, ?, '', NULL, ?, ?, '', '', ?, 1)",
        [(i.item, i.name, i.vat_rate, i.unit, i.popup) for i in catalog.items],
    )
    conn.executemany(
        "INSERT INTO prices (item, store, starts, ends, price, currency) VALUES (?, '', 0, 0, ?, ?)",
        [(i.item, i.price, currency) for i in catalog.items],
    )
    conn.executemany(
        "INSERT INTO barcodes (code, item) VALUES (?,?)",
        [(code, i.item) for i in catalog.items for code in i.barcodes],
    )
    return len(catalog.items)


def _price(conn: sqlite3.Connection, item: str, store: str, currency: str, at_ms: int) -> pricing.Applied | None:
    rules = conn.execute(
        "SELECT store, starts, ends, price FROM prices WHERE item = ? AND store IN ('', ?) AND currency = ?",
        (item, store, currency),
    ).fetchall()
    return pricing.applicable((PriceRule(*r) for r in rules), store, at_ms)


# One statement for the item and all its price rules here: every statement is a hand-over of the GIL
# between the lanes' thread and the database's, which costs more per scan than the SQL itself.
_LOOKUP = (
    "SELECT i.item, i.name, i.vat_rate, i.unit, i.popup, i.active, p.store, p.starts, p.ends, p.price "
    "FROM barcodes b JOIN items i ON i.item = b.item "
    "LEFT JOIN prices p ON p.item = i.item AND p.store IN ('', ?) AND p.currency = ? "
    "WHERE b.code = ?"
)


def lookup(conn: sqlite3.Connection, code: str, store: str, currency: str, at_ms: int) -> Item | None:
    """The item a barcode sells, priced for this store at this moment (price -1: none applies)."""
    rows = conn.execute(_LOOKUP, (store, currency, code)).fetchall()
    if not rows:
        return None
    item, name, vat_rate, unit, popup, active = rows[0][:6]
    rules = (PriceRule(*r[6:]) for r in rows if r[6] is not None)
    applied = pricing.applicable(rules, store, at_ms)
    return Item(item, name, -1 if applied is None else applied.price, vat_rate, unit, popup, bool(active))


def item_info(conn: sqlite3.Connection, code: str, store: str, currency: str, at_ms: int) -> ItemInfo | None:
    row = conn.execute(
        "SELECT i.item, i.name, i.unit, i.vat_rate, i.popup, i.info, i.warranty "
        "FROM barcodes b JOIN items i ON i.item = b.item WHERE b.code = ?",
        (code,),
    ).fetchone()
    if row is None:
        return None
    item, name, unit, vat_rate, popup, info, warranty = row
    applied = _price(conn, item, store, currency, at_ms)
    return ItemInfo(
        item=item,
        name=name,
        code=code,
        price=-1 if applied is None else applied.price,
        currency=currency,
        unit=unit,
        vat_rate=vat_rate,
        campaign_ends=0 if applied is None else applied.ends,
        popup=popup,
        info=info,
        warranty=warranty,
    )


SEARCH_CHARS = 100  # what a cashier types into a search box, with room to spare
SEARCH_WORDS = 6  # every word is one more FTS5 prefix scan joined to the others: cost grows fast
SEARCH_BUDGET = 0.25  # seconds of database time one search may take; then it is stopped, not left to run
SEARCH_STEPS = 1_000  # SQLite VM steps between looks at the clock (a look costs about a microsecond)


class SearchRefused(ValueError):
    """A search that is too long, or too broad to answer within its budget; the text says which."""


def _match(text: str) -> str:
    """Every word of the cashier's text as a quoted prefix: nothing typed is read as FTS5 syntax.
    Bounded first: 20,000 words once stalled every lane for seconds and 300,000 pinned the database
    thread for minutes, because each word is another prefix scan the query joins."""
    if len(text) > SEARCH_CHARS:
        raise SearchRefused(f"a search has at most {SEARCH_CHARS} characters, not {len(text)}")
    words = list(dict.fromkeys(w.lower() for w in re.findall(r"\w+", text)))
    if len(words) > SEARCH_WORDS:
        raise SearchRefused(f"a search has at most {SEARCH_WORDS} words, not {len(words)}")
    return " ".join(f'"{word}"*' for word in words)


def search(
    conn: sqlite3.Connection,
    text: str,
    limit: int,
    store: str,
    currency: str,
    at_ms: int,
    *,
    budget: float = SEARCH_BUDGET,
) -> list[Found]:
    """Sellable items whose name or receipt text has every word of `text` as a word prefix, best first.

    The query runs under SQLite's progress handler, which stops it once `budget` seconds have passed
    (a single prefix like "a" on a million items can take that long): the database thread is free again
    at once, which a timeout around the job could not do."""
    match = _match(text)
    if not match:
        return []
    deadline = time.monotonic() + budget
    conn.set_progress_handler(lambda: time.monotonic() > deadline, SEARCH_STEPS)
    try:
        rows = conn.execute(
            # A full barcode before a 7-digit variable-measure key: what a cashier can type or scan as is.
            "SELECT i.item, i.name, i.unit, "
            "(SELECT code FROM barcodes b WHERE b.item = i.item ORDER BY length(code) = 7, code LIMIT 1) "
            "FROM items_fts f JOIN items i ON i.rowid = f.rowid WHERE items_fts MATCH ? AND i.active "
            "ORDER BY f.rank, i.name LIMIT ?",
            (match, limit),
        ).fetchall()
    except sqlite3.OperationalError as exc:
        if "interrupted" not in str(exc):
            raise
        raise SearchRefused(f"the search {text!r} matches too much to answer in time; type more of the name") from None
    finally:
        conn.set_progress_handler(None, 0)
    found = []
    for item, name, unit, code in rows:
        applied = _price(conn, item, store, currency, at_ms)
        price = -1 if applied is None else applied.price
        found.append(Found(item=item, name=name, code=code or "", price=price, unit=unit))
    return found


@dataclass(frozen=True)
class TillLook:
    """What central's till configuration says about this store's receipts and keys."""

    header: list[str]
    footer: list[str]
    quick_keys: list[tuple[str, str]]  # (label, barcode) in key order


def till_look(conn: sqlite3.Connection, store: str) -> TillLook | None:
    """The store's own till configuration, else the chain's, else None (store.toml's texts stand)."""
    row = conn.execute(
        "SELECT receipt_header, receipt_footer, quick_keys FROM till_configs WHERE store IN ('', ?) "
        "ORDER BY store DESC LIMIT 1",
        (store,),
    ).fetchone()
    if row is None:
        return None
    header, footer, keys = row
    return TillLook(header.splitlines(), footer.splitlines(), quickkeys.parse(keys))


def discount_reasons(conn: sqlite3.Connection) -> dict[str, str]:
    """The discount reasons a cashier may give (code -> name): central's active ones once central has
    sent any, else the catalogue file's (as for operators: the two lists are never mixed, so a reason
    retired at central cannot be given through the file)."""
    if conn.execute("SELECT 1 FROM discount_reasons LIMIT 1").fetchone() is not None:
        return dict(conn.execute("SELECT code, name FROM discount_reasons WHERE active = 1").fetchall())
    return dict(conn.execute("SELECT code, name FROM file_discount_reasons").fetchall())
