"""The catalogue write path under kill -9: a store killed while staging central's snapshot, and again
while building it to go live, keeps selling from what it had, and once restarted holds exactly
central's catalogue, its journal intact."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import trio

from devtools.certificates import provision
from devtools.processes import STORE_TOML, Processes, enrol, storepos
from protocol.frames import CashTender, Error, Login, Receipt, SaleState, Scan
from protocol.gs1 import check_digit
from runtime.database import open_connection
from storenode.sync import replica
from tests.kit import certificates
from till.client import connect

pytestmark = pytest.mark.e2e  # real storepos processes: left out of the fast loop

ITEMS = 20_000
CHUNK_ROWS = 50  # 1,200 chunks for 60,000 rows: a transfer long enough to be caught staging
MILK = "7310000000010"  # in the catalogue file the store seeds itself from


def barcode(n: int) -> str:
    body = f"732{n:09}"
    return body + check_digit(body)


def write_import_files(folder: Path) -> list[tuple[str, Path]]:
    """Central's catalogue as an operator imports it: CSV files, in import order."""
    files = {
        "vat-rates": "code,rate\nFOOD,1200\n",
        "items": "item,name,vat_rate\n" + "".join(f"T{n:05},Test item {n},1200\n" for n in range(ITEMS)),
        "barcodes": "code,item\n" + "".join(f"{barcode(n)},T{n:05}\n" for n in range(ITEMS)),
        "prices": "item,price\n" + "".join(f"T{n:05},{10 + n % 500}.{n % 100:02}\n" for n in range(ITEMS)),
    }
    for kind, text in files.items():
        (folder / f"{kind}.csv").write_text(text)
    return [(kind, folder / f"{kind}.csv") for kind in files]


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    """Another process's database, read as an operator's tool would: read-only, beside its owner."""
    conn = open_connection(db, readonly=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def staging(db: Path) -> tuple[int, int | None, int]:
    """The replica's version, the base of a transfer in progress, and the items staged for it."""
    if not db.exists():
        return 0, None, 0
    try:
        ((version, base),) = query(db, "SELECT version, transfer_base FROM replica")
        ((staged,),) = query(db, "SELECT count(*) FROM stage_items")
    except sqlite3.OperationalError:  # the store has not created its tables yet
        return 0, None, 0
    return version, base, staged


def building(db: Path) -> int | None:
    """The version of a complete transfer being built to go live (None: none, or no such table yet)."""
    try:
        ((ready,),) = query(db, "SELECT ready FROM replica")
    except sqlite3.OperationalError:
        return None
    return int(ready) if ready is not None else None


REGISTERS = {
    "vat-rates": "SELECT code, rate FROM vat_rates ORDER BY code",
    "items": "SELECT item, name, vat_rate, unit, popup, active FROM items ORDER BY item",
    "barcodes": "SELECT code, item FROM barcodes ORDER BY code",
    "prices": "SELECT item, store, starts, ends, price, currency FROM prices ORDER BY item, store, starts, ends",
}


async def test_a_store_killed_while_staging_a_snapshot_resumes_to_exactly_centrals_catalogue(
    tmp_path: Path, procs: Processes
) -> None:
    central_db = tmp_path / "central.db"
    store_db = tmp_path / "store-data" / "store.db"
    with trio.fail_after(120):
        for kind, path in write_import_files(tmp_path):
            done = await storepos("central", "import", kind, str(path), "--db", str(central_db))
            assert done.returncode == 0, done.stderr.decode()
        version = 4  # one per file that changed something
        assert "catalogue version 4" in done.stdout.decode()

        ca = provision(tmp_path, certificates.chain())
        _, central_url = await procs.start(
            "central", "central", "run", "--db", str(central_db), "--port", "0", "--chunk-rows", str(CHUNK_ROWS)
        )
        config = tmp_path / "store.toml"
        config.write_text(STORE_TOML.format(central=central_url, ca=ca))
        enrol(central_db, config)
        store, _ = await procs.start("store", "store", "run", "--config", str(config))
        while staging(store_db)[2] < 1000:  # noqa: ASYNC110 - another process's file: poll it
            await trio.sleep(0.01)
        procs.kill9(store)
        await store.wait()

        # Staged rows survived the kill beside a live replica that did not change.
        live_version, base, staged = staging(store_db)
        assert (live_version, base) == (0, 0) and 1000 <= staged < ITEMS
        assert query(store_db, f"SELECT i.name FROM barcodes b JOIN items i USING (item) WHERE code = '{MILK}'") == [
            ("Milk 1.5% 1 l",)
        ]
        seeded = len(replica.read_catalog(replica.demo_catalog_path()).items)
        assert query(store_db, "SELECT count(*), count(*) FILTER (WHERE item LIKE 'T%') FROM items") == [(seeded, 0)]

        # Killed again once the transfer is complete and being built in slices beside the live tables.
        store, _ = await procs.start("store2", "store", "run", "--config", str(config))
        while building(store_db) is None and staging(store_db)[0] != version:  # noqa: ASYNC110 - another process's file
            await trio.sleep(0.002)
        procs.kill9(store)
        await store.wait()
        cut_building = building(store_db) == version
        if cut_building:  # else it was live before the kill landed: the checks below hold all the same
            assert staging(store_db)[0] == 0
            assert query(store_db, "SELECT count(*), count(*) FILTER (WHERE item LIKE 'T%') FROM items") == [
                (seeded, 0)
            ]

        _, url = await procs.start("store3", "store", "run", "--config", str(config))
        while staging(store_db)[0] != version:  # noqa: ASYNC110 - another process's file: poll it
            await trio.sleep(0.05)
        async with connect(url, lane=1, till="T1") as till:  # it sells from central's catalogue now
            await till.request(Login(operator="1", pin="1234"))
            state = await till.request(Scan(code=barcode(777)))
            assert isinstance(state, SaleState) and state.lines[-1].unit_price == 28777
            gone = await till.request(Scan(code=MILK))
            assert isinstance(gone, Error) and gone.code == "unknown_barcode"
            assert isinstance(await till.request(CashTender(amount=30000)), Receipt)

    assert staging(store_db) == (version, None, 0)
    assert "catalogue transfer on version 0 resumed where it was cut" in (tmp_path / "store2.log").read_text()
    if cut_building:
        assert f"catalogue version {version} is complete here: making it live" in (tmp_path / "store3.log").read_text()
    assert building(store_db) is None
    assert query(store_db, r"SELECT name FROM sqlite_schema WHERE name LIKE 'next\_%' ESCAPE '\'") == []
    for register, sql in REGISTERS.items():
        at_central, at_store = query(central_db, sql), query(store_db, sql)
        assert len(at_store) == (1 if register == "vat-rates" else ITEMS), register
        assert at_store == at_central, register  # the seed from the file is gone: central's data rules
    assert query(store_db, "SELECT price FROM prices WHERE item IN ('T00000', 'T00777', 'T19999') ORDER BY item") == [
        (1000,),
        (28777,),
        (50999,),
    ]
    verify = await storepos("store", "verify-journal", "--config", str(config))
    assert verify.returncode == 0 and "1 receipts" in verify.stdout.decode(), verify.stdout.decode()
