"""Operator import and export of the master registers: CSV or JSON files, applied whole or not at all.

A file is checked completely before anything is written, and one bad row rejects all of it: the
operator gets every problem in one run, by line and column, instead of fixing them one at a time,
and central never holds half a price list.

Files (the format follows the extension, .csv or .json)
- CSV: UTF-8 (a leading BOM is allowed), comma-separated, a header row naming the columns in any
  order. Problems read "items.csv line 7, column vat_rate: ...", lines counted from 1 with the header
  as line 1; a quoted cell spanning lines is reported at the line its row starts on. Blank lines are
  skipped.
- JSON: one list of objects. Problems read "items.json record 7, field vat_rate: ...", where 7 is
  the object's index in the list, counted from 0 (what `jq '.[7]'` shows).
- An empty cell, an empty string and null all mean "not given": a required column reports it, an
  optional one takes its default.
- Money is decimal text in the chain currency, `--currency` (default SEK): "12.50" ("12,5" reads
  too). Never a JSON number: a float is not money.
- Times are epoch milliseconds or ISO 8601 with a UTC offset ("2026-11-17T00:00:00+01:00", "...Z").
  A time without an offset is refused: stores may sit in different time zones.

Registers and columns (* required; the key columns come first)
  vat-rates  code*, rate* (basis points: 2500 = 25 %)
  groups     item_group*, name*, parent (an item group)
  stores     store*, name*
  items      item*, name*, receipt_text (at most 30 characters), item_group, vat_rate* (basis
             points), unit (piece | kg, default piece), info, warranty, popup (shown to the cashier
             at scan), active (true | false, default true)
  barcodes   code*, item*
  prices     item*, store (empty: the chain price), start, end (both: a campaign valid from start
             up to, not including, end; neither: a standing price), price*
  tills      store*, till*, name*, lane* (1-999)
  till-config  store (empty: the chain's default), receipt_header, receipt_footer (one receipt line
             per line, at most 42 characters each), quick_keys ("label=barcode" per line, in key
             order; labels at most 16 characters, barcodes known to central)
  discount-reasons  code*, name*, active (true | false, default true): why a cashier gives a manual
             discount or sets a price by hand (a code without whitespace, typed at the till and
             journaled with each discount); a reason is retired with active false, never deleted
  operators  number*, name*, role (cashier | supervisor | manager, default cashier), stores* ("*":
             every store; else store ids separated by commas or spaces), pin (required for a new
             operator; left out, an operator keeps the PIN they have). A PIN is 4 to 12 digits, not
             one digit repeated, written as text ("0042" in JSON quotes). Central keeps only its slow
             hash (protocol.pins: scrypt, a salt per operator); no error message repeats a PIN, and
             export writes number, name, role and stores only, never the PIN or its hash.
Import them in that order: each refers only to registers above it.

`storepos central delete prices FILE` deletes the prices a file names by item, store, start and end
(a price column may be there and is ignored), all or none: a row naming a price central does not
have rejects the file. Stores drop them with the next catalogue version; importing a price again
brings it back.

Rules; each breach is one error, and every error is reported
- no unknown columns (CSV: on line 1; JSON: per record) and no missing required ones;
- no key twice in one file (the later row is reported, naming the earlier one); price keys compare
  as instants, so "...T00:00:00Z" and its epoch milliseconds are the same start;
- barcodes are EAN-13, EAN-8 or UPC-A with a valid check digit, or a GS1 variable-measure key: a
  configured weight or price prefix (protocol.gs1.Gs1Config; central uses the default Nordic layout)
  and 5 digits, 7 in all, no check digit. A full 13-digit code with such a prefix is refused: lanes
  read it as a label and look up its key, so it would never be found;
- references must exist at central when the import runs: an item's VAT rate (one of the configured
  rates' basis points) and item group, a group's parent (or in the same file; no loops), a barcode's
  item, a price's item and store;
- a weight key's item is sold by kg: refused both as a barcode for a piece item and as an item
  changed to piece while a weight key points at it;
- a VAT code's rate may change only if no item is left at a rate no code has;
- a price is not negative; a campaign's start is before its end. Campaigns may overlap (delete one
  entered by mistake with `storepos central delete prices`); catalog.price_at says which applies;
- all prices are in one chain currency: a `--currency` other than that of the stored prices is a
  usage error (exit 2), not a row error;
- content that cannot be read at all (not UTF-8, not JSON, broken CSV quoting, JSON that is not a
  list) rejects the file with that one error, since nothing after it can be located reliably.

Applying: within one BEGIN IMMEDIATE transaction (central may be running; WAL lets it read on, and
the busy timeout lets its group commits and this import take turns), check the references, then
upsert by key (see catalog.REGISTERS). Rows not in the file are left alone (nothing is deleted in
this slice; an item is retired with active = false); rows equal to the stored ones are not changes.
If anything changed, the catalogue version goes up by exactly one, whatever the number of rows.

Text is made plain on the way in (protocol.text: control and format characters dropped, tabs and
line breaks as spaces except in the multi-line till-config columns): a name is later printed, shown on
customer displays and terminals, and must never carry a device's commands.

Export writes every row sorted by key (code point order, independent of database collation), every
column in the order above, money as decimal text and times as ISO 8601 UTC ("Z", milliseconds only
when not zero), so the same data gives the same bytes and importing an export changes nothing. A CSV
cell that a spreadsheet would run as a formula (leading =, +, -, @) is written with a leading
apostrophe, which import takes off again. The file is replaced whole and never written through a
symlink (runtime.files.replace_file).
"""

from __future__ import annotations

import csv
import functools
import io
import os
import re
import sqlite3
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from central.registers import catalog
from central.schema import MIGRATIONS
from protocol import pins, quickkeys
from protocol.gs1 import Gs1Config
from protocol.money import MoneyError, format_money, parse_money
from protocol.text import from_spreadsheet_safe, plain, plain_lines, spreadsheet_safe
from runtime.database import DatabaseError, immediate, migrate, open_connection
from runtime.files import replace_file

# Central's own writes hold the lock for a group commit at a time; an operator can wait that long.
BUSY_TIMEOUT_MS = 30_000
FILE_FORMATS = (".csv", ".json")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LAST_INSTANT = (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC) - EPOCH) // timedelta(milliseconds=1)
_MILLIS = re.compile(r"[0-9]+")
_CURRENCY = re.compile(r"[A-Z]{3}")
_BOUND = re.compile(r"Expected int (>=|<=) (-?\d+)")


class Rejected(Exception):
    """The file breaks the rules and nothing was applied; `errors` lists every breach in file order."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(f"{len(errors)} errors")
        self.errors = errors


class Unusable(Exception):
    """The command cannot run at all: an unreadable file, an unknown format, the wrong currency."""


@dataclass(slots=True)
class Record:
    """One row of a file: as read, where it came from, and the fields that passed their checks.

    Later checks (references, duplicates) look at every field that passed, even in a row with other
    bad fields, so that one run reports every problem in the file.
    """

    position: int  # order in the file (the header is 0), for reporting in file order
    file: str
    label: str  # "line 7" or "record 7"
    noun: str  # "column" or "field"
    values: dict[str, Any]
    good: dict[str, Any] = field(default_factory=dict)  # valid fields, as the register stores them
    failed: set[str] = field(default_factory=set)  # fields reported bad or missing


@dataclass(order=True, frozen=True)
class _Problem:
    position: int
    column: int
    text: str


@dataclass
class Problems:
    """Every breach found, reported in file order: by row, then by column."""

    columns: tuple[str, ...]
    found: list[_Problem] = field(default_factory=list)

    def at(self, record: Record, column: str | None, message: str) -> None:
        where = f"{record.file} {record.label}"
        text = f"{where}, {record.noun} {column}: {message}" if column else f"{where}: {message}"
        order = self.columns.index(column) if column in self.columns else len(self.columns)
        self.found.append(_Problem(record.position, order, text))

    def texts(self) -> list[str]:
        return [p.text for p in sorted(self.found)]


class PriceRow(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A price as a file holds it: decimal money in the chain currency, times as text or epoch ms."""

    item: catalog.Key
    store: catalog.Key | None = None  # None: the chain price
    start: int | str | None = None
    end: int | str | None = None
    price: str


class PriceKeyRow(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A price to delete, as a file names it: the price's key columns. A price column may be there
    (a cut-down export works as is); it is checked as money and otherwise ignored."""

    item: catalog.Key
    store: catalog.Key | None = None
    start: int | str | None = None
    end: int | str | None = None
    price: str | None = None


Check = Callable[[sqlite3.Connection, list[Record], Problems, Gs1Config], None]


@dataclass(frozen=True)
class Format:
    """How one register's rows look in a file and what must hold before they are applied."""

    register: catalog.Register
    row: type[msgspec.Struct]  # a row as the file holds it
    check: Check  # against central's registers, under the write lock
    to_stored: Callable[[Record, str, Problems], None] | None = None  # file fields -> register fields
    to_file: Callable[[Any], msgspec.Struct] | None = None  # register row -> file row
    out_row: type[msgspec.Struct] | None = None  # what export writes, when not `row` (operators: no PIN)


def parse_instant(value: int | str) -> int:
    """Epoch milliseconds from epoch milliseconds or an ISO 8601 time with a UTC offset."""
    if isinstance(value, int):
        ms = value
    elif _MILLIS.fullmatch(value):
        ms = int(value)
    else:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is neither epoch milliseconds nor an ISO 8601 time") from None
        if moment.tzinfo is None:
            raise ValueError(f"{value!r} has no UTC offset; add Z or one like +01:00")
        since = moment - EPOCH
        if since % timedelta(milliseconds=1):
            raise ValueError(f"{value!r} is finer than a millisecond")
        ms = since // timedelta(milliseconds=1)
    if not 0 <= ms <= LAST_INSTANT:
        raise ValueError(f"{value!r} is not between 1970 and 9999")
    return ms


def format_instant(ms: int) -> str:
    """ISO 8601 in UTC, milliseconds only when there are some: one text per instant."""
    moment = EPOCH + timedelta(milliseconds=ms)
    fraction = f".{ms % 1000:03d}" if ms % 1000 else ""
    return f"{moment:%Y-%m-%dT%H:%M:%S}{fraction}Z"


def _price_to_stored(record: Record, currency: str, problems: Problems) -> None:
    good, failed = record.good, record.failed
    stored: dict[str, Any] = {"store": good.get("store") or "", "currency": currency}
    if "item" in good:
        stored["item"] = good["item"]
    if good.get("price") is not None:  # absent: a file naming prices to delete
        try:
            amount = parse_money(good["price"], currency)
        except MoneyError as exc:
            problems.at(record, "price", str(exc))
            failed.add("price")
        else:
            if amount < 0:
                problems.at(record, "price", f"{good['price']} is negative")
                failed.add("price")
            else:
                stored["price"] = amount
    window: dict[str, int] = {}
    for column in ("start", "end"):
        if good.get(column) is not None:
            try:
                window[column] = parse_instant(good[column])
            except ValueError as exc:
                problems.at(record, column, str(exc))
                failed.add(column)
    if not failed & {"start", "end"}:
        if (good["start"] is None) != (good["end"] is None):
            missing = "end" if good["end"] is None else "start"
            problems.at(record, missing, "a campaign needs both start and end; a standing price neither")
            failed.add(missing)
        elif window and window["start"] >= window["end"]:
            problems.at(record, "end", f"{good['end']} is not after the start {good['start']}")
            failed.add("end")
        else:
            stored["starts"], stored["ends"] = window.get("start", 0), window.get("end", 0)
    record.good = stored


def _price_to_file(price: catalog.Price) -> PriceRow:
    campaign = price.ends != 0
    return PriceRow(
        item=price.item,
        store=price.store or None,
        start=format_instant(price.starts) if campaign else None,
        end=format_instant(price.ends) if campaign else None,
        price=format_money(price.price, price.currency),
    )


class OperatorRow(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """An operator as a file holds it: the PIN in clear, which central turns into its hash at once."""

    number: catalog.Key
    name: catalog.Name
    role: typing.Literal["cashier", "supervisor", "manager"] = "cashier"
    stores: str
    pin: str | int | None = None  # int only to refuse it without repeating it (a PIN is text)


class OperatorOut(msgspec.Struct, kw_only=True):
    """An operator as export writes it: who, in which role, where; never the PIN or its hash."""

    number: str
    name: str
    role: str
    stores: str


def _operator_to_stored(record: Record, currency: str, problems: Problems) -> None:
    good, failed = record.good, record.failed
    stores = good.get("stores")
    if stores is not None:
        ids = sorted(set(re.split(r"[,\s]+", stores.strip())) - {""})
        if not ids:
            problems.at(record, "stores", f"name the stores (ids) or {catalog.ALL_STORES} for every store")
            failed.add("stores")
        elif catalog.ALL_STORES in ids and len(ids) > 1:
            problems.at(record, "stores", f"{catalog.ALL_STORES} means every store; it takes no others with it")
            failed.add("stores")
        else:
            good["stores"] = ",".join(ids)
    pin = good.get("pin")
    if pin is None:
        return
    problem = "write the PIN as text (in quotes)" if isinstance(pin, int) else pins.policy_problem(pin)
    if problem is not None:  # never the PIN itself in a message: it goes to a terminal and to logs
        problems.at(record, "pin", problem)
        failed.add("pin")
        good.pop("pin")


def _operator_to_file(operator: catalog.Operator) -> OperatorOut:
    return OperatorOut(number=operator.number, name=operator.name, role=operator.role, stores=operator.stores)


def _hash_pins(conn: sqlite3.Connection, records: list[Record]) -> None:
    """Each PIN given becomes its slow hash, before the write lock is taken (some 70 ms a PIN). A PIN
    the operator already has keeps its stored hash, so importing the same file again changes nothing."""
    stored = catalog.operator_hashes(conn)
    for record in records:
        pin = record.good.pop("pin", None)
        if pin is None:
            continue
        old = stored.get(record.good.get("number", ""))
        record.good["pin_hash"] = old if old is not None and pins.verify(pin, old) else pins.hash_pin(pin)


def _check_operators(conn: sqlite3.Connection, records: list[Record], problems: Problems, gs1: Gs1Config) -> None:
    stores = catalog.store_ids(conn)
    stored = catalog.operator_hashes(conn)
    for record in records:
        good = record.good
        for store in good.get("stores", "").split(","):
            if store and store != catalog.ALL_STORES and store not in stores and "stores" not in record.failed:
                problems.at(record, "stores", f"{store} is not a known store")
        if "pin_hash" in good or good.get("pin") is not None or "pin" in record.failed or "number" not in good:
            continue
        old = stored.get(good["number"])
        if old is None:
            problems.at(record, "pin", f"required: operator {good['number']} is new")
            record.failed.add("pin")
        else:
            good["pin_hash"] = old


def _check_vat_rates(conn: sqlite3.Connection, records: list[Record], problems: Problems, gs1: Gs1Config) -> None:
    stored = catalog.vat_rates(conn)
    given = [(r, r.good["code"], r.good["rate"]) for r in records if "code" in r.good and "rate" in r.good]
    configured = set({**stored, **{code: rate for _, code, rate in given}}.values())
    in_use = catalog.vat_rates_in_use(conn)
    for record, code, rate in given:
        old = stored.get(code)
        if old is not None and old != rate and old in in_use and old not in configured:
            problems.at(record, "rate", f"items are at {old}, {code}'s rate now, and no other VAT code would have it")


def _check_groups(conn: sqlite3.Connection, records: list[Record], problems: Problems, gs1: Gs1Config) -> None:
    parents = catalog.group_parents(conn)
    parents.update({r.good["item_group"]: r.good.get("parent") for r in records if "item_group" in r.good})
    for record in records:
        parent = record.good.get("parent")
        if parent is None:
            continue
        if parent not in parents:
            problems.at(record, "parent", f"{parent} is not a known item group")
            continue
        group = record.good.get("item_group")
        path: list[str | None] = [group]
        node: str | None = parent
        while node is not None and node not in path:
            path.append(node)
            node = parents.get(node)
        if node is not None and node == group:
            problems.at(record, "parent", f"groups would loop: {' > '.join(str(g) for g in [*path, node])}")


def _check_stores(conn: sqlite3.Connection, records: list[Record], problems: Problems, gs1: Gs1Config) -> None:
    """Stores refer to nothing; their key is all there is to check, and every file's keys are."""


def _check_items(conn: sqlite3.Connection, records: list[Record], problems: Problems, gs1: Gs1Config) -> None:
    rates = set(catalog.vat_rates(conn).values())
    groups = catalog.group_parents(conn)
    weighed = {item: code for code, item in catalog.keys_with_prefixes(conn, gs1.weight_prefixes).items()}
    for record in records:
        good = record.good
        if "vat_rate" in good and good["vat_rate"] not in rates:
            problems.at(record, "vat_rate", f"{good['vat_rate']} is not a configured VAT rate")
        if good.get("item_group") is not None and good["item_group"] not in groups:
            problems.at(record, "item_group", f"{good['item_group']} is not a known item group")
        if good.get("unit") == "piece" and good.get("item") in weighed:
            problems.at(record, "unit", f"weight key {weighed[good['item']]} sells this item, so its unit is kg")


def _check_barcodes(conn: sqlite3.Connection, records: list[Record], problems: Problems, gs1: Gs1Config) -> None:
    units = catalog.item_units(conn)
    for record in records:
        code, item = record.good.get("code"), record.good.get("item")
        problem = catalog.barcode_problem(code, gs1) if code is not None else None
        if problem:
            problems.at(record, "code", problem)
        if item is None:
            continue
        unit = units.get(item)
        if unit is None:
            problems.at(record, "item", f"{item} is not a known item")
        elif unit != "kg" and code is not None and catalog.is_weight_key(code, gs1):
            problems.at(record, "item", f"{item} is sold by {unit}; weight key {code} needs an item sold by kg")


def _check_prices(conn: sqlite3.Connection, records: list[Record], problems: Problems, gs1: Gs1Config) -> None:
    items = catalog.item_units(conn)
    stores = catalog.store_ids(conn)
    for record in records:
        item, store = record.good.get("item"), record.good.get("store")
        if item is not None and item not in items:
            problems.at(record, "item", f"{item} is not a known item")
        if store and store not in stores:
            problems.at(record, "store", f"{store} is not a known store")


def _check_tills(conn: sqlite3.Connection, records: list[Record], problems: Problems, gs1: Gs1Config) -> None:
    stores = catalog.store_ids(conn)
    for record in records:
        store = record.good.get("store")
        if store is not None and store not in stores:
            problems.at(record, "store", f"{store} is not a known store")


def _check_till_config(conn: sqlite3.Connection, records: list[Record], problems: Problems, gs1: Gs1Config) -> None:
    stores = catalog.store_ids(conn)
    keys = {id(r): quickkeys.parse(r.good.get("quick_keys", "")) for r in records}
    known = catalog.barcodes_known(conn, (code for pairs in keys.values() for _, code in pairs))
    for record in records:
        store = record.good.get("store")
        if store and store not in stores:
            problems.at(record, "store", f"{store} is not a known store")
        for column in ("receipt_header", "receipt_footer"):
            for n, line in enumerate(record.good.get(column, "").splitlines(), 1):
                if len(line) > catalog.RECEIPT_WIDTH:
                    problems.at(record, column, f"line {n} has {len(line)} characters; a receipt line has 42")
        for n, (label, code) in enumerate(keys[id(record)], 1):
            if not label or not code:
                problems.at(record, "quick_keys", f"key {n} should read label=barcode")
            elif len(label) > catalog.QUICK_LABEL:
                problems.at(record, "quick_keys", f"key {n}'s label {label!r} is longer than 16 characters")
            elif code not in known:
                problems.at(record, "quick_keys", f"key {n}: {code} is not a known barcode")


def _check_discount_reasons(
    conn: sqlite3.Connection, records: list[Record], problems: Problems, gs1: Gs1Config
) -> None:
    """Nothing beyond the row's own types: a discount reason refers to no other register."""


FORMATS_BY_KIND: dict[str, Format] = {
    "vat-rates": Format(catalog.REGISTERS["vat-rates"], catalog.VatRate, _check_vat_rates),
    "groups": Format(catalog.REGISTERS["groups"], catalog.Group, _check_groups),
    "stores": Format(catalog.REGISTERS["stores"], catalog.Store, _check_stores),
    "items": Format(catalog.REGISTERS["items"], catalog.Item, _check_items),
    "barcodes": Format(catalog.REGISTERS["barcodes"], catalog.Barcode, _check_barcodes),
    "prices": Format(catalog.REGISTERS["prices"], PriceRow, _check_prices, _price_to_stored, _price_to_file),
    "tills": Format(catalog.REGISTERS["tills"], catalog.Till, _check_tills),
    "till-config": Format(catalog.REGISTERS["till-config"], catalog.TillConfig, _check_till_config),
    "discount-reasons": Format(catalog.REGISTERS["discount-reasons"], catalog.DiscountReason, _check_discount_reasons),
    "operators": Format(
        catalog.REGISTERS["operators"],
        OperatorRow,
        _check_operators,
        _operator_to_stored,
        _operator_to_file,
        OperatorOut,
    ),
}
KINDS = tuple(FORMATS_BY_KIND)


def _check_prices_exist(conn: sqlite3.Connection, records: list[Record], problems: Problems, gs1: Gs1Config) -> None:
    keyed = [(r, _price_key(r)) for r in records]
    found = catalog.existing_prices(conn, [key for _, key in keyed if key is not None])
    for record, key in keyed:
        if key is not None and key not in found:
            problems.at(record, "item", f"{key[0]} has no such price (store, start and end as given) to delete")


def _price_key(record: Record) -> tuple[str, str, int, int] | None:
    good = record.good
    if any(column not in good for column in ("item", "store", "starts", "ends")):
        return None
    return (good["item"], good["store"], good["starts"], good["ends"])


# What `storepos central delete KIND FILE` can delete (only prices have tombstones so far).
DELETE_FORMATS: dict[str, Format] = {
    "prices": Format(catalog.REGISTERS["prices"], PriceKeyRow, _check_prices_exist, _price_to_stored),
}


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FILE_FORMATS:
        raise Unusable(f"{path}: the format follows the extension, .csv or .json, not {suffix or 'none'!r}")
    return suffix


def _read_csv(
    name: str, text: str, row_type: type[msgspec.Struct], problems: Problems
) -> tuple[list[Record], set[str]]:
    """The rows as dicts of the known columns, and the required columns the header lacks (reported
    once, on line 1, rather than again on every row)."""
    columns = row_type.__struct_fields__
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header_line = Record(0, name, "line 1", "column", {})
    records: list[Record] = []
    try:
        header = next(reader, None)
        if header is None:
            problems.at(header_line, None, "empty file: the first line names the columns")
            return [], set()
        for column in sorted({c for c in header if header.count(c) > 1}):
            problems.at(header_line, column, "appears more than once in the header")
        for column in header:
            if column not in columns:
                problems.at(header_line, column, f"unknown column (known: {', '.join(columns)})")
        missing = {f.name for f in _fields(row_type) if f.required and f.name not in header}
        for column in sorted(missing, key=columns.index):
            problems.at(header_line, column, "required, but missing from the header")
        while True:
            line = reader.line_num + 1
            cells = next(reader, None)
            if cells is None:
                break
            if not cells:
                continue
            record = Record(line, name, f"line {line}", "column", {})
            if len(cells) != len(header):
                problems.at(record, None, f"{len(cells)} cells, but the header names {len(header)} columns")
                continue
            record.values = {c: from_spreadsheet_safe(v) for c, v in zip(header, cells, strict=True) if c in columns}
            records.append(record)
    except csv.Error as exc:
        raise Rejected([f"{name} line {reader.line_num}: not readable as CSV: {exc}"]) from None
    return records, missing


def _read_json(name: str, data: bytes, problems: Problems) -> list[Record]:
    try:
        parsed = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise Rejected([f"{name}: not valid JSON: {exc}"]) from None
    except RecursionError:
        raise Rejected([f"{name}: not valid JSON: nested too deeply"]) from None
    if not isinstance(parsed, list):
        raise Rejected([f"{name}: expected a list of objects, got a JSON {type(parsed).__name__}"])
    records: list[Record] = []
    for index, value in enumerate(parsed):
        record = Record(index + 1, name, f"record {index}", "field", {})
        if not isinstance(value, dict):
            problems.at(record, None, f"expected an object, got a JSON {type(value).__name__}")
            continue
        record.values = value
        records.append(record)
    return records


def _explain(value: Any, kind: Any, exc: msgspec.ValidationError) -> str:
    """msgspec's message, reworded for an operator and showing the value given."""
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    message = str(exc).replace("`", "")
    if typing.get_origin(kind) is typing.Literal:
        return f"{shown} is not one of {', '.join(typing.get_args(kind))}"
    if message.startswith("Expected int, got"):
        return f"{shown} is not a whole number"
    if message.startswith("Expected bool, got"):
        return f"{shown} is not true or false"
    bound = _BOUND.fullmatch(message)
    if bound:
        side = "least" if bound[1] == ">=" else "most"
        return f"{value} is {'below' if side == 'least' else 'above'} the {side} allowed, {bound[2]}"
    if "matching regex" in message:
        return f"{shown} is not an identifier: it contains whitespace"
    if "of length <=" in message and isinstance(value, str):
        return f"{shown} is {len(value)} characters long; at most {message.rsplit(' ', 1)[-1]}"
    return f"{shown}: {message[0].lower()}{message[1:]}"


@functools.cache
def _fields(row_type: type[msgspec.Struct]) -> tuple[msgspec.structs.FieldInfo, ...]:
    """A row type's fields, resolved once: resolving annotations costs more than checking a row."""
    return msgspec.structs.fields(row_type)


MULTILINE = frozenset({"receipt_header", "receipt_footer", "quick_keys"})  # one entry per line


def _validate(record: Record, row_type: type[msgspec.Struct], problems: Problems, missing: set[str]) -> None:
    """Check the record field by field (not as one msgspec conversion, which stops at the first bad
    field), keeping the good fields and defaults for the absent optional ones."""
    known = row_type.__struct_fields__
    for f in _fields(row_type):
        raw = record.values.get(f.name)
        if raw is None or raw == "":
            if f.required:
                record.failed.add(f.name)
                if f.name not in missing:
                    problems.at(record, f.name, "required")
            else:
                record.good[f.name] = f.default_factory() if f.default is msgspec.NODEFAULT else f.default
            continue
        if isinstance(raw, str):  # no printer, display or terminal command ever enters master data
            raw = plain_lines(raw) if f.name in MULTILINE else plain(raw)
        try:
            record.good[f.name] = msgspec.convert(raw, f.type, strict=False)
        except msgspec.ValidationError as exc:
            problems.at(record, f.name, _explain(raw, f.type, exc))
            record.failed.add(f.name)
    for name in record.values:
        if name not in known:
            problems.at(record, name, f"unknown field (known: {', '.join(known)})")


def _check_duplicates(register: catalog.Register, records: list[Record], problems: Problems) -> None:
    first: dict[tuple[Any, ...], Record] = {}
    for record in records:
        if any(column not in record.good for column in register.key):
            continue
        key = tuple(record.good[column] for column in register.key)
        earlier = first.setdefault(key, record)
        if earlier is record:
            continue
        if len(key) == 1:
            problems.at(record, register.key[0], f"{key[0]} is already on {earlier.label}")
        else:
            problems.at(record, register.key[0], f"{key[0]}: same store, start and end as on {earlier.label}")


@dataclass(frozen=True)
class Prepared:
    """A file read and checked as far as it can be without the database."""

    format: Format
    records: list[Record]
    problems: Problems


def read_file(path: Path, kind: str, currency: str, formats: dict[str, Format] = FORMATS_BY_KIND) -> Prepared:
    """Each row checked field by field, and duplicate keys. Raises Unusable when the file cannot be
    read at all, Rejected when it is not CSV or JSON in the first place."""
    fmt = formats[kind]
    suffix = _suffix(path)
    problems = Problems(fmt.row.__struct_fields__)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise Unusable(f"{path}: {exc.strerror or exc}") from None
    missing: set[str] = set()
    if suffix == ".csv":
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise Rejected([f"{path.name} line {line}: not UTF-8 text ({exc.reason})"]) from None
        records, missing = _read_csv(path.name, text, fmt.row, problems)
    else:
        records = _read_json(path.name, data, problems)
    for record in records:
        _validate(record, fmt.row, problems, missing)
        if fmt.to_stored is not None:
            fmt.to_stored(record, currency, problems)
    _check_duplicates(fmt.register, records, problems)
    return Prepared(fmt, records, problems)


def _check_currency(conn: sqlite3.Connection, currency: str) -> None:
    if not _CURRENCY.fullmatch(currency):
        raise Unusable(f"--currency {currency!r}: an ISO 4217 code like SEK")
    others = catalog.price_currencies(conn) - {currency}
    if others:
        raise Unusable(f"the catalogue's prices are in {', '.join(sorted(others))}, not {currency} (--currency)")


def import_file(
    conn: sqlite3.Connection, kind: str, path: Path, *, currency: str = "SEK", gs1: Gs1Config | None = None
) -> catalog.Applied:
    """Check the whole file, then apply it in one transaction, or raise Rejected with every error and
    apply nothing. The database checks run under the write lock, so what they saw is what is there
    when the rows are written."""
    prepared = read_file(path, kind, currency)
    fmt, problems = prepared.format, prepared.problems
    if fmt.register.kind == "operators" and not problems.found:
        _hash_pins(conn, prepared.records)
    with immediate(conn):
        if fmt.register.kind == "prices":
            _check_currency(conn, currency)
        fmt.check(conn, prepared.records, problems, gs1 or Gs1Config())
        if problems.found:
            raise Rejected(problems.texts())
        rows = [msgspec.convert(record.good, fmt.register.row) for record in prepared.records]
        return catalog.upsert(conn, fmt.register, rows)


def delete_file(conn: sqlite3.Connection, kind: str, path: Path, *, currency: str = "SEK") -> tuple[int, int]:
    """Delete the rows a file names, all or none, like an import; returns (rows deleted, version)."""
    prepared = read_file(path, kind, currency, DELETE_FORMATS)
    fmt, problems = prepared.format, prepared.problems
    with immediate(conn):
        fmt.check(conn, prepared.records, problems, Gs1Config())
        if problems.found:
            raise Rejected(problems.texts())
        keys = [key for record in prepared.records if (key := _price_key(record)) is not None]
        return len(keys), catalog.delete_prices(conn, keys) if keys else catalog.version(conn)


def export_bytes(conn: sqlite3.Connection, kind: str, suffix: str, *, currency: str = "SEK") -> tuple[bytes, int, int]:
    """A register as file bytes, with its row count and the catalogue version they are from."""
    fmt = FORMATS_BY_KIND[kind]
    to_file = fmt.to_file or (lambda row: row)
    conn.execute("BEGIN")  # one snapshot: the rows and the version agree
    try:
        if fmt.register.kind == "prices":
            _check_currency(conn, currency)
        rows = [to_file(row) for row in catalog.rows(conn, fmt.register)]
        version = catalog.version(conn)
    finally:
        conn.execute("ROLLBACK")
    if suffix == ".json":
        return msgspec.json.format(msgspec.json.encode(rows), indent=2) + b"\n", len(rows), version
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow((fmt.out_row or fmt.row).__struct_fields__)
    for row in rows:
        writer.writerow(spreadsheet_safe(_cell(value)) for value in msgspec.structs.astuple(row))
    return out.getvalue().encode(), len(rows), version


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def export_file(conn: sqlite3.Connection, kind: str, path: Path, *, currency: str = "SEK") -> tuple[int, int]:
    """Write a register to `path` (replacing it whole, never leaving half a file); returns the row
    count and the catalogue version written."""
    data, count, version = export_bytes(conn, kind, _suffix(path), currency=currency)
    try:
        replace_file(path, data)
    except OSError as exc:
        raise Unusable(f"{path}: {exc.strerror or exc}") from None
    return count, version


def open_catalog(db: Path, *, create: bool) -> sqlite3.Connection:
    """The central database, migrated, for an operator command running beside central itself."""
    if not create and not db.exists():
        raise Unusable(f"{db}: no central database here")
    try:
        if not db.exists():  # it will hold operators' PIN hashes: this user's alone (0600) from the start
            os.close(os.open(db, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600))
        os.chmod(db, 0o600)
        conn = open_connection(db)
    except OSError as exc:
        raise Unusable(f"{db}: {exc.strerror or exc}") from None
    except sqlite3.Error as exc:
        raise Unusable(f"{db}: {exc}") from None
    try:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        migrate(conn, MIGRATIONS)
    except (sqlite3.Error, DatabaseError) as exc:
        conn.close()
        raise Unusable(f"{db}: {exc}") from None
    return conn
