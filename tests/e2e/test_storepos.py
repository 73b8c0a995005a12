"""The real processes, started with the `storepos` command: sell, kill -9 mid-sale, verify, tamper."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
import trio

from devtools.processes import STORE_TOML, Processes, enrol, storepos
from protocol.frames import CashTender, Login, Receipt, SaleState, Scan
from runtime.affinity import available_cpus
from till.client import connect

pytestmark = pytest.mark.e2e  # real storepos processes: left out of the fast loop

MILK, COFFEE, NEWS = "7310000000010", "7310000000034", "7310000000171"


async def test_sell_from_a_scripted_till_and_see_it_at_central(tmp_path: Path, procs: Processes) -> None:
    init = await storepos("central", "init", "--db", str(tmp_path / "central.db"))  # as an operator sets it up
    assert init.returncode == 0, init.stderr.decode()
    _, central_url = await procs.start("central", "central", "run", "--db", str(tmp_path / "central.db"), "--port", "0")
    assert central_url.startswith("wss://")
    config = tmp_path / "store.toml"
    config.write_text(STORE_TOML.format(central=central_url, ca="ca.pem"))  # central's folder is the store's here
    enrol(tmp_path / "central.db", config)
    _, store_url = await procs.start("store", "store", "run", "--config", str(config))
    script = tmp_path / "till.txt"
    script.write_text(f"login 1 1234\n{MILK}\n2*{COFFEE}\nbogus\n999\ntotal\ncash 50\ncash\nquit\n")
    till = await storepos("till", "--store", store_url, "--lane", "2", "--script", str(script))
    out = till.stdout.decode()
    assert till.returncode == 0, till.stderr.decode()
    assert "unknown command 'bogus'" in out and "! unknown_barcode: no item has barcode 999" in out
    assert "! tender_short: tendered 50.00 is less than 156.00 due" in out
    assert "Receipt 1" in out and "-- receipt 1 done, change 0.00" in out

    central_db = str(tmp_path / "central.db")
    with trio.fail_after(20):
        listing = await storepos("central", "sales", "--db", central_db)
        while b"1 sales" not in listing.stdout:  # central is another process: poll it
            await trio.sleep(0.1)
            listing = await storepos("central", "sales", "--db", central_db)
    assert "store E2E: 1 sales, 0 cancelled, total SEK 155.80" in listing.stdout.decode()
    receipts = await storepos("central", "sales", "--db", str(tmp_path / "central.db"), "--store", "E2E")
    assert "E2E lane 2 receipt      1 sale   SEK     155.80" in receipts.stdout.decode()

    status = await storepos("store", "status", "--config", str(config), "--url", store_url)
    text = status.stdout.decode()
    assert status.returncode == 0, status.stderr.decode()
    assert "central link online" in text and "lane 2: last receipt 1" in text and "lane-1" in text
    verify = await storepos("store", "verify-journal", "--config", str(config))
    assert verify.returncode == 0 and "1 receipts" in verify.stdout.decode()


async def test_basket_survives_kill_9_and_journal_catches_tampering(tmp_path: Path, procs: Processes) -> None:
    config = tmp_path / "store.toml"
    config.write_text(STORE_TOML.format(central="", ca=""))  # no central: the store sells alone
    store, url = await procs.start("store", "store", "run", "--config", str(config))
    with trio.fail_after(30):
        async with connect(url, lane=1, till="T1") as till:
            await till.request(Login(operator="1", pin="1234"))
            assert isinstance(await till.request(Scan(code=NEWS)), SaleState)
            for _ in range(2):
                await till.request(Scan(code=MILK))
            assert isinstance(await till.request(CashTender(amount=10000)), Receipt)
            await till.request(Scan(code=COFFEE, qty=3))
            await till.request(Scan(code=MILK))
        procs.kill9(store)
        await store.wait()

        store, url = await procs.start("store2", "store", "run", "--config", str(config))
        async with connect(url, lane=1, till="T1") as till:
            assert till.state is not None
            assert [(x.code, x.qty) for x in till.state.lines] == [(COFFEE, 3), (MILK, 1)]
            assert till.state.operator == "1" and till.state.status == "open"
            await till.request(Login(operator="1", pin="1234"))  # a restart logs everyone out; the sale waits
            receipt = await till.request(CashTender(amount=30000))
            assert isinstance(receipt, Receipt) and receipt.receipt_no == 2

    verify = await storepos("store", "verify-journal", "--config", str(config))
    assert verify.returncode == 0, verify.stdout.decode()
    assert "2 receipts" in verify.stdout.decode()

    db = sqlite3.connect(tmp_path / "store-data" / "store.db")
    try:
        try:
            db.execute("UPDATE journal SET kind = 'sale' WHERE receipt_no = 1")
            raise AssertionError("the journal accepted an UPDATE")
        except sqlite3.IntegrityError as exc:
            assert "append-only" in str(exc)
        db.execute("DROP TRIGGER journal_no_update")  # a determined tamperer
        db.execute("UPDATE journal SET body = CAST(replace(CAST(body AS TEXT), 'Newspaper', 'Newspapes') AS BLOB)")
        db.commit()
    finally:
        db.close()
    verify = await storepos("store", "verify-journal", "--config", str(config))
    assert verify.returncode == 1
    assert "lane 1 receipt 1: hash does not match the record bytes" in verify.stdout.decode()


async def test_a_taken_port_is_reported_plainly_and_no_ready_file_appears(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "store.toml"
        config.write_text(f'store = "X"\nlanes = [1]\n[gateway]\nport = {port}\n')
        ready = tmp_path / "ready.json"
        result = await storepos("store", "run", "--config", str(config), "--ready-file", str(ready))
    assert result.returncode == 1
    assert f"storepos: node stopped: ListenError: [Errno 98] cannot listen for tills on 127.0.0.1:{port}" in (
        result.stderr.decode()
    )
    assert not ready.exists()  # nothing was ever ready to tell a parent process about


def _allowed_cpus(pid: int) -> dict[int, str]:
    """Each thread of a process with the CPUs Linux lets it run on, as /proc lists them ("0-1", "1")."""
    found: dict[int, str] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for line in (task / "status").read_text().splitlines():
            if line.startswith("Cpus_allowed_list:"):
                found[int(task.name)] = line.split(":", 1)[1].strip()
    return found


@pytest.mark.skipif(len(available_cpus()) < 2 or not Path("/proc/self/task").exists(), reason="needs Linux, 2 CPUs")
async def test_a_store_kept_on_one_cpu_runs_every_thread_there_and_sells(tmp_path: Path, procs: Processes) -> None:
    cpu = max(available_cpus())
    config = tmp_path / "store.toml"
    toml = STORE_TOML.format(central="", ca="").replace(
        'data_dir = "store-data"', f'data_dir = "store-data"\ncpu = {cpu}'
    )
    config.write_text(toml)
    store, url = await procs.start("store", "store", "run", "--config", str(config))
    with trio.fail_after(30):
        async with connect(url, lane=1, till="T1") as till:  # the database thread runs: it answers scans
            await till.request(Login(operator="1", pin="1234"))
            assert isinstance(await till.request(Scan(code=MILK)), SaleState)
            assert isinstance(await till.request(CashTender(amount=2000)), Receipt)
    threads = _allowed_cpus(store.pid)
    assert len(threads) >= 2, threads  # the event loop and the database thread at least
    assert set(threads.values()) == {str(cpu)}, threads


async def test_a_store_refused_its_cpu_or_catalogue_says_so_and_exits_2(tmp_path: Path) -> None:
    allowed = ", ".join(map(str, sorted(available_cpus())))
    catalog = tmp_path / "catalog.json"
    catalog.write_text('{"items": 5}')
    cases = [
        ("cpu = -1", "cpu must be a CPU number (0 or more), not -1"),
        (f'catalog = "{catalog}"', "storepos: catalogue refused: "),
    ]
    if hasattr(os, "sched_setaffinity"):  # elsewhere any `cpu` is refused, with another message
        cases.append(("cpu = 4095", f"storepos: cpu 4095 is not available to this process (available: {allowed})"))
    for setting, said in cases:
        config = tmp_path / "store.toml"
        config.write_text(f'store = "X"\nlanes = [1]\ndata_dir = "store-data"\n{setting}\n[gateway]\nport = 0\n')
        result = await storepos("store", "run", "--config", str(config))
        assert (result.returncode, result.stdout) == (2, b""), (setting, result)
        assert said in result.stderr.decode() and "Traceback" not in result.stderr.decode(), (setting, result)
        assert not (tmp_path / "store-data" / "store.db").exists()  # refused before anything was written
