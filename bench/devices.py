"""Peripherals: scanner line to basket update at the till, receipt encode-and-send, a printer queue of 1,000.

    .venv/bin/python bench/devices.py [--scans 500] [--receipts 1000] [--out bench/results/devices.json]

Why: a cashier scans, looks up at the till, and expects the line to be there; a customer waits for the
receipt; and a printer that was out of paper for ten minutes comes back to a queue it has to work off
while the lane keeps selling. Each figure is set against a floor measured in the same run on the same
(shared, noisy, 2-core) machine, because an absolute number alone cannot say whether the code or the
machine was slow.

1. Scanner to till. A LaneKit (devices/sim/kit.py: virtual printer on TCP, scanner, display and scale
   on pseudo-terminals) runs in this process, a real store node (`storepos store run`, lane 1, no
   central, logging at WARNING) as a subprocess configured with the kit's [[devices]] block, and a
   till (till.client) is attached to lane 1 and logged in. A scan writes one barcode line to the
   scanner's pty and is timed from just before the write until the till holds a SaleState with one
   more line (pushed by the store, ref 0). Floors: the same till's own Scan request round trip on the
   same store (what the serial path adds or saves over the till's own path), and the raw pty: a line
   written on a master and read on its slave through devices.serialport.open_serial, in this process
   (the transport alone). The scanner and the request scans alternate in sales of SALE_SIZE, each sale
   closed through the till (Total + CashTender of the cash due), so the basket sizes and the journal
   commits are those of real selling, and machine noise falls on both paths alike. The receipts those
   sales print on the kit's printer are checked afterwards: each exactly once.
2. Receipt encode-and-send, in this process. encode_receipt of realistic SaleRecords (10-20 lines from
   the demo catalogue, two VAT rates, weighed and multi-quantity lines, a void now and then, cash
   tender with rounding and change); then one receipt at a time through a ReceiptPrinter (TcpTransport,
   default timings as the store node runs it) to a VirtualPrinter: print_receipt (which encodes) and
   await drained(), i.e. including its status round trips before and after the job. Floors: the same
   bytes over a bare trio TCP stream to a sink that answers one byte per receipt; and the same bytes
   to a VirtualPrinter with one DLE EOT 1 after each (the least an actor can do to know the printer
   has the job, and the simulator's own cost).
3. A printer queue of --receipts: all submitted at once (pre-encoded, distinct job ids), timed until
   drained(); the VirtualPrinter's decoded paper must show each receipt id exactly once. Floors: the
   same bytes streamed over one bare TCP connection (one ack at the end), and sent to a VirtualPrinter
   with one DLE EOT 1 after each receipt.

CPU seconds of the store node and of this process are recorded over each window, and the whole
machine's: when processes outside the benchmark used more than OTHER_LOAD_WARNING % of a core, or the
hypervisor took more than STEAL_WARNING % of the machine (steal), during a window of a second or more,
the figures are flagged as disturbed (bench/measurements.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

# The repo root first, so that `devices` is the project's package and not this file: see bench/processes.py.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import functools
import math
import os
import platform
import random
import re
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import trio

from bench.measurements import (
    Window,
    add_out_option,
    disturbed,
    fmt,
    latency_stats,
    machine_info,
    new_report,
    print_disturbed,
    warn_if_disturbed,
    write_report,
)
from bench.processes import BenchError, Fleet, check_running, node_argv, run_script, store_toml
from devices.escpos import ReceiptLayout, encode_receipt, receipt_id, status_request
from devices.receipt_printer import ReceiptPrinter, TcpTransport
from devices.serialport import open_serial
from devices.sim.kit import LaneKit
from devices.sim.printer import VirtualPrinter
from devices.sim.pty import VirtualPort
from devices.sim.scanner import ScannerSim
from protocol.frames import CashTender, Command, Login, Receipt, SaleRecord, SaleState, Scan, TillFrame, Total
from runtime.health import HealthBoard
from storenode.lanes import basket
from storenode.lanes.basket import READY, Item, LaneState
from storenode.sync import replica
from till.client import TillClient, connect

STORE = "BENCH01"
CURRENCY = "SEK"
LANE = 1
SALE_SIZE = 20  # scans per sale; then Total + CashTender through the till
PIECE_UNITS = ("", "each", "pc", "pcs", "piece")  # catalogue units a till sells without a scale
VAT_RATES = (1200, 2500)  # the two VAT rates of the receipts of parts 2 and 3 (food 12 %, other 25 %)
BASE_MS = 1_767_225_600_000  # business time of the first generated receipt (2026-01-01)
WARMUP_RECEIPTS = 20  # encodes / sends before timing, so imports and first-use caches are not measured
WARMUP_PTY = 20
REQUEST_TIMEOUT = 10.0  # one scan, one close, one receipt: a store or printer that does not answer is an error
START_TIMEOUT = 60.0  # bound on the till attaching, devices coming online
PRINT_TIMEOUT = 60.0  # bound on a whole queue or floor run draining
RECEIPT_LINE = re.compile(r"^\s*Receipt (\S+-\d+-\d+)\s*$", re.MULTILINE)
QR_CODE = re.compile(r"\[QR: ([^\]]+)\]")

STORE_NAME = "storepos device benchmark"
STORE_SETTINGS = 'timezone = "Europe/Stockholm"\nreceipt_header = ["Storgatan 1, Stockholm", "Org.nr 556000-0000"]\n'


# ---------------------------------------------------------------------------------------------
# The demo catalogue: what the store sells, what the receipts are made of.
# ---------------------------------------------------------------------------------------------


@functools.cache
def catalog() -> replica.Catalog:
    """The catalogue a store node sells from when none is configured: scans must find their items."""
    return replica.read_catalog(replica.demo_catalog_path())


def piece_codes() -> list[str]:
    """First barcode of every item sold by the piece: a weighed item scanned without a stable weight
    would make the lane wait for the scale, which is not what part 1 measures."""
    codes = [item.barcodes[0] for item in catalog().items if item.unit in PIECE_UNITS]
    if not codes:
        raise BenchError("the demo catalogue has no item sold by the piece")
    return codes


def operator() -> tuple[str, str]:
    ops = catalog().operators
    if not ops:
        raise BenchError("the demo catalogue has no operator to log in with")
    return ops[0].number, ops[0].pin


def layout() -> ReceiptLayout:
    """The receipt layout a store node with STORE_SETTINGS prints with (storenode.peripherals.receipt_layout)."""
    return ReceiptLayout(
        store_name=STORE_NAME,
        header=["Storgatan 1, Stockholm", "Org.nr 556000-0000"],
        timezone="Europe/Stockholm",
    )


def make_records(count: int, seed: int) -> list[SaleRecord]:
    """`count` cash sales of 10-20 lines from two VAT rates, made with the lane's own basket functions
    (so totals, VAT and cash rounding are what a lane records): some lines weighed, some several of a
    piece, now and then a voided line; cash handed over rounded up to the next 100 kronor."""
    items = [
        (
            item.barcodes[0],
            Item(item=item.item, name=item.name, price=item.price, vat_rate=item.vat_rate, unit=item.unit),
        )
        for item in catalog().items
        if item.vat_rate in VAT_RATES
    ]
    by_rate = {rate: [x for x in items if x[1].vat_rate == rate] for rate in VAT_RATES}
    if any(not found for found in by_rate.values()):
        raise BenchError(f"the demo catalogue lacks items at VAT rates {VAT_RATES}")
    rng = random.Random(seed)
    number, _ = operator()
    records = []
    for n in range(1, count + 1):
        now = BASE_MS + n * 60_000
        state = basket.open_sale(LaneState(lane=LANE, status=READY, operator=number), f"bench-sale-{n}", now)
        size = rng.randint(10, 20)
        for k in range(size):
            code, item = rng.choice(by_rate[VAT_RATES[k]] if k < len(VAT_RATES) else items)
            if item.weighed:
                state = basket.add_line(state, item, code, 1, weight_g=rng.randint(150, 2500))
            else:
                state = basket.add_line(state, item, code, rng.choice((1, 1, 1, 2, 3)))
        if rng.random() < 0.2:
            state = basket.void_line(state, rng.randint(len(VAT_RATES) + 1, size))
        state = basket.to_total(state)
        due = basket.cash_due(state, CURRENCY)
        tendered = -(-due // 10_000) * 10_000
        basket.check_cash(state, tendered, CURRENCY)
        records.append(
            basket.record(
                state,
                store=STORE,
                receipt_no=n,
                kind="sale",
                currency=CURRENCY,
                closed_at=now + 90_000,
                tendered=tendered,
            )
        )
    return records


def paper_ids(text: str) -> tuple[Counter[str], Counter[str]]:
    """How often each receipt id appears on the paper: as the "Receipt <id>" line and in the QR code."""
    return Counter(RECEIPT_LINE.findall(text)), Counter(QR_CODE.findall(text))


def check_paper(text: str, expected: list[str], what: str) -> list[str]:
    """Problems with the printed paper: a receipt missing, printed twice, or one nobody sent."""
    lines, codes = paper_ids(text)
    problems = []
    for name, seen in (("receipt line", lines), ("QR code", codes)):
        missing = [rid for rid in expected if seen[rid] == 0]
        twice = [rid for rid in expected if seen[rid] > 1]
        stray = sorted(set(seen) - set(expected))
        if missing:
            problems.append(f"{what}: {len(missing)} receipt(s) without a {name}, e.g. {missing[:3]}")
        if twice:
            problems.append(f"{what}: {len(twice)} receipt(s) with more than one {name}, e.g. {twice[:3]}")
        if stray:
            problems.append(f"{what}: {len(stray)} {name}(s) for receipts never sent, e.g. {stray[:3]}")
    return problems


# ---------------------------------------------------------------------------------------------
# CPU over a window: ours, the store node's, and the machine's (to see who else was busy).
# ---------------------------------------------------------------------------------------------


def bench_window(pids: dict[str, int] | None = None) -> Window:
    """A CPU window over `pids` and always this process ("bench"): it runs the kit, the till, and all
    of parts 2 and 3."""
    return Window({"bench": os.getpid(), **(pids or {})})


def serial_stats(samples_ns: list[int]) -> dict[str, float]:
    """Percentiles in milliseconds; `per_s` is one at a time, back to back (1 / mean)."""
    return latency_stats(samples_ns, back_to_back=True)


# ---------------------------------------------------------------------------------------------
# Part 1: scanner line to basket update at the till.
# ---------------------------------------------------------------------------------------------


async def until(till: TillClient, predicate: Callable[[SaleState], bool]) -> SaleState:
    """The till's state once `predicate` holds; checked after every pushed state. Callers bound it."""
    while till.state is None or not predicate(till.state):
        await till.pushed.wait()  # read after the check with no checkpoint between: no push is missed
    return till.state


async def ask(till: TillClient, command: Command) -> TillFrame:
    """One request, bounded: a store that does not answer is an error of the run, not a hang."""
    with trio.fail_after(REQUEST_TIMEOUT):
        return await till.request(command)


class Selling:
    """One till on lane 1 selling through both paths; keeps the counts and the timings."""

    def __init__(self, till: TillClient, kit: LaneKit) -> None:
        self.till = till
        self.kit = kit
        self.codes = piece_codes()
        self.k = 0
        self.lines = 0  # lines in the open sale, as the last answer or push showed them
        self.receipts: list[str] = []  # ids of every receipt the sales printed, warm-up included
        self.closed = 0  # sales closed, warm-up included
        self.closes_ns: list[int] = []
        self.errors: Counter[str] = Counter()

    def next_code(self) -> str:
        code = self.codes[self.k % len(self.codes)]
        self.k += 1
        return code

    async def by_scanner(self) -> int:
        """One barcode line on the scanner's pty; ns until the till holds the basket with it."""
        code, want = self.next_code(), self.lines + 1
        t0 = time.perf_counter_ns()
        await self.kit.scanner.scan(code)
        try:
            with trio.fail_after(REQUEST_TIMEOUT):
                state = await until(self.till, lambda s: len(s.lines) == want)
        except trio.TooSlowError:
            raise BenchError(
                f"scan {self.k} ({code}) at the scanner never reached the till within {REQUEST_TIMEOUT:g} s "
                f"(the till shows {len(self.till.state.lines) if self.till.state else '?'} lines, expected {want})"
            ) from None
        elapsed = time.perf_counter_ns() - t0
        if state.lines[-1].code != code:
            self.errors["scanner: the new line is not the scanned item"] += 1
        self.lines = want
        return elapsed

    async def by_request(self) -> int:
        """The same scan as the till's own request; ns for the round trip."""
        code, want = self.next_code(), self.lines + 1
        t0 = time.perf_counter_ns()
        answer = await ask(self.till, Scan(code=code))
        elapsed = time.perf_counter_ns() - t0
        if not isinstance(answer, SaleState):
            raise BenchError(f"scan request {code} refused: {answer}")
        if len(answer.lines) != want or answer.lines[-1].code != code:
            self.errors["request: the basket is not the one expected"] += 1
        self.lines = len(answer.lines)
        return elapsed

    async def close(self) -> None:
        """Total + CashTender of the cash due through the till; then, as a cashier does, shut the drawer
        the tender kicked open, and wait for the lane's cleared state before the next sale's first scan."""
        t0 = time.perf_counter_ns()
        total = await ask(self.till, Total())
        if not isinstance(total, SaleState) or total.status != "tender":
            raise BenchError(f"Total refused: {total}")
        receipt = await ask(self.till, CashTender(amount=total.cash_due))
        if not isinstance(receipt, Receipt):
            raise BenchError(f"CashTender refused: {receipt}")
        self.closes_ns.append(time.perf_counter_ns() - t0)
        self.receipts.append(f"{STORE}-{LANE}-{receipt.receipt_no}")
        self.closed += 1
        kicks = self.closed  # one drawer kick per cash sale
        with trio.fail_after(REQUEST_TIMEOUT):
            await self.kit.printer.wait_until(lambda: self.kit.printer.kicks >= kicks)
            await until(self.till, lambda s: not s.lines and s.status == READY)
        self.kit.printer.set_drawer(False)
        self.lines = 0


async def pty_floor(folder: Path, count: int) -> tuple[list[int], dict[str, Any]]:
    """The transport alone: a scanner line written on a pty master and read whole on its slave, opened
    as the scanner actor opens its port (open_serial: pyserial setup, Trio FdStream), in this process."""
    port = VirtualPort(folder / "floor-pty")
    port.plug()
    line = ScannerSim(port, terminator="CRLF").line(piece_codes()[0])
    samples: list[int] = []
    window = bench_window()
    try:
        stream = await open_serial(port.path)
        async with stream:
            for i in range(WARMUP_PTY + count):
                t0 = time.perf_counter_ns()
                await port.send(line)
                got = b""
                with trio.fail_after(REQUEST_TIMEOUT):
                    while not got.endswith(b"\r\n"):
                        got += await stream.receive_some()
                elapsed = time.perf_counter_ns() - t0
                if got != line:
                    raise BenchError(f"pty floor: sent {line!r}, read {got!r}")
                if i == WARMUP_PTY - 1:
                    window.begin()
                elif i >= WARMUP_PTY:
                    samples.append(elapsed)
            window.end()
    finally:
        port.close()
    return samples, window.record()


async def scanner_part(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Part 1, with every process and simulator it starts stopped before it returns or raises."""
    number, pin = operator()
    fleet = Fleet()
    async with trio.open_nursery() as nursery:
        kit = LaneKit(folder, LANE)
        await nursery.start(kit.run)
        (folder / "store.toml").write_text(
            store_toml(STORE, STORE_NAME, CURRENCY, [LANE], settings=STORE_SETTINGS) + kit.devices_toml()
        )
        store, url = await fleet.start(
            "store", node_argv("store", "run", "--config", str(folder / "store.toml")), folder
        )
        try:
            print(f"  store node pid {store.pid} at {url}; kit printer on port {kit.printer.port}", flush=True)
            result = await sell(args, folder, kit, store, url, number, pin)
        except Exception:
            check_running({"store": store}, folder)  # a store node that died on its own explains the failure best
            raise
        finally:
            await fleet.stop_all()
            nursery.cancel_scope.cancel()
    return result


async def sell(
    args: argparse.Namespace, folder: Path, kit: LaneKit, store: trio.Process, url: str, number: str, pin: str
) -> dict[str, Any]:
    """Attach, log in, wait for the lane's scanner and printer, warm up with one sale per path, measure."""
    with trio.fail_after(START_TIMEOUT) as budget:
        async with connect(url, LANE, "bench-till-1") as till:
            answer = await ask(till, Login(operator=number, pin=pin))
            if not isinstance(answer, SaleState):
                raise BenchError(f"login refused: {answer}")
            devices_up = {f"scanner-{LANE}": ("online", "running"), f"printer-{LANE}": ("running",)}
            try:
                with trio.fail_after(START_TIMEOUT):
                    await until(till, lambda s: all(s.devices.get(n) in ok for n, ok in devices_up.items()))
            except trio.TooSlowError:
                seen = till.state.devices if till.state else {}
                raise BenchError(f"the lane's devices did not come online: {seen}") from None
            selling = Selling(till, kit)
            for _ in range(SALE_SIZE):  # warm-up: one sale through each path, not measured
                await selling.by_scanner()
            await selling.close()
            for _ in range(SALE_SIZE):
                await selling.by_request()
            await selling.close()
            selling.closes_ns.clear()
            budget.deadline = math.inf  # from here every wait is bounded by itself (REQUEST_TIMEOUT)
            return await measure_selling(args, folder, kit, store, selling)
    raise AssertionError("unreachable: connect() re-raises whatever ends the session")


async def measure_selling(
    args: argparse.Namespace, folder: Path, kit: LaneKit, store: trio.Process, selling: Selling
) -> dict[str, Any]:
    """The measured scans: sales of SALE_SIZE taking turns between the scanner and the till's request."""
    scanner_ns: list[int] = []
    request_ns: list[int] = []
    window = bench_window({"store": store.pid})
    window.begin()
    while len(scanner_ns) < args.scans or len(request_ns) < args.scans:
        for path, samples in ((selling.by_scanner, scanner_ns), (selling.by_request, request_ns)):
            todo = min(SALE_SIZE, args.scans - len(samples))
            if not todo:
                continue
            for _ in range(todo):
                samples.append(await path())
            await selling.close()
            check_running({"store": store}, folder)
    window.end()
    record = window.record()
    warn_if_disturbed("scanner and till scans", record, steal=True)
    with trio.fail_after(REQUEST_TIMEOUT):  # every sale's receipt on the kit's paper (the last may be under way)
        last = f"Receipt {selling.receipts[-1]}\n"
        await kit.printer.wait_until(lambda: last in kit.printer.text())
    problems = check_paper(kit.printer.text(), selling.receipts, "kit printer")
    return {
        "scanner": serial_stats(scanner_ns),
        "request": serial_stats(request_ns),
        "close": serial_stats(selling.closes_ns),
        "sales": len(selling.closes_ns),
        "receipts_printed": len(selling.receipts),
        "window": record,
        "errors": dict(selling.errors),
        "problems": problems,
    }


# ---------------------------------------------------------------------------------------------
# Parts 2 and 3: the receipt printer actor against the virtual printer, and bare TCP floors.
# ---------------------------------------------------------------------------------------------

ACK = b"\x06"


class Sink:
    """A bare TCP receiver: reads exactly the bytes of each message in `sizes` (no framing needed, both
    ends know them) and answers each with one byte; the least a printer connection can carry."""

    def __init__(self, sizes: list[int]) -> None:
        self.sizes = sizes
        self.received = 0

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        task_status.started(listeners[0].socket.getsockname()[1])
        await trio.serve_listeners(self.serve, listeners)

    async def serve(self, stream: trio.abc.Stream) -> None:
        async with stream:
            for size in self.sizes:
                left = size
                while left:
                    data = await stream.receive_some(left)
                    if not data:
                        return
                    left -= len(data)
                    self.received += len(data)
                await stream.send_all(ACK)


async def read_one(stream: trio.abc.ReceiveStream) -> bytes:
    data = await stream.receive_some(1)
    if not data:
        raise BenchError("the floor's far end closed the connection")
    return data


async def tcp_floor(payloads: list[bytes], *, each: bool) -> tuple[list[int], float]:
    """The same bytes over a bare trio TCP stream: one ack per receipt (`each`), or one at the end.
    Returns the per-receipt round trips (with `each`) and the wall time of the whole run."""
    sizes = [len(p) for p in payloads] if each else [sum(len(p) for p in payloads)]
    sink = Sink(sizes)
    samples: list[int] = []
    async with trio.open_nursery() as nursery:
        port = await nursery.start(sink.run)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            with trio.fail_after(PRINT_TIMEOUT):
                t0 = time.perf_counter_ns()
                for payload in payloads:
                    t = time.perf_counter_ns()
                    await stream.send_all(payload)
                    if each:
                        if await read_one(stream) != ACK:
                            raise BenchError("tcp floor: wrong ack")
                        samples.append(time.perf_counter_ns() - t)
                if not each and await read_one(stream) != ACK:
                    raise BenchError("tcp floor: wrong ack")
                wall = (time.perf_counter_ns() - t0) / 1e9
        nursery.cancel_scope.cancel()
    return samples, wall


async def virtual_printer_floor(payloads: list[bytes], ids: list[str]) -> tuple[list[int], float, list[str]]:
    """Each receipt's bytes and one DLE EOT 1 to a VirtualPrinter, waiting for its status byte: what an
    actor must do at least to know the printer has the job, without the actor. Also the simulator's cost."""
    printer = VirtualPrinter()
    query = status_request(1)
    samples: list[int] = []
    async with trio.open_nursery() as nursery:
        port = await nursery.start(printer.run)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            with trio.fail_after(PRINT_TIMEOUT):
                t0 = time.perf_counter_ns()
                for payload in payloads:
                    t = time.perf_counter_ns()
                    await stream.send_all(payload + query)
                    await read_one(stream)
                    samples.append(time.perf_counter_ns() - t)
                wall = (time.perf_counter_ns() - t0) / 1e9
        nursery.cancel_scope.cancel()
    return samples, wall, check_paper(printer.text(), ids, "virtual printer floor")


def new_printer(port: int) -> ReceiptPrinter:
    """The actor as the store node builds it (storenode.peripherals): default profile and timings."""
    return ReceiptPrinter(f"printer-{LANE}", TcpTransport("127.0.0.1", port), HealthBoard(), layout=layout())


async def one_by_one(records: list[SaleRecord]) -> tuple[list[int], list[str]]:
    """Part 2: print_receipt (encode + submit) and await drained(), one receipt at a time. The first
    WARMUP_RECEIPTS are sent but not timed. Returns the timings and the paper's problems."""
    sim = VirtualPrinter()
    samples: list[int] = []
    async with trio.open_nursery() as nursery:
        port = await nursery.start(sim.run)
        printer = new_printer(port)
        with trio.fail_after(START_TIMEOUT):
            await nursery.start(printer.run)
        for i, record in enumerate(records):
            t0 = time.perf_counter_ns()
            if printer.print_receipt(record) is None:
                raise BenchError(f"receipt {receipt_id(record)} could not be encoded")
            with trio.fail_after(REQUEST_TIMEOUT):
                await printer.drained()
            if i >= WARMUP_RECEIPTS:
                samples.append(time.perf_counter_ns() - t0)
        nursery.cancel_scope.cancel()
    return samples, check_paper(sim.text(), [receipt_id(r) for r in records], "one by one")


async def queue_run(payloads: list[bytes], ids: list[str]) -> tuple[float, list[str], dict[str, Any]]:
    """Part 3: every receipt submitted at once to a connected, idle actor; seconds until drained()."""
    sim = VirtualPrinter()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(sim.run)
        printer = new_printer(port)
        with trio.fail_after(START_TIMEOUT):
            await nursery.start(printer.run)
            while printer.status is None:  # its first status poll done, the queue meets an idle actor
                await printer.next_status()
        window = bench_window()
        window.begin()
        t0 = time.perf_counter_ns()
        for job_id, payload in zip(ids, payloads, strict=True):
            printer.submit(job_id, payload)
        if printer.queue_depth != len(ids):
            raise BenchError(f"queue holds {printer.queue_depth} jobs after {len(ids)} submits")
        with trio.fail_after(PRINT_TIMEOUT):
            await printer.drained()
        wall = (time.perf_counter_ns() - t0) / 1e9
        window.end()
        done, queries = printer.done_count, len(sim.status_queries)
        nursery.cancel_scope.cancel()
    record = window.record()
    record["status_queries"] = queries
    record["jobs_done"] = done
    return wall, check_paper(sim.text(), ids, "queue"), record


async def receipts_part(args: argparse.Namespace) -> dict[str, Any]:
    records = make_records(args.receipts + WARMUP_RECEIPTS, args.seed)
    lay = layout()
    for record in records[:WARMUP_RECEIPTS]:
        encode_receipt(lay, record)
    measured = records[WARMUP_RECEIPTS:]
    ids = [receipt_id(r) for r in measured]

    encode_ns: list[int] = []
    payloads: list[bytes] = []
    window = bench_window()
    window.begin()
    for record in measured:
        t0 = time.perf_counter_ns()
        payload = encode_receipt(lay, record)
        encode_ns.append(time.perf_counter_ns() - t0)
        payloads.append(payload)
    window.end()
    encode_window = window.record()
    warn_if_disturbed("encode", encode_window, steal=True)
    print(f"  encoded {len(payloads)} receipts, {sum(map(len, payloads)) / len(payloads):.0f} bytes each", flush=True)

    window = bench_window()
    window.begin()
    send_ns, send_problems = await one_by_one(records)
    window.end()
    send_window = window.record()
    warn_if_disturbed("encode+send one by one", send_window, steal=True)

    window = bench_window()
    window.begin()
    tcp_each_ns, tcp_each_wall = await tcp_floor(payloads, each=True)
    _, tcp_stream_wall = await tcp_floor(payloads, each=False)
    vp_ns, vp_wall, vp_problems = await virtual_printer_floor(payloads, ids)
    window.end()
    floor_window = window.record()
    warn_if_disturbed("tcp and virtual printer floors", floor_window, steal=True)
    print("  one by one done; the queue ...", flush=True)

    queue_wall, queue_problems, queue_window = await queue_run(payloads, ids)
    warn_if_disturbed("printer queue", queue_window, steal=True)
    n = len(payloads)
    sizes = [len(p) for p in payloads]
    return {
        "receipts": n,
        "lines_per_receipt": {"min": min(len(r.lines) for r in measured), "max": max(len(r.lines) for r in measured)},
        "payload_bytes": {"mean": sum(sizes) / n, "min": min(sizes), "max": max(sizes), "total": sum(sizes)},
        "encode": serial_stats(encode_ns),
        "encode_window": encode_window,
        "encode_and_send": serial_stats(send_ns),
        "encode_and_send_window": send_window,
        "floor_tcp_ack_each": serial_stats(tcp_each_ns),
        "floor_virtual_printer_status_each": serial_stats(vp_ns),
        "floor_window": floor_window,
        "queue": {"seconds": queue_wall, "receipts_per_s": n / queue_wall, "window": queue_window},
        "floor_queue_tcp_stream": {"seconds": tcp_stream_wall, "receipts_per_s": n / tcp_stream_wall},
        "floor_queue_tcp_ack_each": {"seconds": tcp_each_wall, "receipts_per_s": n / tcp_each_wall},
        "floor_queue_virtual_printer": {"seconds": vp_wall, "receipts_per_s": n / vp_wall},
        "problems": send_problems + vp_problems + queue_problems,
    }


# ---------------------------------------------------------------------------------------------
# The report.
# ---------------------------------------------------------------------------------------------


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def print_report(report: dict[str, Any]) -> None:
    scan, rec = report["scanner"], report["receipts"]
    head = f"{'':<52} {'count':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'per s':>8} {'p50 vs floor':>14}"
    print()
    print(head)
    print("-" * len(head))

    def row(label: str, s: dict[str, float], vs: str = "") -> None:
        print(
            f"{label:<52} {s['count']:>6} {fmt(s.get('p50_ms'), '.3f'):>8} {fmt(s.get('p99_ms'), '.3f'):>8} "
            f"{fmt(s.get('max_ms'), '.3f'):>8} {fmt(s.get('per_s'), '.0f'):>8} {vs:>14}"
        )

    def vs(s: dict[str, float], floor: dict[str, float]) -> str:
        r = ratio(s.get("p50_ms"), floor.get("p50_ms"))
        return "-" if r is None else f"{r:.2f}x"

    print("1. scanner line -> basket update at the till")
    row("  scanner pty line -> SaleState at the till", scan["scanner"])
    row("  floor: till's own Scan request round trip", scan["request"], vs(scan["scanner"], scan["request"]))
    row("  floor: raw pty line, master -> open_serial slave", scan["pty_floor"], vs(scan["scanner"], scan["pty_floor"]))
    row("  (sale close: Total + CashTender, for reference)", scan["close"])
    print("2. receipt encode-and-send")
    row("  encode_receipt (10-20 lines, 2 VAT rates, cash)", rec["encode"])
    row("  print_receipt + drained() via ReceiptPrinter", rec["encode_and_send"])
    row(
        "  floor: same bytes, bare TCP, 1-byte ack each",
        rec["floor_tcp_ack_each"],
        vs(rec["encode_and_send"], rec["floor_tcp_ack_each"]),
    )
    row(
        "  floor: same bytes + DLE EOT 1 to VirtualPrinter",
        rec["floor_virtual_printer_status_each"],
        vs(rec["encode_and_send"], rec["floor_virtual_printer_status_each"]),
    )
    print(f"3. printer queue: {rec['receipts']} receipts submitted at once")
    head3 = f"{'':<52} {'seconds':>8} {'receipts/s':>11} {'queue slower by':>16}"
    print(head3)
    q = rec["queue"]
    print(
        f"{'  ReceiptPrinter -> VirtualPrinter until drained()':<52} {q['seconds']:>8.3f} {q['receipts_per_s']:>11.0f}"
    )
    for key, label in (
        ("floor_queue_tcp_stream", "  floor: same bytes streamed, bare TCP, one ack"),
        ("floor_queue_tcp_ack_each", "  floor: same bytes, bare TCP, 1-byte ack each"),
        ("floor_queue_virtual_printer", "  floor: + DLE EOT 1 each to VirtualPrinter"),
    ):
        f = rec[key]
        print(f"{label:<52} {f['seconds']:>8.3f} {f['receipts_per_s']:>11.0f} {q['seconds'] / f['seconds']:>15.1f}x")

    s, r = scan["scanner"], scan["request"]
    print(
        f"\nthe serial path adds {s['p50_ms'] - r['p50_ms']:+.3f} ms at p50 and {s['p99_ms'] - r['p99_ms']:+.3f} ms "
        f"at p99 over the till's own request; the pty itself costs {scan['pty_floor']['p50_ms']:.3f} ms at p50"
    )
    e, es, tcp = rec["encode"], rec["encode_and_send"], rec["floor_tcp_ack_each"]
    rest = es["p50_ms"] - e["p50_ms"] - tcp["p50_ms"]
    print(
        f"a receipt: encode {e['p50_ms']:.3f} ms + bare send {tcp['p50_ms']:.3f} ms; the actor's status round trips "
        f"and scheduling add {rest:.3f} ms at p50 ({rec['payload_bytes']['mean']:.0f} bytes per receipt); "
        f"queue: {q['window']['status_queries'] / rec['receipts']:.1f} status requests per receipt"
    )
    w = scan["window"]
    cpu = w.get("cpu_pct", {})
    print(
        f"CPU over the scan window ({w['seconds']:.1f} s, {os.cpu_count()} CPUs): "
        f"store node {fmt(cpu.get('store'), '.0f')}%, "
        f"this process {fmt(cpu.get('bench'), '.0f')}%, others {fmt(w.get('other_load_pct'), '.0f')}% of a core, "
        f"steal {fmt(w.get('machine', {}).get('steal_pct'), '.0f')}%"
    )


async def bench(args: argparse.Namespace) -> int:
    folder = Path(tempfile.mkdtemp(prefix="storepos-devices-"))
    ok = False
    try:
        print(
            f"storepos devices: {os.cpu_count()} CPUs, Python {platform.python_version()}; {args.scans} scans per "
            f"path in sales of {SALE_SIZE}; {args.receipts} receipts\nwork folder {folder}",
            flush=True,
        )
        print("1. scanner line -> basket update ...", flush=True)
        scanner = await scanner_part(args, folder)
        pty_ns, pty_window = await pty_floor(folder, args.scans)
        scanner["pty_floor"] = serial_stats(pty_ns)
        scanner["pty_window"] = pty_window
        print("2./3. receipts ...", flush=True)
        receipts = await receipts_part(args)
        windows = {
            "scans": scanner["window"],
            "pty floor": pty_window,
            "encode": receipts["encode_window"],
            "encode+send": receipts["encode_and_send_window"],
            "floors": receipts["floor_window"],
            "queue": receipts["queue"]["window"],
        }
        report = new_report(
            "devices",
            machine_info("trio", "trio-websocket", "msgspec", "python-escpos", "storepos"),
            config={
                "scans": args.scans,
                "receipts": args.receipts,
                "sale_size": SALE_SIZE,
                "seed": args.seed,
                "node_log_level": "WARNING",
                "warmup_receipts": WARMUP_RECEIPTS,
            },
            scanner=scanner,
            receipts=receipts,
            disturbed_by_other_load=[name for name, w in windows.items() if disturbed(w, steal=True)],
        )
        print_report(report)
        problems = scanner["problems"] + receipts["problems"]
        errors = sum(scanner["errors"].values())
        report["problems"] = problems
        report["errors"] = errors
        print()
        write_report(args.out, report)
        print_disturbed(report["disturbed_by_other_load"])
        if problems or errors:
            for problem in problems:
                print(f"!!! {problem}")
            print(
                f"\n!!! THIS RUN HAD {len(problems)} CHECK FAILURES AND {errors} ERRORS: the figures are not valid !!!"
            )
        ok = not problems and not errors
        return 0 if ok else 1
    finally:
        if ok and not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            print(f"work folder kept: {folder}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Scanner to till latency, receipt encode-and-send, a printer queue.")
    p.add_argument("--scans", type=int, default=500, help="measured scans per path (scanner, till request, pty)")
    p.add_argument("--receipts", type=int, default=1000, help="receipts encoded, sent one by one, and queued")
    p.add_argument("--seed", type=int, default=1, help="seed of the generated receipts")
    add_out_option(p, "devices")
    p.add_argument("--keep", action="store_true", help="keep the work folder (store log, store.db)")
    args = p.parse_args(argv)
    if args.scans < 1 or args.receipts < 1:
        p.error("--scans and --receipts must be at least 1")
    return run_script("devices", bench, args, stop_on_signals=True)


if __name__ == "__main__":
    sys.exit(main())
