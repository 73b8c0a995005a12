"""A chain-sized catalogue: central's import, the snapshot to a fresh store, price changes reaching it,
scans against it, and the store's memory.

    .venv/bin/python bench/catalog_scale.py [--items 1000000] [--small 1000] [--changes 10000]
                                            [--scans 3000] [--out bench/results/catalog_scale.json]

1. Files: --items items (1 in 3 at 25 % VAT), 1.2 barcodes per item (EAN-13, valid check digits), one
   chain price each, written as the CSV an operator imports.
2. Import: `storepos central import vat-rates|items|barcodes|prices FILE` as the operator runs it, each
   a subprocess on a fresh central database; the seconds of each.
3. Snapshot: central (`storepos central run`) on that database, then a store node that has never seen
   central (`storepos store run`). Timed from starting the store process until its status (asked over
   its till gateway) reports the replica at central's version; the rows are counted in the store's
   database afterwards. Floor in the same run: the same rows read from central's file and inserted into
   a fresh store database (the replica's tables, search index and all) by one process, no network.
4. Price changes: --changes chain prices changed in one import (the operator's command, in this process
   so the instant of its commit is known), then timed from that commit until the store reports the new
   version.
5. Scans: a second central and store with a --small item catalogue beside the big ones; a till on each
   scans random barcodes of its catalogue, in alternating blocks of 100 so machine noise falls on both
   alike (a sale is cancelled every 20 lines, so baskets stay small). p50/p99 of each, and the ratio.
6. The store node's peak RSS (VmHWM) at the end, and samples during the snapshot.

Targets (issue 3): snapshot <= 60 s; price changes visible <= 2 s; scan p99 with the big catalogue
within 10 % of the small one; store peak RSS <= 250 MB.

    .venv/bin/python bench/catalog_scale.py --during-apply [--items 1000000] [--lanes 2] [--pace-ms 50]

Scans while the store applies a large catalogue change (--during-apply, instead of the steps above):
--lanes tills each scan a random barcode every --pace-ms (a sale cancelled every 20 lines; a scan
held up delays the ones due after it, and their latency counts from when they were due) from the
moment the store is up, through (a) the fresh --items snapshot (the store seeded from the demo
catalogue until it is live; its barcodes, then the big ones, are scanned), (b) --quiet-s seconds of
a quiet store (the baseline), (c) a change of every price of the catalogue, imported at central
in this process, from its commit until the store reports the version, and (d) --after-s seconds
after that (the store deleting what the change replaced). Scan p50/p99/max of each window, each
window's length, and of (a) and (c) the time from the transfer complete to live where the store shows
it (build_and_swap_s: a store that builds the new version beside the live one shows replica.ready).
Central's node is stopped while (c) is imported (it would wait for its database longer than it may)
and started again on its port. Target: scan p99 during the apply <= 50 ms.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root: see bench/processes.py

import argparse
import os
import random
import sqlite3
import tempfile
import time
import tomllib
from collections.abc import Iterator
from typing import Any

import trio

from bench.measurements import (
    Window,
    add_out_option,
    cpu_seconds,
    fmt,
    latency_stats,
    machine_info,
    memory_mb,
    new_report,
    warn_if_disturbed,
    write_report,
)
from bench.processes import BenchError, Fleet, central_tls, node_argv, run_script, store_toml
from central.registers import catalog, imports
from devtools.processes import enrol
from protocol.frames import CancelSale, Error, Login, SaleState, Scan, Status
from protocol.gs1 import check_digit
from runtime.database import migrate, open_connection
from storenode.schema import MIGRATIONS as STORE_MIGRATIONS
from storenode.sync import replica
from till.client import TillClient, connect

KINDS = ("vat-rates", "items", "barcodes", "prices")
SCAN_BLOCK = 100
LINES_PER_SALE = 20
TARGETS = {"snapshot_s": 60.0, "changes_visible_s": 2.0, "scan_p99_ratio": 1.10, "store_rss_mb": 250.0}
APPLY_TARGETS = {"scan_p99_during_apply_ms": 50.0}


def code(prefix: str, n: int) -> str:
    body = f"{prefix}{n:010}"
    return body + check_digit(body)


def barcode_rows(items: int) -> Iterator[tuple[str, int]]:
    """(barcode, item number): every item's own barcode, and a second one for every 5th item (1.2 per item)."""
    yield from ((code("73", n), n) for n in range(items))
    yield from ((code("74", n), n) for n in range(0, items, 5))


def barcodes_of(items: int) -> list[str]:
    return [barcode for barcode, _ in barcode_rows(items)]


def write_files(folder: Path, items: int) -> dict[str, Path]:
    paths = {kind: folder / f"{kind}.csv" for kind in KINDS}
    paths["vat-rates"].write_text("code,rate\nA,2500\nB,1200\n")
    with paths["items"].open("w") as f:
        f.write("item,name,receipt_text,item_group,vat_rate,unit,info,warranty,popup,active\n")
        for n in range(items):
            f.write(
                f"I{n:07},Item {n} brand{n % 997} flavour{n % 113},,,{2500 if n % 3 == 0 else 1200},piece,,,,true\n"
            )
    with paths["barcodes"].open("w") as f:
        f.write("code,item\n")
        f.writelines(f"{barcode},I{n:07}\n" for barcode, n in barcode_rows(items))
    with paths["prices"].open("w") as f:
        f.write("item,store,start,end,price\n")
        f.writelines(f"I{n:07},,,,{10 + n % 500}.{n % 100:02}\n" for n in range(items))
    return paths


def write_changes(folder: Path, items: int, changes: int, rng: random.Random) -> Path:
    path = folder / "changes.csv"
    with path.open("w") as f:
        f.write("item,store,start,end,price\n")
        f.writelines(f"I{n:07},,,,{600 + n % 300}.{n % 100:02}\n" for n in rng.sample(range(items), changes))
    return path


async def import_all(db: Path, paths: dict[str, Path], folder: Path) -> dict[str, float]:
    seconds: dict[str, float] = {}
    for kind in KINDS:
        started = time.perf_counter()
        done = await trio.run_process(
            node_argv("central", "import", "--db", str(db), kind, str(paths[kind])),
            cwd=folder,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        seconds[kind] = time.perf_counter() - started
        if done.returncode != 0:
            raise BenchError(f"import {kind} failed: {done.stderr.decode()[-2000:]}{done.stdout.decode()[-2000:]}")
    return seconds


async def until_version(url: str, version: int, pid: int, rss: list[float], poll: float = 0.02) -> float:
    """The instant (time.perf_counter) the store at `url` first reports `version`, sampling its RSS."""
    async with connect(url, lane=0, attach=False) as client:
        while True:
            rss.append(memory_mb(pid).get("VmRSS", 0.0))
            answer = await client.status()
            if isinstance(answer, Status) and answer.replica >= version:
                return time.perf_counter()
            await trio.sleep(poll)


def central_version(db: Path) -> int:
    conn = open_connection(db, readonly=True)
    try:
        return catalog.version(conn)
    finally:
        conn.close()


def counts(db: Path, tables: tuple[str, ...] = ("items", "barcodes", "prices")) -> dict[str, int]:
    conn = open_connection(db, readonly=True)
    try:
        return {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in tables}
    finally:
        conn.close()


def copy_floor(central_db: Path, target: Path, batch: int = 5000) -> float:
    """The SQLite work a snapshot cannot avoid: every row read from central, written into the replica's
    tables (search index included) of a fresh store database, in one transaction, by one process."""
    started = time.perf_counter()
    src = open_connection(central_db, readonly=True)
    dst = open_connection(target)
    try:
        migrate(dst, STORE_MIGRATIONS)
        dst.execute("BEGIN IMMEDIATE")
        for table, columns in replica.TABLES.items():
            names = ", ".join(columns)
            cursor = src.execute(f"SELECT {names} FROM {table}")
            while rows := cursor.fetchmany(batch):
                dst.executemany(f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})", rows)
        dst.execute("COMMIT")
    finally:
        src.close()
        dst.close()
    return time.perf_counter() - started


async def start_pair(
    fleet: Fleet, folder: Path, name: str, db: Path, lanes: int = 1
) -> tuple[trio.Process, trio.Process, str, float]:
    """Central on `db` and a fresh store linked to it; returns both, the store's url and the instant
    (time.perf_counter) the store process was started."""
    tls_args, ca = central_tls(db.parent)  # a restart of this central (same folder) finds the same certificate
    argv = node_argv("central", "run", "--db", str(db), "--port", "0", *tls_args)
    central, central_url = await fleet.start(f"{name}-central", argv, folder)
    toml = store_toml(f"S-{name}", f"Store {name}", "SEK", range(1, lanes + 1), central=central_url, ca=ca)
    (folder / "store.toml").write_text(toml)
    enrol(db, folder / "store.toml")
    started = time.perf_counter()
    store, url = await fleet.start(f"{name}-store", node_argv("store", "run", "--config", "store.toml"), folder)
    return central, store, url, started


async def scan_block(
    till: TillClient, codes: list[str], rng: random.Random, samples: list[int], lines: list[int]
) -> None:
    for _ in range(SCAN_BLOCK):
        started = time.perf_counter_ns()
        answer = await till.request(Scan(code=rng.choice(codes)))
        samples.append(time.perf_counter_ns() - started)
        if not isinstance(answer, SaleState):
            raise BenchError(f"scan refused: {answer}")
        lines[0] += 1
        if lines[0] >= LINES_PER_SALE:
            await till.request(CancelSale())
            lines[0] = 0


async def scans(
    big_url: str, small_url: str, big_codes: list[str], small_codes: list[str], total: int
) -> dict[str, Any]:
    rng = random.Random(7)
    samples: dict[str, list[int]] = {"big": [], "small": []}
    async with connect(big_url, lane=1, till="TB") as big, connect(small_url, lane=1, till="TS") as small:
        tills = {"big": (big, big_codes, [0]), "small": (small, small_codes, [0])}
        for till, _, _ in tills.values():
            await till.request(Login(operator="1", pin="1234"))
        for till, codes, lines in tills.values():  # warm-up, not measured
            await scan_block(till, codes, rng, [], lines)
        order = ["big", "small"]
        for block in range(max(1, total // SCAN_BLOCK)):
            for name in order if block % 2 == 0 else reversed(order):
                till, codes, lines = tills[name]
                await scan_block(till, codes, rng, samples[name], lines)
    out = {name: latency_stats(s) for name, s in samples.items()}
    out["p99_ratio"] = out["big"]["p99_ms"] / out["small"]["p99_ms"]
    out["p50_ratio"] = out["big"]["p50_ms"] / out["small"]["p50_ms"]
    return out


async def bench(args: argparse.Namespace) -> int:
    fleet = Fleet()
    rng = random.Random(42)
    result: dict[str, Any] = {"items": args.items, "barcodes": args.items + len(range(0, args.items, 5))}
    with tempfile.TemporaryDirectory(prefix="storepos-bench-catalog-") as work:
        folder = Path(work)
        try:
            with trio.fail_after(args.timeout):
                t = time.perf_counter()
                for sub in ("big-files", "small-files", "big", "small"):
                    (folder / sub).mkdir()
                big_files = await trio.to_thread.run_sync(write_files, folder / "big-files", args.items)
                small_files = await trio.to_thread.run_sync(write_files, folder / "small-files", args.small)
                result["files_s"] = time.perf_counter() - t
                print(f"files: {args.items:,} items written in {result['files_s']:.1f} s", flush=True)

                big_db, small_db = folder / "big" / "central.db", folder / "small" / "central.db"
                window = Window({})
                window.begin()
                result["import_s"] = await import_all(big_db, big_files, folder / "big")
                window.end()
                result["import_window"] = window.record()
                result["import_total_s"] = sum(result["import_s"].values())
                each = ", ".join(f"{k} {v:.1f}" for k, v in result["import_s"].items())
                print(f"import: {result['import_total_s']:.1f} s ({each})", flush=True)
                await import_all(small_db, small_files, folder / "small")
                version = central_version(big_db)

                result["copy_floor_s"] = await trio.to_thread.run_sync(copy_floor, big_db, folder / "floor.db")
                print(
                    f"floor: the same rows into a fresh store database by one process: {result['copy_floor_s']:.1f} s",
                    flush=True,
                )

                big_central, big_store, big_url, started = await start_pair(fleet, folder / "big", "big", big_db)
                window = Window({"store": big_store.pid, "central": big_central.pid})
                window.begin()
                rss: list[float] = []
                listening = time.perf_counter()
                reached = await until_version(big_url, version, big_store.pid, rss, poll=0.2)
                window.end()
                result["snapshot"] = {
                    "s": reached - started,
                    "store_start_s": listening - started,
                    "ratio_to_floor": (reached - started) / result["copy_floor_s"],
                    "rss_max_sampled_mb": max(rss, default=0.0),
                    "window": window.record(),
                    "rows": counts(folder / "big" / "store-data" / "store.db"),
                }
                warn_if_disturbed("snapshot", result["snapshot"]["window"])
                snap = result["snapshot"]
                print(
                    f"snapshot: {snap['s']:.1f} s to a fresh store ({snap['ratio_to_floor']:.2f}x the floor), "
                    f"rows {snap['rows']}",
                    flush=True,
                )
                expected = {"items": args.items, "barcodes": result["barcodes"], "prices": args.items}
                if result["snapshot"]["rows"] != expected:
                    raise BenchError(f"the store holds {result['snapshot']['rows']}, central {expected}")

                changes = write_changes(folder, args.items, args.changes, rng)

                def commit_changes() -> tuple[float, float, int]:
                    conn = imports.open_catalog(big_db, create=False)
                    try:
                        t0 = time.perf_counter()
                        applied = imports.import_file(conn, "prices", changes, currency="SEK")
                        return t0, time.perf_counter(), applied.version
                    finally:
                        conn.close()

                t0, committed, new_version = await trio.to_thread.run_sync(commit_changes)
                visible = await until_version(big_url, new_version, big_store.pid, rss, poll=0.01) - committed
                result["changes"] = {
                    "count": args.changes,
                    "import_s": committed - t0,
                    "visible_after_commit_s": visible,
                    "version": new_version,
                }
                print(
                    f"{args.changes:,} price changes: import {committed - t0:.2f} s, "
                    f"visible at the store {visible:.2f} s after commit",
                    flush=True,
                )

                small_central, small_store, small_url, _ = await start_pair(fleet, folder / "small", "small", small_db)
                await until_version(small_url, central_version(small_db), small_store.pid, [], poll=0.05)
                scan_window = Window(  # every process of this run, so "other load" means someone else's
                    {
                        "store": big_store.pid,
                        "small-store": small_store.pid,
                        "central": big_central.pid,
                        "small-central": small_central.pid,
                        "client": os.getpid(),
                    }
                )
                scan_window.begin()
                result["scans"] = await scans(
                    big_url, small_url, barcodes_of(args.items), barcodes_of(args.small), args.scans
                )
                scan_window.end()
                result["scans"]["window"] = scan_window.record()
                warn_if_disturbed("scans", result["scans"]["window"])
                s = result["scans"]
                print(
                    f"scans: {args.items:,} items p50 {fmt(s['big']['p50_ms'])} p99 {fmt(s['big']['p99_ms'])} ms; "
                    f"{args.small:,} items p50 {fmt(s['small']['p50_ms'])} p99 {fmt(s['small']['p99_ms'])} ms; "
                    f"p99 ratio {s['p99_ratio']:.3f}",
                    flush=True,
                )
                result["store_peak_rss_mb"] = memory_mb(big_store.pid).get("VmHWM")
                print(f"store node peak RSS: {fmt(result['store_peak_rss_mb'], '.0f')} MB", flush=True)
        finally:
            await fleet.stop_all()
    result["verdicts"] = {
        "snapshot": result["snapshot"]["s"] <= TARGETS["snapshot_s"],
        "changes_visible": result["changes"]["visible_after_commit_s"] <= TARGETS["changes_visible_s"],
        "scan_p99": result["scans"]["p99_ratio"] <= TARGETS["scan_p99_ratio"],
        "store_rss": (result["store_peak_rss_mb"] or 0) <= TARGETS["store_rss_mb"],
    }
    print("targets: " + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in result["verdicts"].items()))
    write_report(args.out, new_report("catalog_scale", machine_info("trio", "msgspec"), targets=TARGETS, result=result))
    return 0


class PacedScans:
    """Tills scanning at a steady pace, each scan's due time (time.perf_counter) and latencies kept, so
    any window of the run can be summed up afterwards. A scan is due every pace whether or not the one
    before has been answered (a queue of customers does not wait): its latency counts from when it was
    due, so a stall of the store shows as the many scans it held up, not as one slow scan. The service
    time (from sending to the answer) is kept beside it."""

    def __init__(self, url: str, lanes: int, pace_s: float, codes: list[str]) -> None:
        self.url = url
        self.lanes = lanes
        self.pace_s = pace_s
        self.codes = codes  # replaced when the catalogue the store sells from changes
        self.samples: list[tuple[float, int, int]] = []  # (due, from due ns, service ns)
        self.unknown = 0  # scans of a barcode the store did not (or no longer) know: timed all the same

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            for lane in range(1, self.lanes + 1):
                await nursery.start(self._lane, lane)
            task_status.started()

    async def _lane(self, lane: int, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        rng = random.Random(lane)
        async with connect(self.url, lane=lane, till=f"T{lane}") as till:
            await till.request(Login(operator="1", pin="1234"))
            task_status.started()
            lines = 0
            due = time.perf_counter()
            while True:
                started = time.perf_counter()
                answer = await till.request(Scan(code=rng.choice(self.codes)))
                done = time.perf_counter()
                self.samples.append((due, int((done - due) * 1e9), int((done - started) * 1e9)))
                if isinstance(answer, Error) and answer.code == "unknown_barcode":
                    self.unknown += 1
                elif not isinstance(answer, SaleState):
                    raise BenchError(f"scan refused: {answer}")
                else:
                    lines += 1
                if lines >= LINES_PER_SALE:
                    await till.request(CancelSale())
                    lines = 0
                due += self.pace_s
                await trio.sleep_until(trio.current_time() + (due - time.perf_counter()))

    def window(self, start: float, end: float) -> dict[str, Any]:
        inside = [(at, ns, service) for at, ns, service in self.samples if start <= at < end]
        slowest = sorted(inside, key=lambda s: -s[1])[:5]  # when (s before the window's end) and how slow
        return {
            "s": end - start,
            **latency_stats([ns for _, ns, _ in inside], window_s=end - start),
            "service": latency_stats([service for _, _, service in inside]),
            "slowest": [(round(at - end, 3), round(ns / 1e6, 1)) for at, ns, _ in slowest],
        }


async def watch_builds(db: Path, seen: dict[int, float], poll: float = 0.02) -> None:
    """The instant (time.perf_counter) a store first shows each complete transfer being built to go
    live (replica.ready; a store without that column applies in the transfer's last job, unseen)."""
    while True:
        try:
            conn = open_connection(db, readonly=True)
            try:
                (ready,) = conn.execute("SELECT ready FROM replica").fetchone()
            finally:
                conn.close()
        except sqlite3.Error:
            ready = None
        if ready is not None and ready not in seen:
            seen[ready] = time.perf_counter()
        await trio.sleep(poll)


def all_prices_changed(folder: Path, items: int) -> Path:
    """A price file changing every chain price of the catalogue written by write_files."""
    path = folder / "all-prices.csv"
    with path.open("w") as f:
        f.write("item,store,start,end,price\n")
        f.writelines(f"I{n:07},,,,{700 + n % 300}.{n % 100:02}\n" for n in range(items))
    return path


async def bench_apply(args: argparse.Namespace) -> int:
    """Scans while a store applies a fresh snapshot and a change of every price (see the docstring)."""
    fleet = Fleet()
    result: dict[str, Any] = {"items": args.items, "lanes": args.lanes, "pace_ms": args.pace_ms}
    seed = replica.read_catalog(replica.demo_catalog_path()).items
    demo = [code for item in seed if item.unit == "piece" and not item.popup for code in item.barcodes]
    with tempfile.TemporaryDirectory(prefix="storepos-bench-apply-") as work:
        folder = Path(work)
        try:
            with trio.fail_after(args.timeout):
                t = time.perf_counter()
                for sub in ("files", "node"):
                    (folder / sub).mkdir()
                files = await trio.to_thread.run_sync(write_files, folder / "files", args.items)
                db = folder / "node" / "central.db"
                result["import_s"] = sum((await import_all(db, files, folder / "node")).values())
                print(
                    f"central: {args.items:,} items written and imported in {time.perf_counter() - t:.1f} s", flush=True
                )

                # Made before the scans start: done meanwhile, they would hold up this process's own tills.
                codes = await trio.to_thread.run_sync(barcodes_of, args.items)
                changes = await trio.to_thread.run_sync(all_prices_changed, folder, args.items)
                central, store, url, started = await start_pair(fleet, folder / "node", "apply", db, args.lanes)
                central_url = tomllib.loads((folder / "node" / "store.toml").read_text())["central"]["url"]
                scans = PacedScans(url, args.lanes, args.pace_ms / 1000, demo)
                async with trio.open_nursery() as nursery:
                    await nursery.start(scans.run)
                    builds: dict[int, float] = {}
                    nursery.start_soon(watch_builds, folder / "node" / "store-data" / "store.db", builds)
                    scanning = time.perf_counter()
                    # Each window is summed up at the end: the scans a stall held up are answered after it.
                    bounds: dict[str, tuple[float, float]] = {}
                    live = await until_version(url, central_version(db), store.pid, [], poll=0.05)
                    scans.codes = codes
                    bounds["snapshot"] = (scanning, live)
                    built = {"snapshot": live - builds.get(central_version(db), live)}
                    store_start_to_live = live - started
                    await trio.sleep(args.after_s)  # the store deletes what the snapshot replaced
                    quiet = time.perf_counter()
                    await trio.sleep(args.quiet_s)
                    bounds["quiet"] = (quiet, time.perf_counter())

                    def commit_changes() -> tuple[float, int]:
                        conn = imports.open_catalog(db, create=False)
                        try:
                            applied = imports.import_file(conn, "prices", changes, currency="SEK")
                            return time.perf_counter(), applied.version
                        finally:
                            conn.close()

                    # Central's node stopped meanwhile: an import of every price holds central's database
                    # longer than its node waits for a lock (the sales the tills send it keep it writing).
                    await fleet.stop(central)
                    committed, version = await trio.to_thread.run_sync(commit_changes)
                    port = central_url.rsplit(":", 1)[1]
                    argv = node_argv("central", "run", "--db", str(db), "--port", port)
                    central, _ = await fleet.start("apply-central-again", argv, folder / "node")
                    back = time.perf_counter()
                    live = await until_version(url, version, store.pid, [], poll=0.05)
                    bounds["all_prices"] = (committed, live)
                    built["all_prices"] = live - builds.get(version, live)
                    await trio.sleep(args.after_s)
                    bounds["after_all_prices"] = (live, time.perf_counter())
                    nursery.cancel_scope.cancel()
                windows = {name: scans.window(start, end) for name, (start, end) in bounds.items()}
                windows["snapshot"]["store_start_to_live_s"] = store_start_to_live
                windows["all_prices"]["central_back_after_commit_s"] = back - committed
                for name, seconds in built.items():  # 0: applied within the transfer's last job
                    windows[name]["build_and_swap_s"] = seconds
                result["windows"] = windows
                result["unknown_barcode_scans"] = scans.unknown
                result["store_peak_rss_mb"] = memory_mb(store.pid).get("VmHWM")
                result["central_pid_cpu_s"] = cpu_seconds(central.pid)
        finally:
            await fleet.stop_all()
    for name, w in result["windows"].items():
        built = f" (of which built and swapped in {w['build_and_swap_s']:.1f} s)" if "build_and_swap_s" in w else ""
        print(
            f"{name}: {w['s']:.1f} s{built}, {w['count']} scans, p50 {fmt(w.get('p50_ms'))} "
            f"p99 {fmt(w.get('p99_ms'))} max {fmt(w.get('max_ms'))} ms",
            flush=True,
        )
    worst = max(result["windows"][w].get("p99_ms", 0.0) for w in ("snapshot", "all_prices"))
    result["verdicts"] = {"scan_p99_during_apply": worst <= APPLY_TARGETS["scan_p99_during_apply_ms"]}
    print("targets: " + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in result["verdicts"].items()))
    report = new_report("catalog_scale_apply", machine_info("trio", "msgspec"), targets=APPLY_TARGETS, result=result)
    write_report(args.out, report)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="Central import, snapshot, price changes and scans with a chain-sized catalogue."
    )
    p.add_argument("--items", type=int, default=1_000_000, help="items in the big catalogue (1.2 barcodes each)")
    p.add_argument("--small", type=int, default=1_000, help="items in the small catalogue scans are compared with")
    p.add_argument("--changes", type=int, default=10_000, help="chain prices changed in one import")
    p.add_argument("--scans", type=int, default=3_000, help="measured scans per store")
    p.add_argument("--timeout", type=float, default=1_800.0, help="bound on the whole run, seconds")
    p.add_argument(
        "--during-apply",
        action="store_true",
        help="instead: scans at a steady pace while the store applies a fresh snapshot and a change of every price",
    )
    p.add_argument("--lanes", type=int, default=2, help="--during-apply: tills scanning, one per lane")
    p.add_argument("--pace-ms", type=float, default=50.0, help="--during-apply: each till scans once per this")
    p.add_argument("--quiet-s", type=float, default=10.0, help="--during-apply: the quiet baseline, seconds")
    p.add_argument("--after-s", type=float, default=5.0, help="--during-apply: scans kept after each apply")
    add_out_option(p, "catalog_scale")
    args = p.parse_args(argv)
    if args.during_apply:
        if args.out == p.get_default("out"):
            args.out = Path(str(args.out).replace("catalog_scale.json", "catalog_scale_apply.json"))
        return run_script("catalog_scale_apply", bench_apply, args, stop_on_signals=True)
    if args.items < args.changes or args.small < 1 or args.scans < SCAN_BLOCK:
        p.error("--items must be at least --changes, --small at least 1, --scans at least 100")
    return run_script("catalog_scale", bench, args, stop_on_signals=True)


if __name__ == "__main__":
    sys.exit(main())
