"""Central's master registers from operator files: applied whole or not at all, every error named,
exports that import back unchanged, and the price a store charges at a given moment."""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from central.app import CentralNode
from central.registers import catalog, imports
from central.schema import MIGRATIONS
from devtools.processes import storepos
from runtime.database import migrate, open_connection
from storepos import cli, commands

TestBody = Callable[..., None]


def bounded(seconds: float) -> Callable[[TestBody], Callable[..., Awaitable[None]]]:
    """Run a synchronous test body on a worker thread under a Trio deadline.

    These tests do blocking file and SQLite work (the command functions are synchronous, as an
    operator tool is); on the event loop nothing could interrupt them, on a thread the deadline can.
    """

    def wrap(test: TestBody) -> Callable[..., Awaitable[None]]:
        @functools.wraps(test)
        async def run(*args: Any, **kwargs: Any) -> None:
            with trio.fail_after(seconds):
                await trio.to_thread.run_sync(functools.partial(test, *args, **kwargs), abandon_on_cancel=True)

        return run

    return wrap


VAT = "code,rate\nA,2500\nB,1200\nC,600\nZ,0\n"
GROUPS = "item_group,name,parent\nfood,Food,\ndairy,Dairy,food\nfruit,Fruit,food\n"
STORES = "store,name\nS001,Corner shop\nS002,Mall\n"
ITEMS = (
    "item,name,receipt_text,item_group,vat_rate,unit,info,warranty,popup,active\n"
    "1001,Milk 1.5% 1 l,MILK 1.5%,dairy,1200,piece,,,,true\n"
    "1005,Bananas,,fruit,1200,kg,Ecuador,,,true\n"
    '2001,Kettle,,,2500,piece,"1.7 l, 2200 W",2 years,,true\n'
    "3001,Beer 5.0%,,,1200,piece,,,Check age: 18+,false\n"
)
BARCODES = (
    "code,item\n7310000000010,1001\n7319990000017,1001\n2300005,1005\n2100005,1005\n12345670,2001\n036000291452,3001\n"
)
PRICES = (
    "item,store,start,end,price\n"
    "1001,,,,15.90\n"
    "1001,S001,,,14.90\n"
    "1001,,2026-11-01T00:00:00+01:00,2026-11-08T00:00:00+01:00,12.00\n"
    "1001,S001,1793487600000,1793746800000,9.90\n"
    "1005,,,,24.95\n"
)
TILLS = "store,till,name,lane\nS001,T1,Front till,1\nS001,T2,Back till,2\nS002,T1,Only till,1\n"
TILL_CONFIG = (
    "store,receipt_header,receipt_footer,quick_keys\n"
    ',"Corner Shops Ltd\nOrg no 556000-0000",Thank you!,"Milk=7310000000010\nBananas=2300005"\n'
    "S002,Mall branch,,\n"
)
TABLES = (
    "vat_rates",
    "item_groups",
    "stores",
    "items",
    "barcodes",
    "prices",
    "tills",
    "till_configs",
    "discount_reasons",
    "catalog_version",
)


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def run_import(
    capsys: pytest.CaptureFixture[str], db: Path, kind: str, path: Path, currency: str = "SEK"
) -> tuple[int, str, str]:
    code = commands.central_import(db, kind, path, currency)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def snapshot(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every catalogue table, rows sorted: equal snapshots mean nothing changed, version included."""
    conn = open_connection(db, readonly=True)
    try:
        return {table: sorted(conn.execute(f"SELECT * FROM {table}").fetchall()) for table in TABLES}
    finally:
        conn.close()


def version(db: Path) -> int:
    conn = open_connection(db, readonly=True)
    try:
        return catalog.version(conn)
    finally:
        conn.close()


def load_all(capsys: pytest.CaptureFixture[str], folder: Path, db: Path, *, tills: bool = False) -> None:
    """The whole sample catalogue, register by register in dependency order (with `tills`, the tills
    and till configuration too: two more versions)."""
    files = [
        ("vat-rates", VAT),
        ("groups", GROUPS),
        ("stores", STORES),
        ("items", ITEMS),
        ("barcodes", BARCODES),
        ("prices", PRICES),
    ]
    if tills:
        files += [("tills", TILLS), ("till-config", TILL_CONFIG)]
    for kind, text in files:
        code, _, err = run_import(capsys, db, kind, write(folder, f"{kind}.csv", text))
        assert (code, err) == (0, ""), err


@bounded(30)
def test_csv_files_fill_each_register_and_each_file_is_one_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "central.db"
    code, out, _ = run_import(capsys, db, "vat-rates", write(tmp_path, "vat.csv", VAT))
    assert code == 0
    assert out == "vat.csv: vat-rates 4 added, 0 changed, 0 unchanged; catalogue version 1\n"
    load_all(capsys, tmp_path, db, tills=True)  # vat-rates again: unchanged, so still version 1; then 7 more
    assert version(db) == 8
    tables = snapshot(db)
    assert tables["till_configs"] == [
        ("", "Corner Shops Ltd\nOrg no 556000-0000", "Thank you!", "Milk=7310000000010\nBananas=2300005", 8),
        ("S002", "Mall branch", "", "", 8),
    ]
    assert ("S002", "T1", "Only till", 1, 7) in tables["tills"]
    assert [row[:-1] for row in tables["items"]] == [
        ("1001", "Milk 1.5% 1 l", "MILK 1.5%", "dairy", 1200, "piece", "", "", "", 1),
        ("1005", "Bananas", "", "fruit", 1200, "kg", "Ecuador", "", "", 1),
        ("2001", "Kettle", "", None, 2500, "piece", "1.7 l, 2200 W", "2 years", "", 1),
        ("3001", "Beer 5.0%", "", None, 1200, "piece", "", "", "Check age: 18+", 0),
    ]
    assert {row[-1] for row in tables["items"]} == {4}  # the version that wrote them
    assert tables["item_groups"] == [
        ("dairy", "Dairy", "food", 2),
        ("food", "Food", None, 2),
        ("fruit", "Fruit", "food", 2),
    ]
    assert ("2300005", "1005", 5) in tables["barcodes"]
    assert ("1001", "", ms("2026-11-01T00:00:00+01:00"), ms("2026-11-08T00:00:00+01:00"), 1200, "SEK", 6) in tables[
        "prices"
    ]


@bounded(30)
def test_json_files_are_lists_of_objects(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "central.db"
    for kind, text in (("vat-rates", VAT), ("groups", GROUPS), ("stores", STORES)):
        assert run_import(capsys, db, kind, write(tmp_path, f"{kind}.csv", text))[0] == 0
    items = """[
      {"item": "1001", "name": "Milk", "vat_rate": 1200, "item_group": "dairy"},
      {"item": "1005", "name": "Bananas", "vat_rate": 1200, "unit": "kg", "active": false, "popup": null}
    ]"""
    code, out, err = run_import(capsys, db, "items", write(tmp_path, "items.json", items))
    assert (code, err) == (0, "")
    assert "items 2 added" in out
    barcodes = '[{"code": "7310000000010", "item": "1001"}, {"code": "2300005", "item": "1005"}]'
    assert run_import(capsys, db, "barcodes", write(tmp_path, "barcodes.json", barcodes))[0] == 0
    prices = """[
      {"item": "1001", "price": "15.90"},
      {"item": "1001", "store": "S002", "price": "15,5"},
      {"item": "1001", "start": "2026-11-01T00:00:00Z", "end": 1793750400000, "price": "12"}
    ]"""
    code, out, err = run_import(capsys, db, "prices", write(tmp_path, "prices.json", prices))
    assert (code, err) == (0, ""), err
    tables = snapshot(db)
    assert [row[:-1] for row in tables["items"]] == [
        ("1001", "Milk", "", "dairy", 1200, "piece", "", "", "", 1),
        ("1005", "Bananas", "", None, 1200, "kg", "", "", "", 0),
    ]
    assert [row[:-1] for row in tables["prices"]] == [
        ("1001", "", 0, 0, 1590, "SEK"),
        ("1001", "", ms("2026-11-01T00:00:00+00:00"), 1793750400000, 1200, "SEK"),
        ("1001", "S002", 0, 0, 1550, "SEK"),
    ]


@bounded(30)
def test_a_file_with_bad_rows_is_rejected_whole_with_every_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "central.db"
    load_all(capsys, tmp_path, db)
    before = snapshot(db)
    bad = (
        "item,name,vat_rate,unit,item_group,active\n"
        "1001,Milk renamed,1200,piece,dairy,true\n"  # good, and still not applied
        "1002,,2600,box,dairy,true\n"
        "1003,Eggs,12x,piece,nosuchgroup,maybe\n"
        "\n"
        "1001,Milk again,1200,piece,,true\n"
        "1004,Has two cells\n"
        "my item,Spaces,1200,piece,,true\n"
        "1005,Bananas,1200,piece,fruit,true\n"
    )
    code, out, err = run_import(capsys, db, "items", write(tmp_path, "items.csv", bad))
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        "items.csv line 3, column name: required",
        "items.csv line 3, column vat_rate: 2600 is not a configured VAT rate",
        "items.csv line 3, column unit: 'box' is not one of piece, kg",
        "items.csv line 4, column item_group: nosuchgroup is not a known item group",
        "items.csv line 4, column vat_rate: '12x' is not a whole number",
        "items.csv line 4, column active: 'maybe' is not true or false",
        "items.csv line 6, column item: 1001 is already on line 2",
        "items.csv line 7: 2 cells, but the header names 6 columns",
        "items.csv line 8, column item: 'my item' is not an identifier: it contains whitespace",
        "items.csv line 9, column unit: weight key 2300005 sells this item, so its unit is kg",
        "storepos: items.csv rejected with 10 errors; nothing was applied",
    ]
    assert snapshot(db) == before


@bounded(30)
def test_json_errors_name_the_record_by_its_index(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "central.db"
    load_all(capsys, tmp_path, db)
    before = snapshot(db)
    bad = """[
      {"item": "2001", "name": "Kettle", "vat_rate": 2500},
      {"item": 1002, "name": "Eggs", "vat_rate": 1200, "colour": "brown"},
      "not an object",
      {"name": "No id", "vat_rate": 1200, "receipt_text": "a receipt text far too long to print"}
    ]"""
    code, _, err = run_import(capsys, db, "items", write(tmp_path, "items.json", bad))
    assert code == 1
    assert err.splitlines()[:-1] == [
        "items.json record 1, field item: 1002: expected str, got int",
        "items.json record 1, field colour: unknown field (known: item, name, receipt_text, item_group, vat_rate, "
        "unit, info, warranty, popup, active)",
        "items.json record 2: expected an object, got a JSON str",
        "items.json record 3, field item: required",
        "items.json record 3, field receipt_text: 'a receipt text far too long to print' is 36 characters long; "
        "at most 30",
    ]
    assert snapshot(db) == before


@bounded(30)
def test_header_problems_are_reported_once_on_line_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "central.db"
    load_all(capsys, tmp_path, db)
    before = snapshot(db)
    code, _, err = run_import(
        capsys, db, "items", write(tmp_path, "items.csv", "item,colour,unit\n1,red,kg\n2,blue,l\n")
    )
    assert code == 1
    assert err.splitlines()[:-1] == [
        "items.csv line 1, column name: required, but missing from the header",
        "items.csv line 1, column vat_rate: required, but missing from the header",
        "items.csv line 1, column colour: unknown column (known: item, name, receipt_text, item_group, vat_rate, "
        "unit, info, warranty, popup, active)",
        "items.csv line 3, column unit: 'l' is not one of piece, kg",
    ]
    assert snapshot(db) == before


@bounded(30)
def test_barcodes_need_valid_check_digits_or_a_variable_measure_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "central.db"
    load_all(capsys, tmp_path, db)
    before = snapshot(db)
    bad = (
        "code,item\n"
        "7310000000034,1001\n"  # EAN-13, good
        "7310000000035,1001\n"  # EAN-13, check digit should be 4
        "12345671,1001\n"  # EAN-8, should end 0
        "036000291453,1001\n"  # UPC-A, should end 2
        "2612345,1005\n"  # 7 digits with an unconfigured prefix
        "2300005005320,1005\n"  # a whole weight label instead of its key
        "2312345,2001\n"  # a weight key for a piece item
        "731000000001,1001\n"  # 12 digits, not a UPC-A check digit
        "12345,1001\n"
        "73100000000A4,1001\n"
        "7310000000041,4040\n"  # no such item
    )
    code, _, err = run_import(capsys, db, "barcodes", write(tmp_path, "barcodes.csv", bad))
    assert code == 1
    assert err.splitlines()[:-1] == [
        "barcodes.csv line 3, column code: 7310000000035 has check digit 5; it should be 4",
        "barcodes.csv line 4, column code: 12345671 has check digit 1; it should be 0",
        "barcodes.csv line 5, column code: 036000291453 has check digit 3; it should be 2",
        "barcodes.csv line 6, column code: 2612345 is 7 digits, a variable-measure key, but 26 is not a configured "
        "weight or price prefix (20, 21, 22, 23, 24, 25)",
        "barcodes.csv line 7, column code: 2300005005320 is a variable-measure label (prefix 23); "
        "register its key 2300005",
        "barcodes.csv line 8, column item: 2001 is sold by piece; weight key 2312345 needs an item sold by kg",
        "barcodes.csv line 9, column code: 731000000001 has check digit 1; it should be 3",
        "barcodes.csv line 10, column code: 12345 has 5 digits; EAN-8, UPC-A and EAN-13 have 8, 12 and 13",
        "barcodes.csv line 11, column code: '73100000000A4' is not a barcode: digits only",
        "barcodes.csv line 12, column item: 4040 is not a known item",
    ]
    assert snapshot(db) == before
    good = "code,item\n7310000000034,1001\n2212345,2001\n"  # a price key may sell a piece item
    assert run_import(capsys, db, "barcodes", write(tmp_path, "good.csv", good))[0] == 0
    assert version(db) == 7


@bounded(30)
def test_prices_need_known_items_and_stores_sane_windows_and_the_chain_currency(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "central.db"
    load_all(capsys, tmp_path, db)
    before = snapshot(db)
    bad = (
        "item,store,start,end,price\n"
        "9999,S009,,,1.00\n"
        "1001,,2026-11-01T00:00:00,,12.00\n"
        "1001,,2026-11-08T00:00:00Z,2026-11-01T00:00:00Z,abc\n"
        "1001,S001,,,-1\n"
        "1001,S002,,,15.905\n"
        "1001,S001,2026-11-01,,9.90\n"
        "1005,,1793487600000,1793746800000,20.00\n"
        "1005,,2026-11-01T00:00:00+01:00,2026-11-04T00:00:00+01:00,19.00\n"  # the same window as line 8
    )
    code, _, err = run_import(capsys, db, "prices", write(tmp_path, "prices.csv", bad))
    assert code == 1
    assert err.splitlines()[:-1] == [
        "prices.csv line 2, column item: 9999 is not a known item",
        "prices.csv line 2, column store: S009 is not a known store",
        "prices.csv line 3, column start: '2026-11-01T00:00:00' has no UTC offset; add Z or one like +01:00",
        "prices.csv line 4, column end: 2026-11-01T00:00:00Z is not after the start 2026-11-08T00:00:00Z",
        "prices.csv line 4, column price: not an amount: 'abc'",
        "prices.csv line 5, column price: -1 is negative",
        "prices.csv line 6, column price: '15.905' has more decimals than SEK allows",
        "prices.csv line 7, column start: '2026-11-01' has no UTC offset; add Z or one like +01:00",
        "prices.csv line 9, column item: 1005: same store, start and end as on line 8",
    ]
    assert snapshot(db) == before
    code, _, err = run_import(capsys, db, "prices", write(tmp_path, "eur.csv", "item,price\n1001,1.50\n"), "EUR")
    assert code == 2
    assert "the catalogue's prices are in SEK, not EUR" in err
    assert snapshot(db) == before


@bounded(30)
def test_tills_and_till_configuration_refer_to_known_stores_and_barcodes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "central.db"
    load_all(capsys, tmp_path, db)
    before = snapshot(db)
    code, _, err = run_import(capsys, db, "tills", write(tmp_path, "tills.csv", "store,till,name,lane\nS009,T1,X,0\n"))
    assert code == 1
    assert err.splitlines()[:-1] == [
        "tills.csv line 2, column store: S009 is not a known store",
        "tills.csv line 2, column lane: 0 is below the least allowed, 1",
    ]
    bad = (
        "store,receipt_header,receipt_footer,quick_keys\n"
        f'S009,"ok\n{"x" * 43}",,"Milk=7310000000010\nno equals sign\nA label far too long=7310000000010"\n'
        ',,,"Ghost=4006381333931"\n'
    )
    code, _, err = run_import(capsys, db, "till-config", write(tmp_path, "config.csv", bad))
    assert code == 1
    assert err.splitlines()[:-1] == [
        "config.csv line 2, column store: S009 is not a known store",
        "config.csv line 2, column receipt_header: line 2 has 43 characters; a receipt line has 42",
        "config.csv line 2, column quick_keys: key 2 should read label=barcode",
        "config.csv line 2, column quick_keys: key 3's label 'A label far too long' is longer than 16 characters",
        "config.csv line 6, column quick_keys: key 1: 4006381333931 is not a known barcode",
    ]
    assert snapshot(db) == before


@bounded(60)
def test_export_then_import_is_byte_identical_and_bumps_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "central.db"
    load_all(capsys, tmp_path, db, tills=True)
    before = snapshot(db)
    fresh = tmp_path / "fresh.db"
    for suffix in (".csv", ".json"):
        for kind in imports.KINDS[:-1]:  # not operators: an export carries no PIN (tests/central/test_operators.py)
            first = tmp_path / f"out-{kind}{suffix}"
            assert commands.central_export(db, kind, first, "SEK") == 0
            count = len(before[catalog.REGISTERS[kind].table])
            assert capsys.readouterr().out == f"{first.name}: {count} {kind} at catalogue version 8\n"
            code, out, err = run_import(capsys, db, kind, first)
            assert (code, err) == (0, "")
            assert out.endswith("; nothing changed; catalogue version stays 8\n")
            again = tmp_path / f"again-{kind}{suffix}"
            assert commands.central_export(db, kind, again, "SEK") == 0
            assert again.read_bytes() == first.read_bytes()
            # and the export rebuilds the same register in an empty central
            assert run_import(capsys, fresh, kind, first)[0] == 0
            rebuilt = tmp_path / f"rebuilt-{kind}{suffix}"
            assert commands.central_export(fresh, kind, rebuilt, "SEK") == 0
            assert rebuilt.read_bytes() == first.read_bytes()
            capsys.readouterr()
    assert snapshot(db) == before
    assert (tmp_path / "out-prices.csv").read_text() == (
        "item,store,start,end,price\n"
        "1001,,,,15.90\n"
        "1001,,2026-10-31T23:00:00Z,2026-11-07T23:00:00Z,12.00\n"
        "1001,S001,,,14.90\n"
        "1001,S001,2026-10-31T23:00:00Z,2026-11-03T23:00:00Z,9.90\n"
        "1005,,,,24.95\n"
    )


@bounded(30)
def test_only_changed_rows_take_the_new_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "central.db"
    load_all(capsys, tmp_path, db)
    changed = ITEMS.replace("2001,Kettle,", "2001,Kettle 1.7 l,") + "4001,Candles,,,2500,piece,,,,true\n"
    code, out, _ = run_import(capsys, db, "items", write(tmp_path, "items2.csv", changed))
    assert code == 0
    assert out == "items2.csv: items 1 added, 1 changed, 3 unchanged; catalogue version 7\n"
    conn = open_connection(db, readonly=True)
    try:
        versions = catalog.row_versions(conn, catalog.REGISTERS["items"])
    finally:
        conn.close()
    assert versions == {("1001",): 4, ("1005",): 4, ("2001",): 7, ("3001",): 4, ("4001",): 7}


@bounded(30)
def test_vat_rates_and_groups_keep_their_references_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "central.db"
    load_all(capsys, tmp_path, db)
    before = snapshot(db)
    code, _, err = run_import(capsys, db, "vat-rates", write(tmp_path, "vat.csv", "code,rate\nB,1100\nC,-5\n"))
    assert code == 1
    assert err.splitlines()[:-1] == [
        "vat.csv line 2, column rate: items are at 1200, B's rate now, and no other VAT code would have it",
        "vat.csv line 3, column rate: -5 is below the least allowed, 0",
    ]
    loop = "item_group,name,parent\nfood,Food,fruit\nsnacks,Snacks,nosuch\n"
    code, _, err = run_import(capsys, db, "groups", write(tmp_path, "groups.csv", loop))
    assert code == 1
    assert err.splitlines()[:-1] == [
        "groups.csv line 2, column parent: groups would loop: food > fruit > food",
        "groups.csv line 3, column parent: nosuch is not a known item group",
    ]
    assert snapshot(db) == before
    # moving rate B is fine once another code carries the items' rate
    assert run_import(capsys, db, "vat-rates", write(tmp_path, "vat2.csv", "code,rate\nB,1100\nB2,1200\n"))[0] == 0


@bounded(30)
def test_store_prices_beat_chain_prices_and_campaigns_beat_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "central.db"
    load_all(capsys, tmp_path, db)
    extra = "item,store,start,end,price\n1001,S002,2026-11-02T00:00:00Z,2026-11-03T00:00:00Z,13.00\n"
    assert run_import(capsys, db, "prices", write(tmp_path, "more.csv", extra))[0] == 0
    chain_start, chain_end = ms("2026-11-01T00:00:00+01:00"), ms("2026-11-08T00:00:00+01:00")
    s001_start, s001_end = 1793487600000, 1793746800000
    before = chain_start - 1
    conn = open_connection(db, readonly=True)
    try:
        price = functools.partial(catalog.price_at, conn, "1001")
        assert price("S002", before) == 1590  # chain price
        assert price("S001", before) == 1490  # the store's own price beats it
        assert price("S002", chain_start) == 1200  # chain campaign, from its first millisecond
        assert price("S001", s001_start) == 990  # store campaign beats the chain campaign
        assert price("S001", s001_end - 1) == 990
        assert price("S001", s001_end) == 1200  # store campaign over: the chain campaign beats S001's own price
        assert price("S002", ms("2026-11-02T00:00:00+00:00")) == 1300  # S002's campaign beats the chain's
        assert price("S002", chain_end - 1) == 1200
        assert price("S002", chain_end) == 1590  # the end is exclusive
        assert price("S001", chain_end) == 1490
        assert price("", before) == 1590  # no store: the chain price
        assert catalog.price_at(conn, "2001", "S001", before) is None  # an item without a price
    finally:
        conn.close()


def test_price_at_ranks_and_breaks_ties_by_the_lowest_price(tmp_path: Path) -> None:
    conn = open_connection(tmp_path / "central.db")
    try:
        migrate(conn, MIGRATIONS)
        conn.execute("BEGIN")
        conn.execute("INSERT INTO items VALUES ('i', 'I', '', NULL, 2500, 'piece', '', '', '', 1, 1)")
        conn.execute("INSERT INTO stores VALUES ('s', 'S', 1)")
        rows = [
            catalog.Price(item="i", price=1000, currency="SEK"),
            catalog.Price(item="i", store="s", price=900, currency="SEK"),
            catalog.Price(item="i", starts=100, ends=300, price=800, currency="SEK"),
            catalog.Price(item="i", starts=200, ends=400, price=850, currency="SEK"),
            catalog.Price(item="i", store="s", starts=250, ends=350, price=950, currency="SEK"),
        ]
        applied = catalog.upsert(conn, catalog.REGISTERS["prices"], rows)
        conn.execute("COMMIT")
        assert applied == catalog.Applied(inserted=5, updated=0, unchanged=0, version=1)
        expected = {50: 900, 100: 800, 199: 800, 200: 800, 250: 950, 349: 950, 350: 850, 399: 850, 400: 900}
        assert {at: catalog.price_at(conn, "i", "s", at) for at in expected} == expected
        assert catalog.price_at(conn, "i", "other", 50) == 1000
    finally:
        conn.close()


@pytest.mark.e2e  # seconds of SQLite work: a scale check, not a behaviour the fast loop needs
@bounded(300)
def test_a_hundred_thousand_items_import_in_one_transaction(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "central.db"
    assert run_import(capsys, db, "vat-rates", write(tmp_path, "vat.csv", VAT))[0] == 0
    lines = ["item,name,vat_rate"] + [f"{n},Item number {n},{(2500, 1200, 600)[n % 3]}" for n in range(100_000)]
    big = write(tmp_path, "items.csv", "\n".join(lines) + "\n")
    conn = imports.open_catalog(db, create=False)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        applied = imports.import_file(conn, "items", big)
        conn.set_trace_callback(None)
        assert applied == catalog.Applied(inserted=100_000, updated=0, unchanged=0, version=2)
        transactions = [s for s in statements if s.split()[0].upper() in ("BEGIN", "COMMIT", "ROLLBACK")]
        assert transactions == ["BEGIN IMMEDIATE", "COMMIT"]
        assert conn.execute("SELECT COUNT(*), MIN(version), MAX(version) FROM items").fetchone() == (100_000, 2, 2)
        # one bad row at the very end keeps all of a second big file out
        lines[-1] = "99999,Item number 99999,2600"
        renamed = [line.replace("Item number", "Article") for line in lines]
        bad = write(tmp_path, "items2.csv", "\n".join(renamed) + "\n")
        with pytest.raises(imports.Rejected) as rejected:
            imports.import_file(conn, "items", bad)
        assert rejected.value.errors == ["items2.csv line 100001, column vat_rate: 2600 is not a configured VAT rate"]
        assert conn.execute("SELECT COUNT(*) FROM items WHERE name LIKE 'Article%'").fetchone() == (0,)
        assert catalog.version(conn) == 2
    finally:
        conn.close()


@bounded(30)
def test_usage_and_file_problems_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "central.db"
    assert run_import(capsys, db, "items", write(tmp_path, "items.txt", ITEMS))[0] == 2
    assert run_import(capsys, db, "items", tmp_path / "missing.csv")[0] == 2
    assert run_import(capsys, db, "prices", write(tmp_path, "p.csv", "item,price\n"), "sek")[0] == 2
    assert commands.central_export(tmp_path / "nothing-here.db", "items", tmp_path / "x.csv", "SEK") == 2
    assert "no central database here" in capsys.readouterr().err
    assert not (tmp_path / "nothing-here.db").exists()
    code, _, err = run_import(capsys, db, "items", write(tmp_path, "broken.json", '[{"item": "1",'))
    assert code == 1  # unreadable content is a rejected file, not a usage error
    assert err.startswith("broken.json: not valid JSON")


def test_the_command_line_offers_every_register() -> None:
    assert cli.REGISTERS == imports.KINDS


@pytest.mark.e2e  # runs the storepos command as a process
async def test_import_through_the_storepos_command(tmp_path: Path) -> None:
    db = str(tmp_path / "central.db")
    for kind, text in (("vat-rates", VAT), ("groups", GROUPS), ("items", ITEMS)):
        path = tmp_path / f"{kind}.csv"
        await trio.Path(path).write_text(text)
        done = await storepos("central", "import", kind, str(path), "--db", db)
        assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == "items.csv: items 4 added, 0 changed, 0 unchanged; catalogue version 3\n"
    bad = tmp_path / "barcodes.json"
    await trio.Path(bad).write_text('[{"code": "7310000000011", "item": "1001"}, {"code": "2300005"}]')
    done = await storepos("central", "import", "barcodes", str(bad), "--db", db)
    assert done.returncode == 1
    assert done.stderr.decode().splitlines() == [
        "barcodes.json record 0, field code: 7310000000011 has check digit 1; it should be 0",
        "barcodes.json record 1, field item: required",
        "storepos: barcodes.json rejected with 2 errors; nothing was applied",
    ]
    done = await storepos("central", "export", "nonsense", str(bad), "--db", db)
    assert done.returncode == 2  # argparse: not a register


async def test_import_while_central_is_running(central: CentralNode, tmp_path: Path) -> None:
    """The operator tool writes the file central has open: central keeps writing, and reads the result."""
    db = central.db.path
    vat = tmp_path / "vat.csv"
    await trio.Path(vat).write_text(VAT)

    def touch_cursor(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO stream_cursors VALUES ('S1', 'journal', 1)")

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(central.db.write, touch_cursor)
            code = await trio.to_thread.run_sync(commands.central_import, db, "vat-rates", vat, "SEK")
        assert code == 0
        assert await central.db.read(catalog.version) == 1
        assert await central.db.read(catalog.vat_rates) == {"A": 2500, "B": 1200, "C": 600, "Z": 0}


@given(st.integers(min_value=0, max_value=imports.LAST_INSTANT))
def test_times_export_as_text_that_imports_as_the_same_instant(at: int) -> None:
    text = imports.format_instant(at)
    assert text.endswith("Z")
    assert imports.parse_instant(text) == at
    assert imports.parse_instant(str(at)) == at


@bounded(30)
def test_deleting_prices_is_all_or_nothing_and_an_import_brings_them_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "central.db"
    load_all(capsys, tmp_path, db)
    before = snapshot(db)
    bad = (
        "item,store,start,end\n1001,S001,1793487600000,1793746800000\n1001,,2026-11-01T00:00:00Z,2026-11-09T00:00:00Z\n"
    )
    assert commands.central_delete(db, "prices", write(tmp_path, "bad.csv", bad), "SEK") == 1
    err = capsys.readouterr().err
    assert "bad.csv line 3, column item: 1001 has no such price (store, start and end as given) to delete" in err
    assert snapshot(db) == before  # the good first row was not deleted either
    campaign = "item,store,start,end,price\n1001,S001,1793487600000,1793746800000,9.90\n"  # an export's row
    assert commands.central_delete(db, "prices", write(tmp_path, "gone.csv", campaign), "SEK") == 0
    assert capsys.readouterr().out == "gone.csv: 1 prices deleted; catalogue version 7\n"
    after = snapshot(db)
    assert len(after["prices"]) == len(before["prices"]) - 1
    with contextlib.closing(open_connection(db)) as conn:
        assert catalog.price_at(conn, "1001", "S001", 1793487600000) == 1200  # the chain campaign now
    code, out, _ = run_import(capsys, db, "prices", write(tmp_path, "again.csv", campaign))
    assert code == 0 and "1 added" in out
    conn = open_connection(db)
    try:
        assert conn.execute("SELECT count(*) FROM price_tombstones").fetchone() == (0,)
    finally:
        conn.close()
