"""Scan round trips of one store node with 1 to 100 concurrent tills, against a bare websocket echo.

    .venv/bin/python bench/scan_latency.py [--tills 1,10,50,100] [--paced 100] [--seconds 10] [--out F.json]

Starts a real central and a real store node (100 lanes, logging at WARNING) and a bare trio-websocket
echo server, each as its own process. Every till works on its own lane: it logs in, warms up with one
whole sale, then scans the demo catalogue's barcodes and closes every 10 scans with Total + CashTender
(a durable journal commit, answered by a Receipt). The store serves its tills over wss, each till
enrolled (devtools.enrolment); a second store, alike but for `[tills] insecure = true`, serves plain ws,
and one lane's scan median is compared over both, `--repeat` times in turn (target: wss <= 1.2x ws).
Two modes, both measured in one run:

- Closed loop (`--tills`, the first table): each till sends its next scan the moment the previous answer
  arrives, for `--seconds`. This measures saturation: scans/s is the most the store answers, and the
  round trip (timed around `await client.request(Scan(...))`) is mostly queueing: by Little's law
  p50 is about N / throughput, so with 100 tills back to back p99 <= 20 ms needs > 5,000 answers/s,
  more than the bare echo server gives on this machine. The same client code then echoes a Scan-sized
  binary message over N connections to the echo server: the floor the store's answer is compared with
  (same process boundary, same client, same concurrency).
- Paced, open loop (`--paced`, the second table): each till scans on a schedule, once every `--pace-ms`
  (50 ms: 20 scans/s, faster than a cashier) from a random phase, each instant moved by up to
  `--jitter-ms` either way without accumulating, so 100 tills offer exactly 2,000 scans/s over the
  window. Latency is measured from each scan's scheduled instant to its answer: a till still waiting for
  an earlier answer (or closing a sale) sends late, and the wait counts, so a store that cannot keep up
  shows it as a growing p99 rather than as a lower offered rate (no coordinated omission). `rt` is the
  round trip from sending. answered/s is scans answered over the time until the last answer. Sales
  here have 5 to 15 lines (mean 10, seeded per lane), so the tills' closes do not fall into lockstep.

Printed: a table per mode and the verdicts on the targets: one lane's closed-loop scan median at most
2x the single-connection echo median; 100 lanes at least 2,000 scans/s with p99 at most 20 ms, judged
twice: closed loop (scans/s and round-trip p99 back to back) and paced (2,000 scans/s offered, every
scan answered without error, p99 from the scheduled instant). Written: everything, percentiles and CPU
times included, to a JSON file. On a shared machine the one-lane ratio moves from run to run with the
other load: `--repeat K` measures the floor and the one-lane scan K times in turn and judges the median.

The store node runs with store.toml's `cpu` set, all its threads kept on one core (see
runtime/affinity.py for why), and the echo server is kept on that same core, so the floor is measured
like for like; `--cpu none` runs both unpinned.

CPU seconds of the client, the store node, central and the echo server over each measured window
show who the bottleneck was; on 2 cores one client process can itself be the limit at 100 tills,
`--client-procs K` spreads the tills (and echo connections) over K client processes.
`--py-spy` samples the store node with py-spy during the largest closed-loop run (the largest paced run
with `--tills none`) and prints its hot spots.

Internal modes (how the script starts its own helpers): `--echo-server --ready-file F` and
`--worker SPEC`.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root first: see bench/processes.py

import argparse
import functools
import json
import math
import os
import platform
import random
import shutil
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

import msgspec
import trio
from trio_websocket import ConnectionClosed, WebSocketRequest

from bench.measurements import (
    Window,
    add_out_option,
    disturbed,
    fmt,
    hot_spots,
    latency_stats,
    machine_info,
    new_report,
    other_load_pct,
    print_disturbed,
    print_profile,
    py_spy_record,
    warn_if_disturbed,
    write_report,
)
from bench.processes import (
    BenchError,
    Fleet,
    answer,
    central_tls,
    check_running,
    node_argv,
    round_robin,
    run_script,
    run_workers,
    serve_websocket_ready,
    store_toml,
    wait_for_go,
)
from devtools.processes import enrol
from protocol.codec import SUBPROTOCOL_MSGPACK, TillCodec
from protocol.frames import CancelSale, CashTender, Command, Error, Login, Receipt, SaleState, Scan, TillFrame, Total
from protocol.websocket import dial
from runtime.affinity import available_cpus, pin_process
from till.client import TillClient, TillDisconnected, connect

SCRIPT = Path(__file__).resolve()
LANES = 100  # the store is configured with lanes 1..LANES (more if --tills asks for more)
SALE_SIZE = 10  # scans per sale; then Total + CashTender
ECHO_WARMUP = 50  # echo round trips per connection before measuring
REQUEST_TIMEOUT = 15.0  # one request's bound; a store that does not answer is an error, not a hang
START_TIMEOUT = 60.0  # bound on connecting + logging in + warming up all clients
TARGET_RATIO = 2.0  # one lane's scan p50 <= 2x the echo floor p50
TARGET_LANES = 100
TLS_RATIO = 1.2  # one lane's scan median over wss (an enrolled till) against the same over plain ws
TARGET_SCANS_PER_S = 2000.0
TARGET_P99_MS = 20.0
OPEN_STATUSES = ("open", "tender")
PIECE_UNITS = ("", "each", "pc", "pcs", "piece")  # catalogue `unit` of items a till scans without a scale
PERCENTILES = (50, 90, 99, 99.9)  # of scan and echo round trips, and of sale closes

# ---------------------------------------------------------------------------------------------
# What one phase (N clients doing one kind of work) is asked to do and what it reports.
# Plain msgspec structs, so a worker process can send its part back as JSON.
# ---------------------------------------------------------------------------------------------


class PhaseSpec(msgspec.Struct):
    kind: str  # "scan": tills on a store node; "echo": connections to the echo server
    url: str
    ids: list[int]  # lanes (scan) or connection numbers (echo)
    seconds: float
    period_s: float = 0.0  # scan only: 0 closed loop (back to back); > 0 paced, one scan per period per till
    jitter_s: float = 0.0  # paced only: each scan's instant moves by up to this much either way


class PhaseResult(msgspec.Struct):
    kind: str
    clients: int
    round_trips_ns: list[int]  # one per scan (scan) or per echo (echo)
    closes_ns: list[int]  # Total + CashTender per sale attempt (scan only)
    sales: int  # sales answered by a Receipt
    requests: int  # every request sent in the window: scans, totals, tenders, cancels
    errors: dict[str, int]
    answer_bytes: list[int]  # encoded size of the SaleState answers seen while warming up
    elapsed_s: float  # from go until the last client finished its last request
    cpu_s: float  # client process CPU time over the same window (summed over client processes)
    from_schedule_ns: list[int] = []  # paced only: per scan, from its scheduled instant to its answer


def merge(parts: list[PhaseResult]) -> PhaseResult:
    errors: Counter[str] = Counter()
    for part in parts:
        errors.update(part.errors)
    return PhaseResult(
        kind=parts[0].kind,
        clients=sum(p.clients for p in parts),
        round_trips_ns=[x for p in parts for x in p.round_trips_ns],
        closes_ns=[x for p in parts for x in p.closes_ns],
        sales=sum(p.sales for p in parts),
        requests=sum(p.requests for p in parts),
        errors=dict(errors),
        answer_bytes=[x for p in parts for x in p.answer_bytes],
        elapsed_s=max(p.elapsed_s for p in parts),
        cpu_s=sum(p.cpu_s for p in parts),
        from_schedule_ns=[x for p in parts for x in p.from_schedule_ns],
    )


# ---------------------------------------------------------------------------------------------
# The client side of a phase: runs in this process or in a worker process.
# ---------------------------------------------------------------------------------------------


DEMO_PINS = {"1": "1234", "2": "4321"}  # the file holds only their hashes; the README gives the demo's PINs


@functools.cache
def demo_catalog() -> tuple[list[str], str, str]:
    """Barcodes (first of each item sold by the piece: items sold by weight need a scale) and the
    first operator's number and PIN, from the catalogue a store node sells from when none is set."""
    data = json.loads((resources.files("storenode") / "data" / "demo_catalog.json").read_text())
    operator = data["operators"][0]
    codes = [item["barcodes"][0] for item in data["items"] if item.get("unit", "") in PIECE_UNITS]
    if not codes:
        raise BenchError("the demo catalogue has no item sold by the piece to scan")
    return codes, operator["number"], DEMO_PINS[operator["number"]]


def echo_payload() -> bytes:
    """A message the size of a real Scan frame as a till sends it (about 36 bytes of MessagePack)."""
    data = TillCodec(SUBPROTOCOL_MSGPACK, "till").encode(Scan(code="7310000000010", ref=123_456))
    assert isinstance(data, bytes)
    return data


class Gate:
    """The start line of a phase: every client gets ready (connected, warmed up), then all go at once
    and stop at one deadline. Also records when the last client finished and the CPU used meanwhile."""

    def __init__(self, clients: int) -> None:
        self.waiting = clients
        self.running = clients
        self.all_ready = trio.Event()
        self.go = trio.Event()
        self.deadline = math.inf
        self.go_at = 0.0  # trio time at go: a paced till's schedule counts from here
        self.started_at = 0.0
        self.finished_at = 0.0
        self.cpu_start = 0.0
        self.cpu_end = 0.0

    def ready(self) -> None:
        self.waiting -= 1
        if self.waiting == 0:
            self.all_ready.set()

    def start(self, seconds: float) -> None:
        self.cpu_start = time.process_time()
        self.started_at = time.perf_counter()
        self.go_at = trio.current_time()
        self.deadline = self.go_at + seconds
        self.go.set()

    def finished(self) -> None:
        self.running -= 1
        if self.running == 0:
            self.finished_at = time.perf_counter()
            self.cpu_end = time.process_time()


class Tally:
    """What the clients of one phase (in one process) measured."""

    def __init__(self) -> None:
        self.round_trips_ns: list[int] = []
        self.closes_ns: list[int] = []
        self.sales = 0
        self.requests = 0
        self.errors: Counter[str] = Counter()
        self.answer_bytes: list[int] = []
        self.from_schedule_ns: list[int] = []

    def wrong(self, answer: TillFrame | bytes | str, what: str) -> None:
        if isinstance(answer, Error):
            self.errors[f"{what}: {answer.code}"] += 1
        else:
            self.errors[f"{what}: unexpected {type(answer).__name__}"] += 1


async def ask(till: TillClient, command: Command) -> TillFrame:
    with trio.fail_after(REQUEST_TIMEOUT):
        return await till.request(command)


async def close_sale(till: TillClient) -> TillFrame:
    """Total, then tender exactly the cash due (the Total answer's cash_due); a Receipt means done."""
    total = await ask(till, Total())
    if not isinstance(total, SaleState) or total.status != "tender":
        return total
    return await ask(till, CashTender(amount=total.cash_due))


async def scan_till(spec: PhaseSpec, lane: int, gate: Gate, tally: Tally) -> None:
    barcodes, operator, pin = demo_catalog()
    codec = TillCodec(SUBPROTOCOL_MSGPACK, "till")
    async with connect(spec.url, lane, f"bench-{lane}") as till:
        answer = await ask(till, Login(operator=operator, pin=pin))
        if not isinstance(answer, SaleState):
            raise BenchError(f"lane {lane}: login refused: {answer}")
        if answer.status in OPEN_STATUSES:  # left over from an earlier run
            await ask(till, CancelSale())
        for k in range(SALE_SIZE):  # warm-up: one whole sale, not measured
            answer = await ask(till, Scan(code=barcodes[k % len(barcodes)]))
            if not isinstance(answer, SaleState):
                raise BenchError(f"lane {lane}: warm-up scan refused: {answer}")
            tally.answer_bytes.append(len(codec.encode(answer)))
        answer = await close_sale(till)
        if not isinstance(answer, Receipt):
            raise BenchError(f"lane {lane}: warm-up sale not completed: {answer}")
        gate.ready()
        await gate.go.wait()

        round_trips, closes, from_schedule = tally.round_trips_ns, tally.closes_ns, tally.from_schedule_ns
        schedule = paced_schedule(spec, lane) if spec.period_s > 0 else None
        # perf_counter at go, where the schedule's instants count from (trio's clock, which the sleeps use,
        # runs at the same rate)
        start_ns = int(gate.started_at * 1e9)
        k = lines = 0
        sizes = random.Random(-lane)  # paced: how many lines each sale gets (see sale_size)
        size = sale_size(spec, sizes)
        try:
            while True:
                due_ns = 0
                if schedule is None:
                    if trio.current_time() >= gate.deadline:
                        break
                else:
                    if k == len(schedule):
                        break
                    due = gate.go_at + schedule[k]
                    due_ns = start_ns + int(schedule[k] * 1e9)
                    await trio.sleep_until(due)  # returns at once if this till is already late
                scan = Scan(code=barcodes[k % len(barcodes)])
                k += 1
                t0 = time.perf_counter_ns()
                answer = await ask(till, scan)
                t1 = time.perf_counter_ns()
                round_trips.append(t1 - t0)
                if due_ns:
                    from_schedule.append(t1 - due_ns)
                tally.requests += 1
                if type(answer) is not SaleState:
                    tally.wrong(answer, "scan")
                    continue
                lines += 1
                if len(answer.lines) != lines:
                    tally.errors["scan: basket has the wrong number of lines"] += 1
                    lines = len(answer.lines)
                if lines >= size:
                    t0 = time.perf_counter_ns()
                    answer = await close_sale(till)
                    closes.append(time.perf_counter_ns() - t0)
                    tally.requests += 2
                    if isinstance(answer, Receipt):
                        tally.sales += 1
                        lines = 0
                        size = sale_size(spec, sizes)
                    else:
                        tally.wrong(answer, "sale")
        except (trio.TooSlowError, TillDisconnected, ConnectionClosed) as exc:
            tally.errors[f"lane: {type(exc).__name__}"] += 1
            return
        finally:
            gate.finished()
        if lines:  # leave the lane without an open sale for the next phase (not measured)
            await ask(till, CancelSale())


def sale_size(spec: PhaseSpec, rng: random.Random) -> int:
    """Lines per sale: SALE_SIZE back to back; paced, SALE_SIZE/2 to 3*SALE_SIZE/2 (mean SALE_SIZE), because
    with one pace and one sale size every till would total in the same period, all sales closing in
    lockstep bursts (100 durable commits within 50 ms every 500 ms), which no store sees."""
    if spec.period_s <= 0:
        return SALE_SIZE
    return rng.randint(SALE_SIZE // 2, SALE_SIZE + SALE_SIZE // 2)


def paced_schedule(spec: PhaseSpec, lane: int) -> list[float]:
    """A paced till's scan instants, in seconds after go: one per period from a random phase, each moved
    by a random jitter that does not accumulate, so every till offers exactly seconds/period scans (the
    phase and jitter spread the tills; a fixed seed per lane makes runs comparable)."""
    rng = random.Random(lane)
    phase = rng.uniform(0.0, spec.period_s)
    count = math.ceil((spec.seconds - phase) / spec.period_s)
    return sorted(
        max(0.0, phase + k * spec.period_s + rng.uniform(-spec.jitter_s, spec.jitter_s)) for k in range(count)
    )


async def echo_client(spec: PhaseSpec, number: int, gate: Gate, tally: Tally) -> None:
    payload = echo_payload()
    async with dial(spec.url) as ws:
        for _ in range(ECHO_WARMUP):
            with trio.fail_after(REQUEST_TIMEOUT):
                await ws.send_message(payload)
                await ws.get_message()
        gate.ready()
        await gate.go.wait()
        round_trips = tally.round_trips_ns
        try:
            while trio.current_time() < gate.deadline:
                t0 = time.perf_counter_ns()
                with trio.fail_after(REQUEST_TIMEOUT):  # the same bound as a scan has
                    await ws.send_message(payload)
                    reply = await ws.get_message()
                round_trips.append(time.perf_counter_ns() - t0)
                tally.requests += 1
                if reply != payload:
                    tally.errors["echo: reply differs from the message"] += 1
        except (trio.TooSlowError, ConnectionClosed) as exc:
            tally.errors[f"echo {number}: {type(exc).__name__}"] += 1
        finally:
            gate.finished()


# What a phase's clients do, by PhaseSpec.kind. bench/trading_day.py adds its day's till ("day"), which runs in
# this process only (--client-procs 1): worker processes know these two.
Client = Callable[[PhaseSpec, int, Gate, Tally], Awaitable[None]]
CLIENTS: dict[str, Client] = {"scan": scan_till, "echo": echo_client}


async def run_phase(spec: PhaseSpec, on_go: Callable[[], Awaitable[None]]) -> PhaseResult:
    """Run the clients of `spec` in this process; `on_go` is awaited once all are ready, just before
    they start (the orchestrator samples the nodes' CPU there, a worker waits for its go)."""
    gate, tally = Gate(len(spec.ids)), Tally()
    client = CLIENTS[spec.kind]
    async with trio.open_nursery() as nursery:
        for i in spec.ids:
            nursery.start_soon(client, spec, i, gate, tally)
        with trio.fail_after(START_TIMEOUT):
            await gate.all_ready.wait()
        await on_go()
        gate.start(spec.seconds)
    return PhaseResult(
        kind=spec.kind,
        clients=len(spec.ids),
        round_trips_ns=tally.round_trips_ns,
        closes_ns=tally.closes_ns,
        sales=tally.sales,
        requests=tally.requests,
        errors=dict(tally.errors),
        answer_bytes=tally.answer_bytes,
        elapsed_s=gate.finished_at - gate.started_at,
        cpu_s=gate.cpu_end - gate.cpu_start,
        from_schedule_ns=tally.from_schedule_ns,
    )


def phase_budget(seconds: float) -> float:
    return START_TIMEOUT + seconds + 3 * REQUEST_TIMEOUT + 10


async def worker_main(spec_json: str) -> None:
    """A client process of `--client-procs`: says `ready`, waits for `go` on stdin, answers JSON."""
    spec = msgspec.json.decode(spec_json, type=PhaseSpec)
    with trio.fail_after(phase_budget(spec.seconds)):
        result = await run_phase(spec, wait_for_go)
    answer(result)


async def split_phase(
    fleet: Fleet, spec: PhaseSpec, procs: int, folder: Path, on_go: Callable[[], Awaitable[None]]
) -> PhaseResult:
    """The same phase split over `procs` worker processes (round robin over the ids)."""
    parts = [msgspec.structs.replace(spec, ids=ids) for ids in round_robin(spec.ids, procs)]
    results = await run_workers(
        fleet,
        SCRIPT,
        "--worker",
        parts,
        PhaseResult,
        folder,
        f"worker-{spec.kind}-{len(spec.ids)}",
        on_go,
        ready_timeout=START_TIMEOUT,
        answer_timeout=spec.seconds + 3 * REQUEST_TIMEOUT + 10,
    )
    return merge(results)


# ---------------------------------------------------------------------------------------------
# The echo server (its own process, so the floor crosses the same process boundary).
# ---------------------------------------------------------------------------------------------


async def echo_server(ready_file: Path) -> None:
    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            while True:
                await ws.send_message(await ws.get_message())
        except ConnectionClosed:
            pass

    await serve_websocket_ready(handler, ready_file)


# ---------------------------------------------------------------------------------------------
# Statistics and the report.
# ---------------------------------------------------------------------------------------------


def phase_record(result: PhaseResult, window: Window, spec: PhaseSpec) -> dict[str, Any]:
    elapsed = result.elapsed_s
    record: dict[str, Any] = {
        "clients": result.clients,
        "elapsed_s": elapsed,
        "round_trip": latency_stats(result.round_trips_ns, window_s=elapsed, percentiles=PERCENTILES),
        "requests": result.requests,
        "requests_per_s": result.requests / elapsed if elapsed > 0 else 0.0,
        "errors": result.errors,
        "error_count": sum(result.errors.values()),
        "client_cpu_s": result.cpu_s,
        "client_cpu_pct": 100 * result.cpu_s / elapsed if elapsed > 0 else 0.0,
        "node_cpu_s": window.cpu(),
        "node_cpu_pct": {name: None if v is None else 100 * v / window.seconds for name, v in window.cpu().items()},
        "machine_cpu": window.machine(irq=True),
    }
    machine = record["machine_cpu"]
    if machine is not None:  # what processes other than ours used meanwhile, in % of one core
        record["other_load_pct"] = other_load_pct(machine, [record["client_cpu_pct"], *record["node_cpu_pct"].values()])
    if result.kind != "echo":  # tills (scan, or trading_day's day): their sales too
        record["sales"] = result.sales
        record["sales_per_s"] = result.sales / elapsed if elapsed > 0 else 0.0
        record["close"] = latency_stats(result.closes_ns, window_s=elapsed, percentiles=PERCENTILES)
        record["answer_bytes_mean"] = sum(result.answer_bytes) / max(1, len(result.answer_bytes))
    if spec.period_s > 0:
        record["paced"] = {"period_s": spec.period_s, "jitter_s": spec.jitter_s}
        offered = sum(len(paced_schedule(spec, lane)) for lane in spec.ids)  # the schedule, not what was sent
        record["offered"] = offered
        record["offered_per_s"] = offered / spec.seconds
        record["answered_per_s"] = len(result.round_trips_ns) / elapsed if elapsed > 0 else 0.0
        record["from_schedule"] = latency_stats(result.from_schedule_ns, percentiles=PERCENTILES)
    return record


def cpu_per_scan(scan: dict[str, Any], store: str) -> dict[str, float | None]:
    """CPU microseconds per answered scan (its share of the closes included) of the store node that served the
    run, and of the client: tells whether a gap between two runs is the store's work, the till's, or waiting."""
    answered = scan["round_trip"].get("count") or 0
    node = scan["node_cpu_s"].get(store)
    if not answered:
        return {"store": None, "client": None}
    return {"store": None if node is None else 1e6 * node / answered, "client": 1e6 * scan["client_cpu_s"] / answered}


async def profile_store(pid: int, seconds: float, out: Path, report: dict[str, Any]) -> None:
    argv = py_spy_record(pid, out, max(1, int(seconds)))
    try:
        with trio.fail_after(seconds + 30):
            done = await trio.run_process(argv, capture_stdout=True, capture_stderr=True, check=False)
    except (OSError, trio.TooSlowError) as exc:
        report["error"] = f"py-spy did not run: {exc}"
        return
    if done.returncode != 0:
        report["error"] = f"py-spy failed ({done.returncode}): {done.stderr.decode(errors='replace')[-500:]}"
        return
    report.update(hot_spots(out))


CPU_HEAD = f"{'client%':>7} {'store%':>6} {'central%':>8} {'steal%':>6} {'other%':>6} {'errors':>6}"


def cpu_cells(scan: dict[str, Any]) -> str:
    """The columns under CPU_HEAD: who used the CPU during a scan run, and its errors (both tables end so)."""
    cpu, machine = scan["node_cpu_pct"], scan["machine_cpu"] or {}
    return (
        f"{scan['client_cpu_pct']:>7.0f} {fmt(cpu.get('store'), '.0f'):>6} {fmt(cpu.get('central'), '.0f'):>8} "
        f"{fmt(machine.get('steal_pct'), '.0f'):>6} {fmt(scan.get('other_load_pct'), '.0f'):>6} "
        f"{scan['error_count']:>6}"
    )


def print_table(runs: list[dict[str, Any]], floor: dict[str, Any]) -> None:
    floor_p50 = floor["round_trip"]["p50_ms"]
    head = (
        f"{'N':>4} {'scans':>7} {'scans/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'sales/s':>8} {'close p50':>9} "
        f"{'echo/s':>8} {'echo p50':>8} {'echo p99':>8} {'p50/echo':>8} {'p50/floor':>9} {CPU_HEAD}"
    )
    print(head)
    print("-" * len(head))
    for run in runs:
        scan, echo = run["scan"], run["echo"]
        rt, ert = scan["round_trip"], echo["round_trip"]
        print(
            f"{run['n']:>4} {rt['count']:>7} {rt['per_s']:>8.0f} {rt.get('p50_ms', 0):>7.2f} "
            f"{rt.get('p99_ms', 0):>7.2f} {scan['sales_per_s']:>8.1f} {scan['close'].get('p50_ms', 0):>9.2f} "
            f"{ert['per_s']:>8.0f} {ert.get('p50_ms', 0):>8.3f} {ert.get('p99_ms', 0):>8.3f} "
            f"{fmt(run['ratio_to_echo_same_n'], '.1f'):>8} {fmt(run['ratio_to_floor'], '.1f'):>9} {cpu_cells(scan)}"
        )
    f = floor["round_trip"]
    print(
        f"\nfloor: bare trio-websocket echo, one connection, {len(echo_payload())}-byte binary message: "
        f"p50 {floor_p50:.3f} ms, p99 {f['p99_ms']:.3f} ms, {f['per_s']:.0f} round trips/s "
        f"(client CPU {floor['client_cpu_pct']:.0f}%, echo server CPU {fmt(floor['node_cpu_pct'].get('echo'), '.0f')}%)"
    )
    sizes = [r["scan"]["answer_bytes_mean"] for r in runs if r["scan"].get("answer_bytes_mean")]
    if sizes:
        print(f"a scan's answer (SaleState with 1..{SALE_SIZE} lines) averages {sizes[0]:.0f} bytes")
    print(
        f"client%/store%/central%: CPU time of that process over the scan window, in % of one core "
        f"(the machine has {os.cpu_count()}); steal%: CPU the hypervisor took, in % of all cores; "
        "other%: CPU used by processes outside this benchmark, in % of one core"
    )


def print_paced_table(paced: list[dict[str, Any]], args: argparse.Namespace) -> None:
    head = (
        f"{'N':>4} {'offered/s':>9} {'answered/s':>10} {'p50 ms':>7} {'p99 ms':>7} {'p99.9 ms':>8} {'max ms':>7} "
        f"{'rt p50':>7} {'rt p99':>7} {'sales/s':>8} {'close p50':>9} {CPU_HEAD}"
    )
    print(
        f"paced (open loop): each till scans once every {args.pace_ms:g} ms "
        f"(+-{args.jitter_ms:g} ms jitter, random phase);"
        " p50/p99 from each scan's scheduled instant to its answer (waiting behind a late answer counts),"
        " rt: from sending to the answer"
    )
    print(head)
    print("-" * len(head))
    for run in paced:
        scan = run["scan"]
        late, rt = scan["from_schedule"], scan["round_trip"]
        print(
            f"{run['n']:>4} {scan['offered_per_s']:>9.0f} {scan['answered_per_s']:>10.0f} "
            f"{late.get('p50_ms', 0):>7.2f} {late.get('p99_ms', 0):>7.2f} {late.get('p99_9_ms', 0):>8.2f} "
            f"{late.get('max_ms', 0):>7.2f} {rt.get('p50_ms', 0):>7.2f} {rt.get('p99_ms', 0):>7.2f} "
            f"{scan['sales_per_s']:>8.1f} {scan['close'].get('p50_ms', 0):>9.2f} {cpu_cells(scan)}"
        )


def verdicts(
    runs: list[dict[str, Any]], paced: list[dict[str, Any]], floor: dict[str, Any], repeats: list[dict[str, Any]]
) -> dict[str, Any]:
    by_n = {r["n"]: r for r in runs}
    out: dict[str, Any] = {}
    one = by_n.get(1)
    if one is not None and one["scan"]["round_trip"]["count"]:
        ratios = [r["ratio"] for r in repeats if r["ratio"] is not None]
        ratio = statistics.median(ratios) if ratios else None  # one pair, or the median of --repeat pairs
        out["single_lane_ratio"] = {
            "target": f"one lane's scan p50 <= {TARGET_RATIO:g}x echo floor p50",
            "value": ratio,
            "pairs": len(ratios),
            "verdict": "PASS" if ratio is not None and ratio <= TARGET_RATIO else "MISS",
        }
    else:
        out["single_lane_ratio"] = {"verdict": "n/a (1 till not measured)"}
    big = by_n.get(TARGET_LANES)
    if big is not None and big["scan"]["round_trip"]["count"]:
        rt = big["scan"]["round_trip"]
        ok = rt["per_s"] >= TARGET_SCANS_PER_S and rt["p99_ms"] <= TARGET_P99_MS
        out["hundred_lanes"] = {
            "target": (
                f"{TARGET_LANES} lanes >= {TARGET_SCANS_PER_S:,.0f} scans/s with p99 <= {TARGET_P99_MS:g} ms, "
                "closed loop (back to back: saturation)"
            ),
            "scans_per_s": rt["per_s"],
            "p99_ms": rt["p99_ms"],
            "verdict": "PASS" if ok else "MISS",
        }
    else:
        out["hundred_lanes"] = {"verdict": f"n/a ({TARGET_LANES} tills not measured)"}
    offered = next((r["scan"] for r in paced if r["n"] == TARGET_LANES), None)
    if offered is not None and offered["from_schedule"]["count"]:
        late = offered["from_schedule"]
        ok = (
            offered["offered_per_s"] >= TARGET_SCANS_PER_S
            and offered["error_count"] == 0
            and late["count"] == offered["offered"]
            and late["p99_ms"] <= TARGET_P99_MS
        )
        out["hundred_lanes_paced"] = {
            "target": (
                f"{TARGET_LANES} lanes >= {TARGET_SCANS_PER_S:,.0f} scans/s with p99 <= {TARGET_P99_MS:g} ms, "
                "paced (that load offered; every scan answered; p99 from the scheduled instant)"
            ),
            "scans_per_s": offered["offered_per_s"],
            "answered_per_s": offered["answered_per_s"],
            "p99_ms": late["p99_ms"],
            "verdict": "PASS" if ok else "MISS",
        }
    else:
        out["hundred_lanes_paced"] = {"verdict": f"n/a ({TARGET_LANES} paced tills not measured)"}
    return out


# ---------------------------------------------------------------------------------------------
# The orchestrator.
# ---------------------------------------------------------------------------------------------


async def measure(
    kind: str,
    url: str,
    n: int,
    seconds: float,
    args: argparse.Namespace,
    fleet: Fleet,
    folder: Path,
    nodes: dict[str, trio.Process],
    profile: dict[str, Any] | None = None,
    *,
    period_s: float = 0.0,
) -> dict[str, Any]:
    jitter_s = args.jitter_ms / 1000 if period_s else 0.0
    spec = PhaseSpec(
        kind=kind, url=url, ids=list(range(1, n + 1)), seconds=seconds, period_s=period_s, jitter_s=jitter_s
    )
    window = Window({name: proc.pid for name, proc in nodes.items()})
    procs = min(args.client_procs, n)
    check_running(nodes, folder)
    try:
        async with trio.open_nursery() as nursery:

            async def on_go() -> None:
                nursery.start_soon(window.measure, seconds)
                if profile is not None:
                    raw = args.out.with_suffix(".store-profile.txt")
                    raw.parent.mkdir(parents=True, exist_ok=True)
                    nursery.start_soon(profile_store, nodes["store"].pid, seconds, raw, profile)

            with trio.fail_after(phase_budget(seconds)):
                if procs > 1:
                    result = await split_phase(fleet, spec, procs, folder, on_go)
                else:
                    result = await run_phase(spec, on_go)
    except Exception:
        check_running(nodes, folder)  # a node that died explains the failure better than its symptom
        raise
    check_running(nodes, folder)
    record = phase_record(result, window, spec)
    record["client_procs"] = procs
    what = f"paced {kind}" if period_s else kind
    if record["error_count"]:
        print(f"!!! {what} with {n} clients: {record['error_count']} ERRORS: {result.errors}", flush=True)
    warn_if_disturbed(f"{what} with {n} clients", record)
    return record


async def bench(args: argparse.Namespace) -> int:
    folder = Path(tempfile.mkdtemp(prefix="storepos-bench-"))
    fleet = Fleet()
    ok = False
    try:
        tls_args, ca = central_tls(folder)
        central, central_url = await fleet.start(
            "central", node_argv("central", "run", "--db", "central.db", "--port", "0", *tls_args), folder
        )
        lanes = range(1, max(LANES, *args.tills, *args.paced) + 1)
        pin = "" if args.cpu is None else f"cpu = {args.cpu}"
        tills = f"\n[tills]\nper_address = {len(lanes) + 16}\n"  # every bench till comes from 127.0.0.1
        toml = store_toml(
            "BENCH01", "storepos benchmark store", "SEK", lanes, settings=pin + tills, central=central_url, ca=ca
        )
        (folder / "store.toml").write_text(toml)
        enrol(folder / "central.db", folder / "store.toml")
        store, store_url = await fleet.start("store", node_argv("store", "run", "--config", "store.toml"), folder)
        plain = store_toml(
            "BENCH02",
            "storepos benchmark store, tills over plain ws",
            "SEK",
            lanes,
            settings=pin + tills + "insecure = true\n",
            central=central_url,
            ca=ca,
        ).replace('data_dir = "store-data"', 'data_dir = "plain-store-data"')
        (folder / "plain.toml").write_text(plain)
        enrol(folder / "central.db", folder / "plain.toml")
        plain_store, plain_url = await fleet.start(
            "plain-store", node_argv("store", "run", "--config", "plain.toml"), folder
        )
        echo_argv = [sys.executable, str(SCRIPT), "--echo-server", "--cpu", str(args.cpu)]
        echo, echo_url = await fleet.start("echo", echo_argv, folder)
        nodes = {"store": store, "central": central, "echo": echo, "plain-store": plain_store}
        pinned = "unpinned" if args.cpu is None else f"on CPU {args.cpu}"
        print(
            f"storepos scan latency: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"tills {args.tills}, {args.seconds:g} s per scan run, {args.echo_seconds:g} s per echo run, "
            f"{args.client_procs} client process(es), store node and echo server "
            f"{pinned}\nwork folder {folder}; store {store_url} (pid {store.pid}), "
            f"central pid {central.pid}, echo {echo_url} (pid {echo.pid})",
            flush=True,
        )

        floor = await measure("echo", echo_url, 1, args.echo_seconds, args, fleet, folder, nodes)
        runs: list[dict[str, Any]] = []
        profile: dict[str, Any] | None = None
        for n in args.tills:
            echo_n = (
                floor if n == 1 else await measure("echo", echo_url, n, args.echo_seconds, args, fleet, folder, nodes)
            )
            profiled = args.py_spy and n == max(args.tills)
            if profiled:
                profile = {"lanes": n}
            scan = await measure(
                "scan", store_url, n, args.seconds, args, fleet, folder, nodes, profile if profiled else None
            )
            p50, echo_p50 = scan["round_trip"].get("p50_ms"), echo_n["round_trip"].get("p50_ms")
            runs.append(
                {
                    "n": n,
                    "scan": scan,
                    "echo": echo_n,
                    "ratio_to_echo_same_n": p50 / echo_p50 if p50 and echo_p50 else None,
                    "ratio_to_floor": p50 / floor["round_trip"]["p50_ms"] if p50 else None,
                }
            )
            rt = scan["round_trip"]
            print(
                f"  {n:>3} tills: {rt['per_s']:.0f} scans/s, p50 {rt.get('p50_ms', 0):.2f} ms, "
                f"p99 {rt.get('p99_ms', 0):.2f} ms, {scan['sales_per_s']:.1f} sales/s",
                flush=True,
            )
        repeats = [one_lane_pair(runs[0]["echo"], runs[0]["scan"])] if runs and runs[0]["n"] == 1 else []
        for _ in range(args.repeat - 1 if repeats else 0):  # the one-lane ratio again: load drifts between runs
            echo_1 = await measure("echo", echo_url, 1, args.echo_seconds, args, fleet, folder, nodes)
            scan_1 = await measure("scan", store_url, 1, args.seconds, args, fleet, folder, nodes)
            repeats.append(one_lane_pair(echo_1, scan_1))
            print(
                f"    1 till again: p50 {repeats[-1]['scan_p50_ms']:.3f} ms, echo floor p50 "
                f"{repeats[-1]['floor_p50_ms']:.3f} ms: {fmt(repeats[-1]['ratio'], '.2f')}x",
                flush=True,
            )
        transports: list[dict[str, Any]] = []
        for _ in range(args.repeat):  # one lane over wss (enrolled till) against the same over plain ws, in turn
            wss = await measure("scan", store_url, 1, args.seconds, args, fleet, folder, nodes)
            ws = await measure("scan", plain_url, 1, args.seconds, args, fleet, folder, nodes)
            wss_p50, ws_p50 = wss["round_trip"].get("p50_ms"), ws["round_trip"].get("p50_ms")
            cost = {"wss": cpu_per_scan(wss, "store"), "ws": cpu_per_scan(ws, "plain-store")}
            transports.append(
                {
                    "wss_p50_ms": wss_p50,
                    "ws_p50_ms": ws_p50,
                    "ratio": wss_p50 / ws_p50 if wss_p50 and ws_p50 else None,
                    "cpu_us_per_scan": cost,
                }
            )
            print(
                f"    1 till over wss: p50 {fmt(wss_p50, '.3f')} ms, over plain ws {fmt(ws_p50, '.3f')} ms: "
                f"{fmt(transports[-1]['ratio'], '.2f')}x; CPU per scan, store/client: wss "
                f"{fmt(cost['wss']['store'], '.0f')}/{fmt(cost['wss']['client'], '.0f')} us, ws "
                f"{fmt(cost['ws']['store'], '.0f')}/{fmt(cost['ws']['client'], '.0f')} us",
                flush=True,
            )
        ratios = sorted(t["ratio"] for t in transports if t["ratio"] is not None)
        tls_ratio = ratios[len(ratios) // 2] if ratios else None
        tls_verdict = "n/a" if tls_ratio is None else ("PASS" if tls_ratio <= TLS_RATIO else "FAIL")
        paced: list[dict[str, Any]] = []
        for n in args.paced:
            profiled = args.py_spy and not args.tills and n == max(args.paced)
            if profiled:
                profile = {"lanes": n, "paced": True}
            scan = await measure(
                "scan",
                store_url,
                n,
                args.seconds,
                args,
                fleet,
                folder,
                nodes,
                profile if profiled else None,
                period_s=args.pace_ms / 1000,
            )
            paced.append({"n": n, "scan": scan})
            late = scan["from_schedule"]
            print(
                f"  {n:>3} paced tills: {scan['offered_per_s']:.0f} scans/s offered, "
                f"{scan['answered_per_s']:.0f} answered/s, "
                f"from the scheduled instant p50 {late.get('p50_ms', 0):.2f} ms, "
                f"p99 {late.get('p99_ms', 0):.2f} ms",
                flush=True,
            )
        phases = [  # every measured window once (with 1 till, the echo at N=1 is the floor)
            ("echo", floor),
            *((kind, r[kind]) for r in runs for kind in ("echo", "scan") if r["n"] != 1 or kind == "scan"),
            *(("paced scan", r["scan"]) for r in paced),
        ]
        errors = sum(record["error_count"] for _, record in phases)

        print()
        if runs:
            print_table(runs, floor)
        if paced:
            print()
            print_paced_table(paced, args)
        targets = verdicts(runs, paced, floor, repeats)
        print()
        for t in targets.values():
            print(f"{t['verdict']:<5} {t.get('target', '')}  {_verdict_detail(t)}".rstrip())
        print(
            f"{tls_verdict:<5} one lane's scan p50 over wss (enrolled till) <= {TLS_RATIO}x plain ws  "
            f"{fmt(tls_ratio, '.2f')}x, median of {len(transports)} pairs"
        )
        if profile is not None:
            mode = "paced" if profile.get("paced") else "closed-loop"
            print_profile(profile, f"store node hot spots during the {profile['lanes']}-till {mode} run")
        disturbed_phases = [f"{kind} N={record['clients']}" for kind, record in phases if disturbed(record)]
        print_disturbed(disturbed_phases)
        if errors:
            print(f"\n!!! THIS RUN HAD {errors} ERRORS: the figures above are not valid !!!")

        report = new_report(
            "scan_latency",
            machine_info("trio", "trio-websocket", "msgspec", "storepos"),
            config={
                "tills": args.tills,
                "seconds": args.seconds,
                "echo_seconds": args.echo_seconds,
                "client_procs": args.client_procs,
                "cpu": args.cpu,
                "sale_size": SALE_SIZE,
                "store_lanes": max(LANES, *args.tills, *args.paced),
                "paced_tills": args.paced,
                "pace_ms": args.pace_ms,
                "jitter_ms": args.jitter_ms,
                "echo_payload_bytes": len(echo_payload()),
                "node_log_level": "WARNING",
            },
            floor=floor,
            runs=runs,
            paced_runs=paced,
            one_lane_pairs=repeats,
            wss_vs_ws_one_lane={"pairs": transports, "median_ratio": tls_ratio, "target": TLS_RATIO},
            targets=targets,
            errors=errors,
            disturbed_by_other_load=disturbed_phases,
            store_profile=profile,
        )
        print()
        write_report(args.out, report)
        ok = errors == 0
        return 0 if ok else 1
    finally:
        await fleet.stop_all()
        if ok and not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            print(f"work folder kept: {folder}", file=sys.stderr)


def one_lane_pair(echo: dict[str, Any], scan: dict[str, Any]) -> dict[str, Any]:
    """One measurement of the one-lane target: a floor and the scan run right after it."""
    floor_p50, scan_p50 = echo["round_trip"].get("p50_ms"), scan["round_trip"].get("p50_ms")
    return {
        "floor_p50_ms": floor_p50,
        "scan_p50_ms": scan_p50,
        "ratio": scan_p50 / floor_p50 if floor_p50 and scan_p50 else None,
    }


def _verdict_detail(t: dict[str, Any]) -> str:
    if "value" in t:
        pairs = f", median of {t['pairs']} echo/scan pairs" if t.get("pairs", 1) > 1 else ""
        return f"(measured {fmt(t['value'], '.2f')}x{pairs})"
    if "answered_per_s" in t:
        return (
            f"(offered {t['scans_per_s']:,.0f} scans/s, answered {t['answered_per_s']:,.0f}/s, "
            f"p99 {t['p99_ms']:.2f} ms)"
        )
    if "scans_per_s" in t:
        return f"(measured {t['scans_per_s']:,.0f} scans/s, p99 {t['p99_ms']:.2f} ms)"
    return ""


def default_cpu() -> int | None:
    """The store node and the echo server on one CPU, the last: both servers are measured the way a
    store node is best run (runtime/affinity.py), and the clients keep the other core(s)."""
    cpus = available_cpus()
    return max(cpus) if len(cpus) >= 2 else None


def parse_cpu(text: str) -> int | None:
    if text.strip().lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a CPU number or none, not {text!r}") from None


def parse_tills(text: str) -> list[int]:
    if text.strip().lower() == "none":
        return []
    try:
        tills = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 1,10,50,100, not {text!r}") from None
    if tills and tills[0] < 1:
        raise argparse.ArgumentTypeError("till counts must be positive")
    return tills


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Scan round trips of one store node with 1..100 tills vs. a bare echo.")
    p.add_argument("--tills", type=parse_tills, default=[1, 10, 50, 100], help="concurrency levels, e.g. 1,10,50,100")
    p.add_argument("--paced", type=parse_tills, default=[TARGET_LANES], help="paced runs' till counts (or none)")
    p.add_argument("--pace-ms", type=float, default=50.0, help="a paced till scans once per this (default 50)")
    p.add_argument("--jitter-ms", type=float, default=10.0, help="a paced scan moves by up to this (default 10)")
    p.add_argument("--seconds", type=float, default=10.0, help="measured seconds per scan run (default 10)")
    p.add_argument("--echo-seconds", type=float, help="measured seconds per echo run (default: --seconds)")
    add_out_option(p, "scan_latency")
    p.add_argument("--client-procs", type=int, default=1, help="spread the clients over K processes (default 1)")
    p.add_argument(
        "--cpu",
        type=parse_cpu,
        default=default_cpu(),
        help="the CPU the store node (store.toml `cpu`) and the echo server are kept on, or none "
        "(default: the highest CPU when there are two or more)",
    )
    p.add_argument("--py-spy", action="store_true", help="profile the store node during the largest scan run")
    p.add_argument("--keep", action="store_true", help="keep the work folder (logs, databases)")
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure the one-lane floor and scan K times in a row; its verdict is the median ratio (default 1)",
    )
    p.add_argument("--echo-server", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--ready-file", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--worker", metavar="SPEC", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.echo_server:
        if args.ready_file is None:
            p.error("--echo-server needs --ready-file")
        try:
            if args.cpu is not None:  # the same as the store node's `cpu`: like for like
                pin_process(args.cpu)
            trio.run(echo_server, args.ready_file)
        except KeyboardInterrupt:
            pass
        return 0
    if args.worker:
        trio.run(worker_main, args.worker)
        return 0
    if args.seconds <= 0 or args.client_procs < 1:
        p.error("--seconds must be positive and --client-procs at least 1")
    if args.cpu is not None and args.cpu not in available_cpus():
        p.error(f"--cpu {args.cpu}: not one of this machine's CPUs {sorted(available_cpus())} (or none)")
    if not args.tills and not args.paced:
        p.error("nothing to measure: --tills and --paced are both empty")
    if args.pace_ms <= 0 or not 0 <= args.jitter_ms < args.pace_ms / 2:
        p.error("--pace-ms must be positive and --jitter-ms below half of it")
    args.echo_seconds = args.echo_seconds or args.seconds
    return run_script("scan_latency", bench, args, stop_on_signals=True)


if __name__ == "__main__":
    sys.exit(main())
