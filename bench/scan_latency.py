"""Scan round trips of one store node with 1 to 100 concurrent tills, against a bare websocket echo.

    .venv/bin/python bench/scan_latency.py [--tills 1,10,50,100] [--seconds 10] [--out F.json]

Starts a real central and a real store node (100 lanes, logging at WARNING) and a bare trio-websocket
echo server, each as its own process. For every concurrency N it runs N tills, each on its own lane:
log in, warm up with one whole sale, then for `--seconds` scan the demo catalogue's barcodes and
close every 10 scans with Total + CashTender (a durable journal commit, answered by a Receipt).
Each scan is timed around `await client.request(Scan(...))`. The same client code then echoes a
Scan-sized binary message over N connections to the echo server: the floor that the store's
answer has to be compared with (same process boundary, same client, same concurrency).

Printed: a table per N and the verdicts on the two targets (one lane's scan median at most 3x the
single-connection echo median; 100 lanes at least 2,000 scans/s with p99 at most 20 ms). Written:
everything, percentiles and CPU times included, to a JSON file.

CPU seconds of the client, the store node, central and the echo server over each measured window
show who the bottleneck was; on 2 cores one client process can itself be the limit at 100 tills,
`--client-procs K` spreads the tills (and echo connections) over K client processes.
`--py-spy` samples the store node with py-spy during the largest scan run and prints its hot spots.

Internal modes (how the script starts its own helpers): `--echo-server --ready-file F` and
`--worker SPEC`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from importlib import metadata, resources
from pathlib import Path
from typing import IO, Any

import msgspec
import trio
from trio_websocket import ConnectionClosed, WebSocketRequest, open_websocket_url, serve_websocket

from protocol.codec import SUBPROTOCOL_MSGPACK, TillCodec
from protocol.frames import CancelSale, CashTender, Command, Error, Login, Receipt, SaleState, Scan, TillFrame, Total
from runtime.ready import wait_ready_file, write_ready_file
from till.client import TillClient, TillDisconnected, connect

SCRIPT = Path(__file__).resolve()
DEFAULT_OUT = SCRIPT.parent / "results" / "scan_latency.json"
LANES = 100  # the store is configured with lanes 1..LANES (more if --tills asks for more)
SALE_SIZE = 10  # scans per sale; then Total + CashTender
ECHO_WARMUP = 50  # echo round trips per connection before measuring
REQUEST_TIMEOUT = 15.0  # one request's bound; a store that does not answer is an error, not a hang
START_TIMEOUT = 60.0  # bound on starting a node, or connecting + logging in + warming up all clients
STOP_TIMEOUT = 5.0
TARGET_RATIO = 3.0  # one lane's scan p50 <= 3x the echo floor p50
TARGET_LANES = 100
TARGET_SCANS_PER_S = 2000.0
TARGET_P99_MS = 20.0
OPEN_STATUSES = ("open", "tender")
PIECE_UNITS = ("", "each", "pc", "pcs", "piece")  # catalogue `unit` of items a till scans without a scale
OTHER_LOAD_WARNING = 25.0  # % of one core used by processes outside the benchmark: warn that figures are disturbed


class BenchError(Exception):
    """The benchmark could not run as intended (a node did not start, a till could not log in...)."""


# ---------------------------------------------------------------------------------------------
# What one phase (N clients doing one kind of work) is asked to do and what it reports.
# Plain msgspec structs, so a worker process can send its part back as JSON.
# ---------------------------------------------------------------------------------------------


class PhaseSpec(msgspec.Struct):
    kind: str  # "scan": tills on a store node; "echo": connections to the echo server
    url: str
    ids: list[int]  # lanes (scan) or connection numbers (echo)
    seconds: float


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
    )


# ---------------------------------------------------------------------------------------------
# The client side of a phase: runs in this process or in a worker process.
# ---------------------------------------------------------------------------------------------


@functools.cache
def demo_catalog() -> tuple[list[str], str, str]:
    """Barcodes (first of each item sold by the piece: items sold by weight need a scale) and the
    first operator's number and PIN, from the catalogue a store node sells from when none is set."""
    data = json.loads((resources.files("storenode") / "data" / "demo_catalog.json").read_text())
    operator = data["operators"][0]
    codes = [item["barcodes"][0] for item in data["items"] if item.get("unit", "") in PIECE_UNITS]
    if not codes:
        raise BenchError("the demo catalogue has no item sold by the piece to scan")
    return codes, operator["number"], operator["pin"]


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
        self.deadline = trio.current_time() + seconds
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

        round_trips, closes = tally.round_trips_ns, tally.closes_ns
        k = lines = 0
        try:
            while trio.current_time() < gate.deadline:
                scan = Scan(code=barcodes[k % len(barcodes)])
                k += 1
                t0 = time.perf_counter_ns()
                answer = await ask(till, scan)
                round_trips.append(time.perf_counter_ns() - t0)
                tally.requests += 1
                if type(answer) is not SaleState:
                    tally.wrong(answer, "scan")
                    continue
                lines += 1
                if len(answer.lines) != lines:
                    tally.errors["scan: basket has the wrong number of lines"] += 1
                    lines = len(answer.lines)
                if lines >= SALE_SIZE:
                    t0 = time.perf_counter_ns()
                    answer = await close_sale(till)
                    closes.append(time.perf_counter_ns() - t0)
                    tally.requests += 2
                    if isinstance(answer, Receipt):
                        tally.sales += 1
                        lines = 0
                    else:
                        tally.wrong(answer, "sale")
        except (trio.TooSlowError, TillDisconnected, ConnectionClosed) as exc:
            tally.errors[f"lane: {type(exc).__name__}"] += 1
            return
        finally:
            gate.finished()
        if lines:  # leave the lane without an open sale for the next phase (not measured)
            await ask(till, CancelSale())


async def echo_client(spec: PhaseSpec, number: int, gate: Gate, tally: Tally) -> None:
    payload = echo_payload()
    async with open_websocket_url(spec.url) as ws:
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


async def run_phase(spec: PhaseSpec, on_go: Callable[[], Awaitable[None]]) -> PhaseResult:
    """Run the clients of `spec` in this process; `on_go` is awaited once all are ready, just before
    they start (the orchestrator samples the nodes' CPU there, a worker waits for its go)."""
    gate, tally = Gate(len(spec.ids)), Tally()
    client = scan_till if spec.kind == "scan" else echo_client
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
    )


def phase_budget(seconds: float) -> float:
    return START_TIMEOUT + seconds + 3 * REQUEST_TIMEOUT + 10


async def worker_main(spec_json: str) -> None:
    """A client process of `--client-procs`: says `ready`, waits for `go` on stdin, answers JSON."""
    spec = msgspec.json.decode(spec_json, type=PhaseSpec)

    async def wait_for_go() -> None:
        print("ready", flush=True)
        with trio.fail_after(START_TIMEOUT):
            line = await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
        if line.strip() != "go":
            raise BenchError(f"worker expected 'go', got {line!r}")

    with trio.fail_after(phase_budget(spec.seconds)):
        result = await run_phase(spec, wait_for_go)
    sys.stdout.write(msgspec.json.encode(result).decode() + "\n")
    sys.stdout.flush()


class LineReader:
    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream = stream
        self.buffer = b""

    async def line(self) -> str:
        while b"\n" not in self.buffer:
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                raise BenchError("a client worker exited early (see its log in the work folder)")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode()


async def run_workers(spec: PhaseSpec, procs: int, folder: Path, on_go: Callable[[], Awaitable[None]]) -> PhaseResult:
    """The same phase split over `procs` worker processes (round robin over the ids)."""
    chunks = [ids for ids in (spec.ids[i::procs] for i in range(procs)) if ids]
    workers: list[trio.Process] = []
    try:
        for w, ids in enumerate(chunks):
            part = msgspec.structs.replace(spec, ids=ids)
            argv = [sys.executable, str(SCRIPT), "--worker", msgspec.json.encode(part).decode()]
            log = folder / f"worker-{spec.kind}-{len(spec.ids)}-{w}.log"
            workers.append(await spawn(argv, log, folder, pipes=True))
        readers = [LineReader(p.stdout) for p in workers]  # type: ignore[arg-type]
        with trio.fail_after(START_TIMEOUT):
            for reader in readers:
                if (line := await reader.line()) != "ready":
                    raise BenchError(f"worker said {line!r} instead of ready")
        await on_go()
        for p in workers:
            await p.stdin.send_all(b"go\n")  # type: ignore[union-attr]
        with trio.fail_after(spec.seconds + 3 * REQUEST_TIMEOUT + 10):
            parts = [msgspec.json.decode(await r.line(), type=PhaseResult) for r in readers]
    finally:
        for p in workers:
            await stop(p)
    return merge(parts)


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

    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
        write_ready_file(ready_file, url=f"ws://127.0.0.1:{server.port}")


# ---------------------------------------------------------------------------------------------
# Processes: start, wait for ready, measure CPU, stop.
# ---------------------------------------------------------------------------------------------


def open_log(path: Path) -> IO[bytes]:
    return path.open("ab")


def tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


async def spawn(argv: list[str], log: Path, cwd: Path, *, pipes: bool = False) -> trio.Process:
    sink = open_log(log)
    try:
        return await trio.lowlevel.open_process(
            argv,
            stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
            stdout=subprocess.PIPE if pipes else sink,
            stderr=sink,
            cwd=cwd,
        )
    finally:
        sink.close()


async def stop(proc: trio.Process) -> None:
    with trio.CancelScope(shield=True):
        if proc.returncode is None:
            proc.terminate()
            with trio.move_on_after(STOP_TIMEOUT):
                await proc.wait()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def start_node(name: str, argv: list[str], folder: Path) -> tuple[trio.Process, dict[str, Any]]:
    ready = folder / f"{name}.ready"
    log = folder / f"{name}.log"
    proc = await spawn([*argv, "--ready-file", str(ready)], log, folder)
    try:
        with trio.fail_after(START_TIMEOUT):
            info = await wait_ready_file(ready, alive=lambda: proc.poll() is None)
    except (RuntimeError, trio.TooSlowError):
        await stop(proc)
        raise BenchError(f"{name} did not start; its log ends:\n{tail(log)}") from None
    except BaseException:
        await stop(proc)
        raise
    return proc, info


def check_nodes(nodes: dict[str, trio.Process], folder: Path) -> None:
    for name, proc in nodes.items():
        if proc.poll() is not None:
            log = tail(folder / f"{name}.log")
            raise BenchError(f"the {name} node exited (code {proc.returncode}) during the run; its log ends:\n{log}")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process, all its threads (Linux /proc); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> list[int]:
    """The first line of /proc/stat: user nice system idle iowait irq softirq steal ... (Linux only)."""
    try:
        with open("/proc/stat") as f:
            return [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return []


STORE_TOML = """\
store = "BENCH01"
name = "storepos benchmark store"
currency = "SEK"
lanes = [{lanes}]
data_dir = "store-data"

[gateway]
host = "127.0.0.1"
port = 0

[central]
url = "{central}"
"""


# ---------------------------------------------------------------------------------------------
# Statistics and the report.
# ---------------------------------------------------------------------------------------------


def latency_stats(samples_ns: list[int], elapsed_s: float) -> dict[str, float]:
    """Nearest-rank percentiles in milliseconds, and the rate over the window."""
    if not samples_ns:
        return {"count": 0, "per_s": 0.0}
    s = sorted(samples_ns)

    def q(p: float) -> float:
        return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))] / 1e6

    return {
        "count": len(s),
        "per_s": len(s) / elapsed_s if elapsed_s > 0 else 0.0,
        "min_ms": s[0] / 1e6,
        "mean_ms": sum(s) / len(s) / 1e6,
        "p50_ms": q(50),
        "p90_ms": q(90),
        "p99_ms": q(99),
        "p99_9_ms": q(99.9),
        "max_ms": s[-1] / 1e6,
    }


class Window:
    """CPU seconds of the node processes over one measured window (from go until `seconds` later)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.start: dict[str, float | None] = {}
        self.end: dict[str, float | None] = {}
        self.seconds = 0.0

        self.machine_start: list[int] = []
        self.machine_end: list[int] = []

    def sample(self) -> dict[str, float | None]:
        return {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    async def measure(self, seconds: float) -> None:
        self.start, self.machine_start, self.seconds = self.sample(), machine_ticks(), seconds
        await trio.sleep(seconds)
        self.end, self.machine_end = self.sample(), machine_ticks()

    def machine(self) -> dict[str, float] | None:
        """The whole machine over the window, in % of all its cores: busy, waiting on I/O, stolen by
        the hypervisor (a noisy neighbour shows up as steal and makes every figure slower)."""
        if not self.machine_start or not self.machine_end:
            return None
        d = [b - a for a, b in zip(self.machine_start, self.machine_end, strict=False)]
        total = sum(d[:8]) or 1
        user, nice, system, idle, iowait, irq, softirq, steal = d[:8]
        return {
            "busy_pct": 100 * (user + nice + system) / total,  # what processes used
            "irq_pct": 100 * (irq + softirq) / total,  # mostly our own loopback traffic
            "iowait_pct": 100 * iowait / total,
            "steal_pct": 100 * steal / total,
            "idle_pct": 100 * idle / total,
        }

    def cpu(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for name in self.pids:
            a, b = self.start.get(name), self.end.get(name)
            out[name] = None if a is None or b is None else b - a
        return out


def phase_record(result: PhaseResult, window: Window) -> dict[str, Any]:
    elapsed = result.elapsed_s
    record: dict[str, Any] = {
        "clients": result.clients,
        "elapsed_s": elapsed,
        "round_trip": latency_stats(result.round_trips_ns, elapsed),
        "requests": result.requests,
        "requests_per_s": result.requests / elapsed if elapsed > 0 else 0.0,
        "errors": result.errors,
        "error_count": sum(result.errors.values()),
        "client_cpu_s": result.cpu_s,
        "client_cpu_pct": 100 * result.cpu_s / elapsed if elapsed > 0 else 0.0,
        "node_cpu_s": window.cpu(),
        "node_cpu_pct": {name: None if v is None else 100 * v / window.seconds for name, v in window.cpu().items()},
        "machine_cpu": window.machine(),
    }
    machine = record["machine_cpu"]
    if machine is not None:  # what processes other than ours used meanwhile, in % of one core
        ours = record["client_cpu_pct"] + sum(v for v in record["node_cpu_pct"].values() if v is not None)
        record["other_load_pct"] = max(0.0, machine["busy_pct"] * (os.cpu_count() or 1) - ours)
    if result.kind == "scan":
        record["sales"] = result.sales
        record["sales_per_s"] = result.sales / elapsed if elapsed > 0 else 0.0
        record["close"] = latency_stats(result.closes_ns, elapsed)
        record["answer_bytes_mean"] = sum(result.answer_bytes) / max(1, len(result.answer_bytes))
    return record


PROJECT_FRAME = re.compile(r"\((storenode|runtime|protocol|devices|central|till)/")
SUPERVISOR_FRAME = re.compile(r"^(Supervisor\.|serve \(runtime/mailbox)")


def hot_spots(raw: Path, top: int = 15) -> dict[str, Any]:
    """Sample shares from py-spy's collapsed stacks: per function where the sample was taken (self),
    per library or project file where it was taken, and per project function on the stack (inclusive,
    leaving out the supervisor and mailbox loops every actor runs under)."""
    own: Counter[str] = Counter()
    files: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    try:
        text = raw.read_text()
    except OSError as exc:
        return {"error": f"no py-spy output: {exc}"}
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [re.sub(r"\(/.*?/site-packages/", "(", f) for f in stack.split(";")]
        total += n
        own[frames[-1]] += n
        where = re.search(r"\((.*?)(:\d+)?\)$", frames[-1])
        files[where.group(1) if where else frames[-1]] += n
        for frame in set(frames):
            if PROJECT_FRAME.search(frame) and not SUPERVISOR_FRAME.search(frame):
                inclusive[frame] += n
    pct = 100 / total if total else 0.0
    return {
        "raw": str(raw),
        "samples": total,
        "self": [(f, round(c * pct, 1)) for f, c in own.most_common(top)],
        "self_by_file": [(f, round(c * pct, 1)) for f, c in files.most_common(top)],
        "inclusive_project": [(f, round(c * pct, 1)) for f, c in inclusive.most_common(top)],
    }


async def profile_store(pid: int, seconds: float, out: Path, report: dict[str, Any]) -> None:
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    argv = [exe, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))), "--rate", "200"]
    argv += ["--format", "raw", "--function", "--nonblocking", "--output", str(out)]
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


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def print_table(runs: list[dict[str, Any]], floor: dict[str, Any]) -> None:
    floor_p50 = floor["round_trip"]["p50_ms"]
    head = (
        f"{'N':>4} {'scans':>7} {'scans/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'sales/s':>8} {'close p50':>9} "
        f"{'echo/s':>8} {'echo p50':>8} {'echo p99':>8} {'p50/echo':>8} {'p50/floor':>9} "
        f"{'client%':>7} {'store%':>6} {'central%':>8} {'steal%':>6} {'other%':>6} {'errors':>6}"
    )
    print(head)
    print("-" * len(head))
    for run in runs:
        scan, echo = run["scan"], run["echo"]
        rt, ert = scan["round_trip"], echo["round_trip"]
        cpu, machine = scan["node_cpu_pct"], scan["machine_cpu"] or {}
        print(
            f"{run['n']:>4} {rt['count']:>7} {rt['per_s']:>8.0f} {rt.get('p50_ms', 0):>7.2f} "
            f"{rt.get('p99_ms', 0):>7.2f} {scan['sales_per_s']:>8.1f} {scan['close'].get('p50_ms', 0):>9.2f} "
            f"{ert['per_s']:>8.0f} {ert.get('p50_ms', 0):>8.3f} {ert.get('p99_ms', 0):>8.3f} "
            f"{fmt(run['ratio_to_echo_same_n'], '.1f'):>8} {fmt(run['ratio_to_floor'], '.1f'):>9} "
            f"{scan['client_cpu_pct']:>7.0f} {fmt(cpu.get('store'), '.0f'):>6} {fmt(cpu.get('central'), '.0f'):>8} "
            f"{fmt(machine.get('steal_pct'), '.0f'):>6} {fmt(scan.get('other_load_pct'), '.0f'):>6} "
            f"{scan['error_count']:>6}"
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


def verdicts(runs: list[dict[str, Any]], floor: dict[str, Any]) -> dict[str, Any]:
    by_n = {r["n"]: r for r in runs}
    out: dict[str, Any] = {}
    one = by_n.get(1)
    if one is not None and one["scan"]["round_trip"]["count"]:
        ratio = one["ratio_to_floor"]
        out["single_lane_ratio"] = {
            "target": f"one lane's scan p50 <= {TARGET_RATIO:g}x echo floor p50",
            "value": ratio,
            "verdict": "PASS" if ratio is not None and ratio <= TARGET_RATIO else "MISS",
        }
    else:
        out["single_lane_ratio"] = {"verdict": "n/a (1 till not measured)"}
    big = by_n.get(TARGET_LANES)
    if big is not None and big["scan"]["round_trip"]["count"]:
        rt = big["scan"]["round_trip"]
        ok = rt["per_s"] >= TARGET_SCANS_PER_S and rt["p99_ms"] <= TARGET_P99_MS
        out["hundred_lanes"] = {
            "target": f"{TARGET_LANES} lanes >= {TARGET_SCANS_PER_S:,.0f} scans/s with p99 <= {TARGET_P99_MS:g} ms",
            "scans_per_s": rt["per_s"],
            "p99_ms": rt["p99_ms"],
            "verdict": "PASS" if ok else "MISS",
        }
    else:
        out["hundred_lanes"] = {"verdict": f"n/a ({TARGET_LANES} tills not measured)"}
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
    folder: Path,
    nodes: dict[str, trio.Process],
    profile: dict[str, Any] | None = None,
) -> dict[str, Any]:
    spec = PhaseSpec(kind=kind, url=url, ids=list(range(1, n + 1)), seconds=seconds)
    window = Window({name: proc.pid for name, proc in nodes.items()})
    procs = min(args.client_procs, n)
    check_nodes(nodes, folder)
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
                    result = await run_workers(spec, procs, folder, on_go)
                else:
                    result = await run_phase(spec, on_go)
    except Exception:
        check_nodes(nodes, folder)  # a node that died explains the failure better than its symptom
        raise
    check_nodes(nodes, folder)
    record = phase_record(result, window)
    record["client_procs"] = procs
    if record["error_count"]:
        print(f"!!! {kind} with {n} clients: {record['error_count']} ERRORS: {result.errors}", flush=True)
    if record.get("other_load_pct", 0) > OTHER_LOAD_WARNING:
        print(
            f"!!! {kind} with {n} clients: other processes used {record['other_load_pct']:.0f}% of a core "
            "during the window; these figures are disturbed",
            flush=True,
        )
    return record


async def bench(args: argparse.Namespace) -> int:
    """The whole run; SIGTERM or SIGHUP stop it like Ctrl-C does, with every process it started."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGHUP) as signals:
        async with trio.open_nursery() as nursery:

            async def stop_on_signal() -> None:
                async for signum in signals:
                    raise BenchError(f"stopped by {signal.Signals(signum).name}")

            nursery.start_soon(stop_on_signal)
            code = await run_bench(args)
            nursery.cancel_scope.cancel()
    return code


async def run_bench(args: argparse.Namespace) -> int:
    folder = Path(tempfile.mkdtemp(prefix="storepos-bench-"))
    procs: list[trio.Process] = []
    ok = False
    try:
        node = [sys.executable, "-m", "storepos", "--log-level", "WARNING"]
        central, info = await start_node(
            "central", [*node, "central", "run", "--db", "central.db", "--port", "0"], folder
        )
        procs.append(central)
        lanes = ", ".join(str(i) for i in range(1, max(LANES, *args.tills) + 1))
        (folder / "store.toml").write_text(STORE_TOML.format(lanes=lanes, central=info["url"]))
        store, info = await start_node("store", [*node, "store", "run", "--config", "store.toml"], folder)
        procs.append(store)
        store_url = info["url"]
        echo, info = await start_node("echo", [sys.executable, str(SCRIPT), "--echo-server"], folder)
        procs.append(echo)
        echo_url = info["url"]
        nodes = {"store": store, "central": central, "echo": echo}
        print(
            f"storepos scan latency: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"tills {args.tills}, {args.seconds:g} s per scan run, {args.echo_seconds:g} s per echo run, "
            f"{args.client_procs} client process(es)\nwork folder {folder}; store {store_url} (pid {store.pid}), "
            f"central pid {central.pid}, echo {echo_url} (pid {echo.pid})",
            flush=True,
        )

        floor = await measure("echo", echo_url, 1, args.echo_seconds, args, folder, nodes)
        runs: list[dict[str, Any]] = []
        profile: dict[str, Any] | None = None
        for n in args.tills:
            echo_n = floor if n == 1 else await measure("echo", echo_url, n, args.echo_seconds, args, folder, nodes)
            profiled = args.py_spy and n == max(args.tills)
            if profiled:
                profile = {"lanes": n}
            scan = await measure("scan", store_url, n, args.seconds, args, folder, nodes, profile if profiled else None)
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
        phases = [  # every measured window once (with 1 till, the echo at N=1 is the floor)
            ("echo", floor),
            *((kind, r[kind]) for r in runs for kind in ("echo", "scan") if r["n"] != 1 or kind == "scan"),
        ]
        errors = sum(record["error_count"] for _, record in phases)

        print()
        print_table(runs, floor)
        targets = verdicts(runs, floor)
        print()
        for t in targets.values():
            print(f"{t['verdict']:<5} {t.get('target', '')}  {_verdict_detail(t)}".rstrip())
        if profile is not None:
            print_profile(profile)
        disturbed = [
            f"{kind} N={record['clients']}"
            for kind, record in phases
            if record.get("other_load_pct", 0) > OTHER_LOAD_WARNING
        ]
        if disturbed:
            print(f"\n!!! other processes loaded the machine during {', '.join(disturbed)}: rerun on a quiet machine")
        if errors:
            print(f"\n!!! THIS RUN HAD {errors} ERRORS: the figures above are not valid !!!")

        report = {
            "benchmark": "scan_latency",
            "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": {
                "cpu_count": os.cpu_count(),
                "python": platform.python_version(),
                "implementation": platform.python_implementation(),
                "platform": platform.platform(),
                "versions": {pkg: _version(pkg) for pkg in ("trio", "trio-websocket", "msgspec", "storepos")},
            },
            "config": {
                "tills": args.tills,
                "seconds": args.seconds,
                "echo_seconds": args.echo_seconds,
                "client_procs": args.client_procs,
                "sale_size": SALE_SIZE,
                "store_lanes": max(LANES, *args.tills),
                "echo_payload_bytes": len(echo_payload()),
                "node_log_level": "WARNING",
            },
            "floor": floor,
            "runs": runs,
            "targets": targets,
            "errors": errors,
            "disturbed_by_other_load": disturbed,
            "store_profile": profile,
        }
        write_report(args.out, report)
        print(f"\nwritten to {args.out}")
        ok = errors == 0
        return 0 if ok else 1
    finally:
        for proc in reversed(procs):
            await stop(proc)
        if ok and not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            print(f"work folder kept: {folder}", file=sys.stderr)


def _verdict_detail(t: dict[str, Any]) -> str:
    if "value" in t:
        return f"(measured {fmt(t['value'], '.2f')}x)"
    if "scans_per_s" in t:
        return f"(measured {t['scans_per_s']:,.0f} scans/s, p99 {t['p99_ms']:.2f} ms)"
    return ""


def print_profile(profile: dict[str, Any]) -> None:
    print(f"\nstore node hot spots during the {profile['lanes']}-till run (py-spy, all threads, % of samples):")
    if "error" in profile:
        print(f"  {profile['error']}")
        return
    print(f"  {profile['samples']} samples; raw collapsed stacks in {profile['raw']}")
    print("  self time:")
    for frame, pct in profile["self"]:
        print(f"    {pct:5.1f}%  {frame}")
    print("  self time by file:")
    for frame, pct in profile["self_by_file"]:
        print(f"    {pct:5.1f}%  {frame}")
    print("  inclusive, storepos code:")
    for frame, pct in profile["inclusive_project"]:
        print(f"    {pct:5.1f}%  {frame}")


def write_report(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def parse_tills(text: str) -> list[int]:
    try:
        tills = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 1,10,50,100, not {text!r}") from None
    if not tills or tills[0] < 1:
        raise argparse.ArgumentTypeError("till counts must be positive")
    return tills


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Scan round trips of one store node with 1..100 tills vs. a bare echo.")
    p.add_argument("--tills", type=parse_tills, default=[1, 10, 50, 100], help="concurrency levels, e.g. 1,10,50,100")
    p.add_argument("--seconds", type=float, default=10.0, help="measured seconds per scan run (default 10)")
    p.add_argument("--echo-seconds", type=float, help="measured seconds per echo run (default: --seconds)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results (default bench/results/...)")
    p.add_argument("--client-procs", type=int, default=1, help="spread the clients over K processes (default 1)")
    p.add_argument("--py-spy", action="store_true", help="profile the store node during the largest scan run")
    p.add_argument("--keep", action="store_true", help="keep the work folder (logs, databases)")
    p.add_argument("--echo-server", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--ready-file", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--worker", metavar="SPEC", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.echo_server:
        if args.ready_file is None:
            p.error("--echo-server needs --ready-file")
        try:
            trio.run(echo_server, args.ready_file)
        except KeyboardInterrupt:
            pass
        return 0
    if args.worker:
        trio.run(worker_main, args.worker)
        return 0
    if args.seconds <= 0 or args.client_procs < 1:
        p.error("--seconds must be positive and --client-procs at least 1")
    args.echo_seconds = args.echo_seconds or args.seconds
    args.out = args.out.resolve()
    try:
        return trio.run(bench, args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        failures = leaves(exc, (BenchError, trio.TooSlowError))
        if not failures:
            raise
        for failure in failures:
            what = "timed out" if isinstance(failure, trio.TooSlowError) else str(failure)
            print(f"scan_latency: {what}", file=sys.stderr)
        return 2


def leaves(exc: BaseException, kinds: tuple[type[BaseException], ...]) -> list[BaseException]:
    """The exceptions of `kinds` in `exc`, looking inside (nested) exception groups as Trio raises them."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner, kinds)]
    return [exc] if isinstance(exc, kinds) else []


if __name__ == "__main__":
    sys.exit(main())
