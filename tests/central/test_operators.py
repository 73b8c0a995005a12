"""The operator register at central (issue 13 item 4): imported with PINs, kept only as slow hashes,
exported without them, a PIN policy enforced all or nothing, and each store sent the hashes of its own
operators only."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from central.registers import catalog, imports
from central.registers.catalog import Store
from protocol import pins
from protocol.frames import CatalogPull
from runtime.database import open_connection
from storepos import commands
from tests.kit.catalog import read, write

STORES = [Store(store="S001", name="Main street"), Store(store="S002", name="Harbour")]


def operators_file(folder: Path, rows: list[dict[str, object]], name: str = "operators.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(rows))
    return path


def stored(conn: sqlite3.Connection) -> dict[str, tuple[str, str, str, str]]:
    rows = conn.execute("SELECT number, name, role, stores, pin_hash FROM operators").fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


@pytest.fixture
def central_db(tmp_path: Path) -> Path:
    db = tmp_path / "central.db"
    conn = imports.open_catalog(db, create=True)
    try:
        write(conn, "stores", STORES)
    finally:
        conn.close()
    return db


def run(capsys: pytest.CaptureFixture[str], verb: str, db: Path, path: Path) -> tuple[int, str, str]:
    run_it = commands.central_import if verb == "import" else commands.central_export
    code = run_it(db, "operators", path, "SEK")
    out = capsys.readouterr()
    return code, out.out, out.err


def test_import_keeps_only_a_slow_hash_and_export_never_shows_pin_or_hash(
    tmp_path: Path, central_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows: list[dict[str, object]] = [
        {"number": "1", "name": "Alex", "stores": "S001", "pin": "1234"},
        {"number": "7", "name": "Kim", "role": "supervisor", "stores": "S002, S001", "pin": "80417"},
        {"number": "9", "name": "Jo", "role": "manager", "stores": "*", "pin": "000042"},
    ]
    source = operators_file(tmp_path, rows)
    assert run(capsys, "import", central_db, source)[:2] == (
        0,
        "operators.json: operators 3 added, 0 changed, 0 unchanged; catalogue version 2\n",
    )
    conn = open_connection(central_db, readonly=True)
    try:
        kept = stored(conn)
    finally:
        conn.close()
    assert {n: row[:3] for n, row in kept.items()} == {
        "1": ("Alex", "cashier", "S001"),
        "7": ("Kim", "supervisor", "S001,S002"),
        "9": ("Jo", "manager", "*"),
    }
    for number, pin in (("1", "1234"), ("7", "80417"), ("9", "000042")):
        pin_hash = kept[number][3]
        assert pin_hash.startswith(f"scrypt${pins.N}${pins.R}${pins.P}$") and pin not in pin_hash
        assert pins.verify(pin, pin_hash) and not pins.verify("1111", pin_hash)
    assert central_db.stat().st_mode & 0o777 == 0o600  # it holds the hashes
    raw = central_db.read_bytes()
    assert b"80417" not in raw and b"000042" not in raw
    for suffix in (".json", ".csv"):
        out = tmp_path / f"out{suffix}"
        assert run(capsys, "export", central_db, out)[0] == 0
        text = out.read_text()
        assert "pin" not in text and "scrypt" not in text and "80417" not in text
        assert "Kim" in text and "S001,S002" in text
    # the export imports back as no change at all (no PIN: the operators keep theirs), and so does the
    # same file with the same PINs (checked against the stored hashes, not hashed anew)
    again = run(capsys, "import", central_db, tmp_path / "out.csv")
    assert again[:2] == (
        0,
        "out.csv: operators 0 added, 0 changed, 3 unchanged; nothing changed; catalogue version stays 2\n",
    )
    assert run(capsys, "import", central_db, source)[1].endswith("nothing changed; catalogue version stays 2\n")
    # a new PIN is a change, of that operator only
    changed = operators_file(tmp_path, [{"number": "1", "name": "Alex", "stores": "S001", "pin": "5678"}], "new.json")
    assert run(capsys, "import", central_db, changed)[1].startswith("new.json: operators 0 added, 1 changed")


def test_the_pin_policy_rejects_the_whole_file_without_repeating_a_pin(
    tmp_path: Path, central_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows: list[dict[str, object]] = [
        {"number": "1", "name": "Alex", "stores": "S001", "pin": "1234"},  # good, yet not applied
        {"number": "2", "name": "Too short", "stores": "S001", "pin": "987"},
        {"number": "3", "name": "Too long", "stores": "S001", "pin": "9876543210987"},
        {"number": "4", "name": "Same digit", "stores": "S001", "pin": "55555"},
        {"number": "5", "name": "Letters", "stores": "S001", "pin": "12a4x"},
        {"number": "6", "name": "A number", "stores": "S001", "pin": 4711},
        {"number": "7", "name": "New, no PIN", "stores": "S001"},
        {"number": "8", "name": "Nowhere", "stores": "S009", "pin": "2468"},
        {"number": "9", "name": "Bad role", "role": "owner", "stores": "*", "pin": "1357"},
    ]
    code, out, err = run(capsys, "import", central_db, operators_file(tmp_path, rows))
    assert (code, out) == (1, "")
    errors = err.splitlines()[:-1]
    assert errors == [
        "operators.json record 1, field pin: a PIN has 4 to 12 digits, not 3",
        "operators.json record 2, field pin: a PIN has 4 to 12 digits, not 13",
        "operators.json record 3, field pin: a PIN may not be one digit repeated",
        "operators.json record 4, field pin: a PIN is digits only",
        "operators.json record 5, field pin: write the PIN as text (in quotes)",
        "operators.json record 6, field pin: required: operator 7 is new",
        "operators.json record 7, field stores: S009 is not a known store",
        "operators.json record 8, field role: 'owner' is not one of cashier, supervisor, manager",
    ]
    for pin in ("987", "9876543210987", "55555", "12a4x", "4711"):
        assert pin not in err
    assert err.splitlines()[-1] == "storepos: operators.json rejected with 8 errors; nothing was applied"
    conn = open_connection(central_db, readonly=True)
    try:
        assert stored(conn) == {}
    finally:
        conn.close()


def test_a_store_is_sent_the_hashes_of_its_own_operators_only(catalog_db: sqlite3.Connection) -> None:
    write(catalog_db, "stores", STORES)
    hashes = {n: pins.hash_pin(p) for n, p in (("1", "1234"), ("7", "8041"), ("9", "4711"))}
    write(
        catalog_db,
        "operators",
        [
            catalog.Operator(number="1", name="Alex", stores="S001", pin_hash=hashes["1"]),
            catalog.Operator(number="7", name="Kim", role="supervisor", stores="S002", pin_hash=hashes["7"]),
            catalog.Operator(number="9", name="Jo", role="manager", stores="*", pin_hash=hashes["9"]),
        ],
    )
    chunk = read(catalog_db, CatalogPull(base=0))
    assert chunk.done and chunk.operators == [
        ("1", "Alex", "cashier", "S001", hashes["1"]),
        ("7", "Kim", "supervisor", "S002", ""),  # works at S002 only: S001 holds no hash of theirs
        ("9", "Jo", "manager", "*", hashes["9"]),
    ]
