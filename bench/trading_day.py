"""A simulated trading day at 10 lanes against plain scanning in the same run, and receipt lookup among
1,000,000 journal receipts (issue 14's benchmark).

    .venv/bin/python bench/trading_day.py [--lanes 10] [--seconds 15] [--repeat 2] [--receipts 1000000]

Starts a real central and store node as bench/scan_latency.py does (enrolled tills over wss, the store on
one CPU), then measures in turn, `--repeat` times, two paced phases on the same lanes, each till scanning
once every `--pace-ms` from a seeded random phase, sales of 5 to 15 lines closed in cash:

- plain: scan_latency's own paced till, nothing but scans and closes;
- day: the same pace and sale sizes, with the cashier's day mixed in by a seeded schedule per lane: a line
  discount (1 sale in 5, with a reason code), a sale discount (1 in 10), park and resume (1 in 8), a copy
  of the receipt just printed (1 in 10), a receipt looked up by id (1 in 10), a return of one line of an
  earlier receipt refunded in cash (1 in 10), a cash drop to the safe (every 20 sales).

Scan latency is the round trip of each Scan from sending (the other actions are timed apart, by action);
close is Total + CashTender. Judged: the day's scan p50 and p99 and close p50 within 10 % of plain's, each
as the median over the repeats (the phases alternate, so drifting load hits both). Then receipt lookup:
bench/receipt_lookup.py builds a store database of `--receipts` journal receipts (or reuses `--db`) and
times lookups by id, period, amount and card: p99 <= 20 ms each, against a bare indexed SELECT floor.

Printed: both tables and the verdicts. Written: everything to JSON (`--out`).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root first: see bench/processes.py

import argparse
import json
import random
import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from importlib import resources
from typing import Any

import trio
from trio_websocket import ConnectionClosed

from bench import scan_latency
from bench.measurements import (
    add_out_option,
    disturbed,
    fmt,
    latency_stats,
    machine_info,
    new_report,
    print_disturbed,
    write_report,
)
from bench.processes import BenchError, Fleet, central_tls, node_argv, run_script, store_toml
from bench.scan_latency import (
    CLIENTS,
    OPEN_STATUSES,
    Gate,
    PhaseSpec,
    Tally,
    ask,
    close_sale,
    demo_catalog,
    paced_schedule,
    sale_size,
)
from devtools.processes import enrol
from protocol.frames import (
    CancelSale,
    CashAmount,
    CashDrop,
    CashTender,
    CopyReceipt,
    Error,
    GiveDiscount,
    Login,
    Park,
    Receipt,
    ReceiptList,
    ReceiptQuery,
    RefundOf,
    Resume,
    ReturnItem,
    SaleState,
    Scan,
    TillFrame,
    Total,
)
from till.client import TillClient, TillDisconnected, connect

SCRIPT = Path(__file__).resolve()
STORE = "BENCH01"
LANES = 10
TOLERANCE = 0.10  # the day's scan and close latencies within 10 % of plain scanning's
LOOKUP_P99_MS = 20.0
ACTIONS: dict[str, list[int]] = defaultdict(list)  # the day phase's other actions: name -> round trips (ns)


def discount_reason() -> str:
    """A reason code from the catalogue the bench store sells from (the demo's: central holds none here)."""
    data = json.loads((resources.files("storenode") / "data" / "demo_catalog.json").read_text())
    reasons = data.get("discount_reasons") or []
    if not reasons:
        raise BenchError("the demo catalogue has no discount reason to give")
    return str(reasons[0]["code"])


async def timed(name: str, till: TillClient, command: Any, tally: Tally) -> TillFrame:
    t0 = time.perf_counter_ns()
    answer = await ask(till, command)
    ACTIONS[name].append(time.perf_counter_ns() - t0)
    tally.requests += 1
    if isinstance(answer, Error):
        tally.wrong(answer, name)
    return answer


async def day_till(spec: PhaseSpec, lane: int, gate: Gate, tally: Tally) -> None:
    """scan_latency's paced till, with the cashier's day between its sales (see the module docstring)."""
    barcodes, operator, pin = demo_catalog()
    reason = discount_reason()
    rng = random.Random(1000 + lane)  # what this lane does around each sale: the same every run
    async with connect(spec.url, lane, f"bench-{lane}") as till:
        answer = await ask(till, Login(operator=operator, pin=pin))
        if not isinstance(answer, SaleState):
            raise BenchError(f"lane {lane}: login refused: {answer}")
        if answer.status in OPEN_STATUSES:
            await ask(till, CancelSale())
        gate.ready()
        await gate.go.wait()
        schedule = paced_schedule(spec, lane)
        sizes = random.Random(-lane)
        size = sale_size(spec, sizes)
        receipts: list[tuple[str, str]] = []  # (receipt id, a barcode sold on it) of this lane's sales
        k = lines = sales = 0
        try:
            while k < len(schedule):
                await trio.sleep_until(gate.go_at + schedule[k])
                scan = Scan(code=barcodes[k % len(barcodes)])
                k += 1
                t0 = time.perf_counter_ns()
                answer = await ask(till, scan)
                tally.round_trips_ns.append(time.perf_counter_ns() - t0)
                tally.requests += 1
                if type(answer) is not SaleState:
                    tally.wrong(answer, "scan")
                    continue
                lines = len(answer.lines)
                if lines < size:
                    continue
                if rng.random() < 0.2:
                    await timed("line discount", till, GiveDiscount(line=1, percent=500, reason=reason), tally)
                if rng.random() < 0.1:
                    await timed("sale discount", till, GiveDiscount(amount=100, reason=reason), tally)
                if rng.random() < 0.125:
                    parked = await timed("park", till, Park(), tally)
                    if isinstance(parked, SaleState) and " as " in parked.message:
                        short = parked.message.split(" as ", 1)[1].split()[0]
                        await timed("resume", till, Resume(id=short), tally)
                t0 = time.perf_counter_ns()
                answer = await close_sale(till)
                tally.closes_ns.append(time.perf_counter_ns() - t0)
                tally.requests += 2
                if not isinstance(answer, Receipt):
                    tally.wrong(answer, "sale")
                    continue
                tally.sales += 1
                sales += 1
                lines = 0
                size = sale_size(spec, sizes)
                receipt = f"{STORE}-{answer.lane}-{answer.receipt_no}"
                receipts.append((receipt, barcodes[(k - 1) % len(barcodes)]))
                if rng.random() < 0.1:
                    await timed("copy", till, CopyReceipt(receipt=receipt), tally)
                if rng.random() < 0.1:
                    found = await timed("lookup by id", till, ReceiptQuery(receipt=rng.choice(receipts)[0]), tally)
                    if not isinstance(found, ReceiptList | Error):
                        tally.errors["lookup: unexpected answer"] += 1
                if len(receipts) > 1 and rng.random() < 0.1:
                    original, code = receipts.pop(0)  # each earlier receipt is returned from at most once
                    await timed("refund of receipt", till, RefundOf(receipt=original), tally)
                    await timed("return", till, ReturnItem(code=code), tally)
                    await ask(till, Total())
                    done = await timed("refund close", till, CashTender(amount=0), tally)
                    if not isinstance(done, Receipt):
                        await ask(till, CancelSale())
                if sales % 20 == 0:
                    await timed("cash drop", till, CashDrop(amounts=[CashAmount(amount=10_000)]), tally)
        except (trio.TooSlowError, TillDisconnected, ConnectionClosed) as exc:
            tally.errors[f"lane: {type(exc).__name__}"] += 1
            return
        finally:
            gate.finished()
        if lines:
            await ask(till, CancelSale())


CLIENTS["day"] = day_till


async def lookup_bench(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """bench/receipt_lookup.py in its own process (it builds a big database), its JSON read back."""
    out = folder / "receipt_lookup.json"
    argv = [sys.executable, str(SCRIPT.parent / "receipt_lookup.py"), "--out", str(out)]
    argv += ["--db", str(args.db)] if args.db else ["--db", str(folder / "receipts.db")]
    argv += ["--receipts", str(args.receipts)]
    done = await trio.run_process(argv, check=False)
    if done.returncode != 0 or not out.exists():
        return {"error": f"receipt_lookup.py exited {done.returncode}"}
    loaded: dict[str, Any] = json.loads(out.read_text())
    return loaded


def summary(record: dict[str, Any]) -> dict[str, float | None]:
    rt, close = record["round_trip"], record["close"]
    return {"scan_p50": rt.get("p50_ms"), "scan_p99": rt.get("p99_ms"), "close_p50": close.get("p50_ms")}


async def bench(args: argparse.Namespace) -> int:
    folder = Path(tempfile.mkdtemp(prefix="storepos-day-"))
    fleet = Fleet()
    report = new_report("trading_day", machine_info(), config={k: str(v) for k, v in vars(args).items()})
    try:
        tls_args, ca = central_tls(folder)
        central, central_url = await fleet.start(
            "central", node_argv("central", "run", "--db", "central.db", "--port", "0", *tls_args), folder
        )
        pin = "" if args.cpu is None else f"cpu = {args.cpu}"
        settings = pin + f"\n[tills]\nper_address = {args.lanes + 16}\n[sales]\ncopies = 2\n"
        (folder / "store.toml").write_text(
            store_toml(
                STORE,
                "storepos trading day",
                "SEK",
                range(1, args.lanes + 1),
                settings=settings,
                central=central_url,
                ca=ca,
            )
        )
        enrol(folder / "central.db", folder / "store.toml")
        store, store_url = await fleet.start("store", node_argv("store", "run", "--config", "store.toml"), folder)
        nodes = {"store": store, "central": central}
        print(
            f"storepos trading day: {args.lanes} lanes, {args.seconds:g} s per phase, a scan every "
            f"{args.pace_ms:g} ms per lane, {args.repeat} pair(s) of phases; work folder {folder}",
            flush=True,
        )
        options = argparse.Namespace(jitter_ms=args.jitter_ms, client_procs=1, out=args.out)
        pairs: list[dict[str, Any]] = []
        for _ in range(args.repeat):
            plain = await scan_latency.measure(
                "scan", store_url, args.lanes, args.seconds, options, fleet, folder, nodes, period_s=args.pace_ms / 1000
            )
            ACTIONS.clear()
            day = await scan_latency.measure(
                "day", store_url, args.lanes, args.seconds, options, fleet, folder, nodes, period_s=args.pace_ms / 1000
            )
            day["actions"] = {name: latency_stats(times, percentiles=(50, 99)) for name, times in ACTIONS.items()}
            pairs.append({"plain": plain, "day": day})
            p, d = summary(plain), summary(day)
            print(
                f"  plain: scan p50 {fmt(p['scan_p50'], '.2f')} p99 {fmt(p['scan_p99'], '.2f')} ms, close p50 "
                f"{fmt(p['close_p50'], '.2f')} ms, {plain['sales']} sales | day: scan p50 {fmt(d['scan_p50'], '.2f')} "
                f"p99 {fmt(d['scan_p99'], '.2f')} ms, close p50 {fmt(d['close_p50'], '.2f')} ms, {day['sales']} sales, "
                f"errors {day['error_count']}",
                flush=True,
            )
            for name, stats in sorted(day["actions"].items()):
                print(
                    f"      {name:<18} n={stats.get('count', 0):>4}  p50 {fmt(stats.get('p50_ms'), '.2f')} ms  "
                    f"p99 {fmt(stats.get('p99_ms'), '.2f')} ms"
                )
        report["pairs"] = pairs
        verdicts: dict[str, Any] = {}
        for figure in ("scan_p50", "scan_p99", "close_p50"):
            ratios = [
                summary(x["day"])[figure] / summary(x["plain"])[figure]  # type: ignore[operator]
                for x in pairs
                if summary(x["day"])[figure] and summary(x["plain"])[figure]
            ]
            median = statistics.median(ratios) if ratios else None
            verdicts[figure] = {
                "ratios": ratios,
                "median": median,
                "pass": median is not None and median <= 1 + TOLERANCE,
            }
        errors = sum(x["day"]["error_count"] for x in pairs)
        report["day_errors"] = errors
        lookup = await lookup_bench(args, folder) if args.receipts else {"skipped": True}
        report["receipt_lookup"] = lookup
        kinds = lookup.get("kinds", {}) if isinstance(lookup.get("kinds"), dict) else {}
        lookup_ok = bool(kinds) and all((k.get("p99_ms") or 1e9) <= LOOKUP_P99_MS for k in kinds.values())
        verdicts["lookup_p99"] = {"by_kind": {n: k.get("p99_ms") for n, k in kinds.items()}, "pass": lookup_ok}
        report["verdicts"] = verdicts
        print()
        for figure in ("scan_p50", "scan_p99", "close_p50"):
            v = verdicts[figure]
            print(
                f"{'PASS' if v['pass'] else 'FAIL':<5} day {figure.replace('_', ' ')} within {TOLERANCE:.0%} of plain "
                f"scanning: {fmt(v['median'], '.2f')}x (pairs: {', '.join(f'{r:.2f}' for r in v['ratios'])})"
            )
        print(f"{'PASS' if errors == 0 else 'FAIL':<5} every action of the day answered as expected ({errors} errors)")
        print(
            f"{'PASS' if lookup_ok else 'FAIL':<5} receipt lookup among {args.receipts:,} receipts p99 <= "
            f"{LOOKUP_P99_MS:g} ms: "
            + ", ".join(f"{n} {fmt(p, '.2f')} ms" for n, p in verdicts["lookup_p99"]["by_kind"].items())
        )
        print_disturbed(
            [f"{name} phase {n + 1}" for n, x in enumerate(pairs) for name in ("plain", "day") if disturbed(x[name])]
        )
        write_report(args.out, report)
        return 0 if all(v["pass"] for v in verdicts.values()) and errors == 0 else 1
    finally:
        await fleet.stop_all()
        if args.keep:
            print(f"work folder kept: {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)  # the lookup's database alone is half a gigabyte


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lanes", type=int, default=LANES)
    p.add_argument("--seconds", type=float, default=15.0, help="measured seconds per phase (default 15)")
    p.add_argument("--pace-ms", type=float, default=50.0, help="a lane scans once per this (default 50)")
    p.add_argument("--jitter-ms", type=float, default=10.0)
    p.add_argument("--repeat", type=int, default=2, help="pairs of phases, plain then day (default 2)")
    p.add_argument("--receipts", type=int, default=1_000_000, help="journal receipts for the lookup (0: skip)")
    p.add_argument("--db", type=Path, help="reuse this receipt database (built by bench/receipt_lookup.py)")
    p.add_argument("--keep", action="store_true", help="keep the work folder (logs, databases)")
    p.add_argument("--cpu", type=scan_latency.parse_cpu, default=scan_latency.default_cpu())
    add_out_option(p, "trading_day")
    args = p.parse_args(argv)
    if args.lanes < 1 or args.seconds <= 0 or args.repeat < 1:
        p.error("--lanes, --seconds and --repeat must be positive")
    return run_script("trading_day", bench, args, stop_on_signals=True)


if __name__ == "__main__":
    raise SystemExit(main())
