"""Store -> central sync: a long offline backlog replayed, central ingesting from 200 stores at once,
and 200 stores reconnecting at once; over TLS with enrolled store keys and signed journals.

    .venv/bin/python bench/sync.py [--sales 100000] [--batch 500[,1000,...]] [--stores 200]
        [--store-sales 250] [--ingest-batch 50] [--client-procs K] [--repeat R]
        [--link both|tls|plain] [--only replay|ingest|reconnect] [--py-spy] [--out F.json]

Why: a store sells offline for as long as its line is down, and the day the line comes back its
backlog has to reach central before anyone trusts the chain's figures again; and central is one
process serving every store of the chain at once, which all dial it together the moment it comes
back after a restart or an outage. All are measured with the real processes
(`storepos central run`, `storepos store run`, logging at WARNING), and each figure is set against a
floor measured in the same run on the same (shared, noisy, 2-core) machine, because an absolute
number alone cannot say whether the code or the machine was slow.

Replay. A store.db holding `--sales` completed sales still in the outbox is produced with the job a
lane runs when it closes a sale (storenode.lanes.closing.close_sale: chain.append of basket.record,
outbox.enqueue of the journal body, stock.record of stock.sale_movements, save_state), 1,000 sales per
transaction, spread over 4 lanes, items looked up in the demo catalogue through the replica. That preparation is
timed but is not the figure. Then a real central and a real store node start; the figure is the time
from starting the store until its status (polled every 0.2 s over the till gateway) says outbox 0 and
link online. Afterwards: central holds exactly N sales of the store with N distinct (lane, receipt),
its stream cursors and stock agree with the store, and `storepos central reconcile` exits 0. Peak RSS
(VmHWM) of both nodes is read just before they are stopped. With several `--batch` values the replay
runs once per value from a copy of the same store.db (store.toml [central] batch).
Over which link: with `--link both` (the default) each replay runs twice back to back from the same
template, over TLS (central serving wss with its certificate, the store checking it against the
chain's CA) and over plain ws (`central run --insecure`, the store's `insecure = true`), the two
taking turns at going first per `--repeat`; the figure is the TLS run's time over the plain one's,
pair by pair, with the median over repeats judged (<= 1.3x, and the TLS replay <= 30 s). The store
signs its journal (the template's records are signed at close, as a lane signs them) and central
verifies the newest record of each lane in each batch on both links, since it has no switch for
that: the pair differs by TLS alone, and the cost of the signature checks is measured apart (that
many Ed25519 verifications, timed here) and printed beside the ratio.
Floor: the same frames (the same event bodies, batched the same way, encoded as the real EventBatch)
over one bare trio-websocket connection to a sink process that inserts each batch into a bare SQLite
table (WAL, one synchronous=FULL commit per batch, as central commits) and answers one small ack per
batch, with the link's window of 4 batches in flight per stream: the least work a replay can do.

Ingest. A fresh central over TLS (plain only with `--link plain`) with the simulated stores' keys
enrolled; this process (or `--client-procs` worker processes) opens `--stores` link connections at
once, each says LinkHello, proves its key, reads the LinkWelcome and sends its pre-encoded, signed sales
(SaleRecord bodies made with basket.record + encode_record) as EventBatch frames of `--ingest-batch`,
4 batches in flight like the real link, until its last seq is acked. Figure: sales / wall time from
the first batch sent to the last ack, with per-batch ack latency. Afterwards central must hold every
sale exactly once, raised no alarm, store each sale with its signature and key id, and pass its own
full journal audit (central.registers.sales.verify: every record's signature, every chain); then
one store sends its next sale signed with another store's key, which central must refuse
(bad_signature) with exactly one alarm: the run's central was verifying, not merely unbothered.
Floors: the same rows into central's own `sales` table with one FULL commit per batch in one process
(no network, no decoding), and the same frames sent over the same number of bare (plain) websocket
connections to a sink that answers each with an ack-sized message (no database).
The client's CPU time is reported: on 2 cores one client process can itself be the limit.

Reconnect. A fresh central over TLS with the `--stores` keys enrolled; each simulated store (all in
this process) connects, is welcomed and disconnects; a second later all dial at the same instant and
each times its dial start -> LinkWelcome (TCP, TLS handshake, websocket upgrade, hello, challenge,
proof, welcome), and dial start -> websocket open on the way; then the wall time from the gate to
the last welcome, and the server's CPU per connection. Floors: the same connections, the same way,
to a bare TLS websocket echo (served by the listener central serves with, its certificate from the
same kind of chain) and to a bare plain one: TLS handshake + one round trip, and the round trip
alone. No target is set; the figures are reported. The client shares the machine's 2 cores with
the server here, as it does in the floors.

Internal modes (how the script starts its own helpers): `--sink-server --ready-file F [--sink-db D]
[--sink-tls FOLDER]` and `--ingest-worker SPEC`.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root first: see bench/processes.py

import argparse
import functools
import hashlib
import itertools
import math
import os
import platform
import random
import shutil
import signal
import sqlite3
import ssl
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import msgspec
import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from trio_websocket import ConnectionClosed, HandshakeError, WebSocketRequest

from bench.measurements import (
    Window,
    add_out_option,
    cpu_seconds,
    fmt,
    hot_spots,
    latency_stats,
    load_average,
    machine_info,
    median,
    memory_mb,
    new_report,
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
    leaves,
    node_argv,
    round_robin,
    run_script,
    run_workers,
    serve_websocket_ready,
    store_toml,
    tail,
    wait_for_go,
)
from central.registers import alarms as journal_alarms
from central.registers import identities
from central.registers import sales as journal
from central.schema import MIGRATIONS as CENTRAL_MIGRATIONS
from devtools.certificates import central_context
from devtools.processes import enrol
from protocol import identity
from protocol.chain import GENESIS, chain_hash
from protocol.codec import LINK_SUBPROTOCOL, LinkCodec, encode_record
from protocol.frames import Ack, Event, EventBatch, LinkError, LinkHello, SaleRecord, Status, Stream
from protocol.identity import Purpose
from protocol.link import SessionError, greet
from protocol.tls import client_context
from protocol.websocket import dial, serve
from runtime.database import immediate, migrate, open_connection
from runtime.ready import write_ready_file
from storenode.app import KEY_FILE
from storenode.journal.chain import Signer
from storenode.lanes import basket, closing
from storenode.lanes.basket import READY, Item, LaneState
from storenode.schema import MIGRATIONS as STORE_MIGRATIONS
from storenode.sync import replica
from storenode.sync.link import STREAMS
from till.client import TillDisconnected, connect

SCRIPT = Path(__file__).resolve()
STORE = "BENCH01"
CURRENCY = "SEK"
OPERATOR = "1"
LANES = [1, 2, 3, 4]
WINDOW = 4  # SyncLink's default: batches in flight per stream
DEFAULT_BATCH = 500  # storenode.config.LinkConfig.batch
PREP_TX = 1_000  # sales per preparation transaction
BASE_MS = 1_767_225_600_000  # business time of the first prepared sale (2026-01-01)
POLL = 0.2  # default seconds between status polls while the backlog drains (--poll)
START_TIMEOUT = 60.0  # bound on all ingest clients connecting
STOP_TIMEOUT = 10.0  # after SIGTERM, before SIGKILL
REQUEST_TIMEOUT = 30.0  # one status request; one batch's ack
RECONCILE_TIMEOUT = 330.0  # the reconcile command bounds itself at 300 s
TARGET_REPLAY_S = 30.0
TARGET_REPLAY_SALES = 100_000
TARGET_INGEST = 5_000.0
TARGET_TLS_RATIO = 1.3  # the TLS replay's time over the plain one's, median over --repeat
LINKS = {"both": ["tls", "plain"], "tls": ["tls"], "plain": ["plain"]}  # --link: the replay's links, in turn
SETTLE_S = 1.0  # after the warm-up connections close, before every store dials again at once


# ---------------------------------------------------------------------------------------------
# Sales, made with the lane's own pure functions.
# ---------------------------------------------------------------------------------------------


def catalog_codes() -> tuple[replica.Catalog, list[str]]:
    catalog = replica.read_catalog(replica.demo_catalog_path())
    return catalog, [code for item in catalog.items for code in item.barcodes]


@functools.cache
def catalog_items() -> dict[str, Item]:
    """Barcode -> Item as the store's replica answers it (the demo catalogue loaded into an in-memory
    store schema and looked up with replica.lookup), for sales made without a store.db."""
    catalog, codes = catalog_codes()
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        migrate(conn, STORE_MIGRATIONS)
        conn.execute("BEGIN")
        replica.load(conn, catalog, "SEK")
        conn.execute("COMMIT")
        found = {code: replica.lookup(conn, code, STORE, "SEK", BASE_MS) for code in codes}
    finally:
        conn.close()
    return {code: item for code, item in found.items() if item is not None}


def ring_up(
    rng: random.Random, lane: int, now_ms: int, codes: Sequence[str], lookup: Callable[[str], Item | None]
) -> tuple[LaneState, int]:
    """A lane at tender with 1-4 lines of catalogue items, and the cash handed over (exact, or rounded
    up to the next 50 or 100 kronor so some sales give change): what a till session leaves before close."""
    state = basket.open_sale(
        LaneState(lane=lane, status=READY, operator=OPERATOR), uuid.UUID(int=rng.getrandbits(128)).hex, now_ms
    )
    for _ in range(rng.randint(1, 4)):
        code = rng.choice(codes)
        item = lookup(code)
        if item is None:
            raise BenchError(f"the demo catalogue has no item with barcode {code}")
        if getattr(item, "weighed", False):  # sold per kg: one line per weighing
            state = basket.add_line(state, item, code, 1, weight_g=rng.randint(150, 2500))
        else:
            state = basket.add_line(state, item, code, rng.randint(1, 3))
    state = basket.to_total(state)
    due = basket.cash_due(state, CURRENCY)
    step = rng.choice([0, 0, 5_000, 10_000])
    tendered = due if not step else -(-due // step) * step
    basket.check_cash(state, tendered, CURRENCY)
    return state, tendered


class Prep(msgspec.Struct):
    sales: int
    lanes: list[int]
    journal_events: int
    stock_events: int
    stock_lines: int
    journal_body_bytes: int
    stock_body_bytes: int
    seconds: float
    sales_per_s: float
    db_bytes: int


def prepare_store(db: Path, sales: int, seed: int) -> Prep:
    """A store.db with `sales` closed sales, all still in the outbox, written by the lane's own sale-close
    job (closing.close_sale), in transactions of PREP_TX sales."""
    started = time.perf_counter()
    catalog, codes = catalog_codes()
    signer = Signer(STORE, identity.load_or_create(db.parent / KEY_FILE)[0])  # the replay store's key beside it
    conn = open_connection(db)
    try:
        migrate(conn, STORE_MIGRATIONS)
        conn.execute("BEGIN IMMEDIATE")
        replica.load(conn, catalog, "SEK")
        conn.execute("COMMIT")
        rng = random.Random(seed)
        lines = 0
        for first in range(0, sales, PREP_TX):
            conn.execute("BEGIN IMMEDIATE")
            for n in range(first, min(sales, first + PREP_TX)):
                lane = LANES[n % len(LANES)]
                now = BASE_MS + n * 1_000
                state, tendered = ring_up(
                    rng, lane, now, codes, lambda code, at=now: replica.lookup(conn, code, STORE, "SEK", at)
                )
                closed = closing.close_sale(
                    conn,
                    state,
                    store=STORE,
                    currency=CURRENCY,
                    kind="sale",
                    closed_at=now,
                    signer=signer,
                    tendered=tendered,
                )
                lines += sum(len(movement.lines) for movement in closed.movements)
            conn.execute("COMMIT")
        counts = dict(conn.execute("SELECT stream, COUNT(*) FROM outbox GROUP BY stream").fetchall())
        sizes = dict(conn.execute("SELECT stream, SUM(LENGTH(body)) FROM outbox GROUP BY stream").fetchall())
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    seconds = time.perf_counter() - started
    return Prep(
        sales=sales,
        lanes=LANES,
        journal_events=counts.get(Stream.JOURNAL, 0),
        stock_events=counts.get(Stream.STOCK, 0),
        stock_lines=lines,
        journal_body_bytes=sizes.get(Stream.JOURNAL, 0),
        stock_body_bytes=sizes.get(Stream.STOCK, 0),
        seconds=seconds,
        sales_per_s=sales / seconds if seconds > 0 else 0.0,
        db_bytes=db.stat().st_size,
    )


def replay_frames(db: Path, batch: int) -> list[bytes]:
    """The frames a store sends replaying this outbox: EventBatch of `batch` events, streams taking
    turns as SyncLink._sender does. Built before the floor is timed."""
    codec = LinkCodec()
    conn = open_connection(db, readonly=True)
    try:
        per_stream = []
        for name in STREAMS:
            rows = conn.execute(  # each journal event with its record's signature, as outbox.pending reads them
                "SELECT o.seq, o.kind, o.body, j.sig, j.key FROM outbox o"
                " LEFT JOIN journal j ON o.stream = 'journal' AND j.seq = o.seq WHERE o.stream = ? ORDER BY o.seq",
                (name,),
            )
            events = [Event(seq, kind, body, sig or b"", key or "") for seq, kind, body, sig, key in rows]
            per_stream.append(
                [
                    codec.encode(EventBatch(store=STORE, stream=name, events=events[i : i + batch]))
                    for i in range(0, len(events), batch)
                ]
            )
    finally:
        conn.close()
    return [frame for turn in itertools.zip_longest(*per_stream) for frame in turn if frame is not None]


def ingest_store_name(index: int) -> str:
    return f"B{index:03d}"


def ingest_store_key(index: int) -> Ed25519PrivateKey:
    """A simulated store's key, the same in every client process (derived from its name: a benchmark's)."""
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(f"bench:{ingest_store_name(index)}".encode()).digest())


def register_ingest_stores(central_db: Path, stores: Iterable[int]) -> None:
    """Enrol the simulated stores at central with their keys, through the registry's own function."""
    conn = open_connection(central_db)
    try:
        migrate(conn, CENTRAL_MIGRATIONS)
        with immediate(conn):
            for i in stores:
                public = identity.public_bytes(ingest_store_key(i))
                identities.register(conn, ingest_store_name(i), public, int(time.time() * 1000))
    finally:
        conn.close()


def ingest_events(index: int, sales: int, seed: int) -> list[Event]:
    """One simulated store's journal: `sales` sales over 4 lanes, canonical bodies as the store hashes them."""
    by_code = catalog_items()
    codes = sorted(by_code)
    rng = random.Random(seed * 1_000_003 + index)
    store = ingest_store_name(index)
    signer = Signer(store, ingest_store_key(index))
    receipt_nos = dict.fromkeys(LANES, 0)
    heads = dict.fromkeys(LANES, GENESIS)
    out = []
    for seq in range(1, sales + 1):
        lane = LANES[(seq - 1) % len(LANES)]
        receipt_nos[lane] += 1
        now = BASE_MS + seq * 1_000
        state, tendered = ring_up(rng, lane, now, codes, by_code.get)
        record = basket.record(
            state,
            store=store,
            receipt_no=receipt_nos[lane],
            kind="sale",
            currency=CURRENCY,
            closed_at=now,
            tendered=tendered,
        )
        body = encode_record(record)
        heads[lane] = chain_hash(heads[lane], body)
        out.append(Event(seq=seq, kind="sale", body=body, sig=signer.sign(heads[lane]), key=signer.key_id))
    return out


def ingest_frames(events: list[Event], index: int, batch: int) -> list[tuple[int, bytes]]:
    """(last seq, encoded EventBatch) per batch of one store's journal."""
    codec = LinkCodec()
    store = ingest_store_name(index)
    return [
        (chunk[-1].seq, codec.encode(EventBatch(store=store, stream=Stream.JOURNAL, events=chunk)))
        for chunk in (events[i : i + batch] for i in range(0, len(events), batch))
    ]


# ---------------------------------------------------------------------------------------------
# The sink: the floor's far end (its own process, so the floor crosses the same process boundary).
# ---------------------------------------------------------------------------------------------

ACK_SIZED = LinkCodec().encode(Ack(store="B000", stream=Stream.JOURNAL, seq=250))


async def sink_server(ready_file: Path, db: Path | None, tls_folder: Path | None = None) -> None:
    """Answer every message with a small ack; with a database, first insert the batch's events into a
    bare table and commit it with synchronous=FULL (on a worker thread, as central's database actor
    does, so the network side keeps reading meanwhile). With `tls_folder` (central's TLS material, as
    bench.processes.central_tls makes it) it serves wss through the listener central serves with
    (protocol.websocket.serve), so a floor over TLS costs what central's TLS costs."""
    conn: sqlite3.Connection | None = None
    if db is not None:
        conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS events (stream TEXT NOT NULL, seq INTEGER NOT NULL, body BLOB NOT NULL, "
            "PRIMARY KEY (stream, seq)) WITHOUT ROWID"
        )
    codec = LinkCodec()
    lock = trio.Lock()

    def insert(rows: list[tuple[str, int, bytes]]) -> None:
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO events (stream, seq, body) VALUES (?,?,?)", rows)
        conn.execute("COMMIT")

    async def handler(request: WebSocketRequest) -> None:
        offered = request.proposed_subprotocols
        ws = await request.accept(subprotocol=offered[0] if offered else None)
        try:
            while True:
                data = await ws.get_message()
                if conn is None:
                    await ws.send_message(ACK_SIZED)
                    continue
                _tag, store, stream, events = msgspec.msgpack.decode(data)
                rows = [(stream, seq, body) for seq, _kind, body, *_signed in events]
                async with lock:
                    await trio.to_thread.run_sync(insert, rows)
                await ws.send_message(codec.encode(Ack(store=store, stream=stream, seq=rows[-1][1])))
        except ConnectionClosed:
            pass

    try:
        if tls_folder is None:
            await serve_websocket_ready(handler, ready_file)
            return
        async with trio.open_nursery() as nursery:
            context = central_context(tls_folder)
            port = await nursery.start(functools.partial(serve, ssl_context=context), handler, "127.0.0.1", 0, "sink")
            write_ready_file(ready_file, url=f"wss://127.0.0.1:{port}")
    finally:
        if conn is not None:
            conn.close()


# ---------------------------------------------------------------------------------------------
# This script's own processes (the sink, py-spy), started and stopped by a Fleet (bench/processes.py).
# ---------------------------------------------------------------------------------------------


def sink_argv(db: Path | None, tls_folder: Path | None = None) -> list[str]:
    argv = [sys.executable, str(SCRIPT), "--sink-server"]
    argv += ["--sink-db", str(db)] if db is not None else []
    return [*argv, "--sink-tls", str(tls_folder)] if tls_folder is not None else argv


class Profiler:
    """py-spy sampling one process from `begin` until `end` (SIGINT makes py-spy write its file)."""

    def __init__(self, fleet: Fleet, name: str, pid: int, out: Path) -> None:
        self.fleet, self.name, self.pid, self.out = fleet, name, pid, out
        self.proc: trio.Process | None = None
        self.report: dict[str, Any] = {"process": name}

    async def begin(self) -> None:
        argv = py_spy_record(self.pid, self.out, 600, threads=True)
        try:
            self.proc = await self.fleet.spawn(argv, self.out.with_suffix(".log"), self.out.parent)
        except OSError as exc:
            self.report["error"] = f"py-spy did not start: {exc}"

    async def end(self) -> dict[str, Any]:
        if self.proc is None:
            return self.report
        with trio.move_on_after(20):
            self.proc.send_signal(signal.SIGINT)
            await self.proc.wait()
        await self.fleet.stop(self.proc)
        if not self.out.exists():
            self.report["error"] = f"py-spy wrote nothing: {tail(self.out.with_suffix('.log'), 500)}"
            return self.report
        self.report.update(hot_spots(self.out, threads=True))
        return self.report


# ---------------------------------------------------------------------------------------------
# Part 1: replay.
# ---------------------------------------------------------------------------------------------


async def replay_floor(fleet: Fleet, work: Path, template: Path, batch: int, events: int, keep: bool) -> dict[str, Any]:
    """The replay's frames over one bare websocket to a sink that commits each batch (FULL) and acks it."""
    frames = await trio.to_thread.run_sync(replay_frames, template, batch)
    await trio.Path(work).mkdir(parents=True)
    db = work / "sink.db"
    sink, url = await fleet.start("sink", sink_argv(db), work)
    window = Window({"sink": sink.pid})
    largest = max(map(len, frames), default=0)
    try:
        async with dial(url, subprotocols=[LINK_SUBPROTOCOL]) as ws:
            slots = trio.Semaphore(WINDOW * len(STREAMS))
            with trio.fail_after(REQUEST_TIMEOUT + len(frames)):
                window.begin()
                cpu0 = time.process_time()
                t0 = time.perf_counter()
                async with trio.open_nursery() as nursery:

                    async def receive() -> None:
                        for _ in frames:
                            await ws.get_message()
                            slots.release()

                    nursery.start_soon(receive)
                    for frame in frames:
                        await slots.acquire()
                        await ws.send_message(frame)
                elapsed = time.perf_counter() - t0
                client_cpu = time.process_time() - cpu0
                window.end()
    except (ConnectionClosed, BaseExceptionGroup) as exc:
        closed = leaves(exc, (ConnectionClosed,))
        if not closed:
            raise
        reason = closed[0].reason  # type: ignore[attr-defined]
        raise BenchError(f"the floor's sink closed the link: {reason} (largest frame {largest:,} bytes)") from None
    finally:
        await fleet.stop(sink)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        stored = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    finally:
        conn.close()
    if stored != events:
        raise BenchError(f"floor sink stored {stored} events, expected {events}")
    if not keep:
        await trio.to_thread.run_sync(shutil.rmtree, work, True)
    return {
        "batch": batch,
        "frames": len(frames),
        "frame_bytes": sum(len(f) for f in frames),
        "max_frame_bytes": largest,
        "seconds": elapsed,
        "events_per_s": events / elapsed,
        "window": window.record(client_cpu),
    }


class Drain(msgspec.Struct):
    ready_s: float = 0.0  # store start -> ready file
    online_s: float | None = None  # store start -> first status saying link online
    drained_s: float = 0.0  # store start -> outbox 0 and link online
    polls: int = 0
    status_ns: list[int] = []
    timeline: list[tuple[float, int, str]] = []  # (seconds since start, outbox, link)
    rss_max_mb: dict[str, float] = {}


async def watch_drain(url: str, t0: float, drain: Drain, pids: dict[str, int], poll: float) -> None:
    """Poll the store's status until its outbox is empty and its link online; meanwhile time every
    status request and sample both nodes' RSS. Bound it with trio.fail_after."""

    def sample_rss() -> None:
        for name, pid in pids.items():
            rss = memory_mb(pid).get("VmRSS", 0.0)
            drain.rss_max_mb[name] = max(drain.rss_max_mb.get(name, 0.0), rss)

    while True:
        try:
            async with connect(url, lane=0, attach=False) as client:
                while True:
                    sent = time.perf_counter_ns()
                    with trio.fail_after(REQUEST_TIMEOUT):
                        status = await client.status()
                    now = time.perf_counter()
                    drain.status_ns.append(time.perf_counter_ns() - sent)
                    drain.polls += 1
                    sample_rss()
                    if not isinstance(status, Status):
                        raise BenchError(f"store answered status with {status!r}")
                    drain.timeline.append((round(now - t0, 3), status.outbox, status.link))
                    if status.link == "online" and drain.online_s is None:
                        drain.online_s = now - t0
                    if status.outbox == 0 and status.link == "online":
                        drain.drained_s = now - t0
                        return
                    await trio.sleep(poll)
        except (OSError, ConnectionClosed, HandshakeError, TillDisconnected):
            await trio.sleep(poll)


def verify_replay(central_db: Path, store_db: Path, prep: Prep) -> dict[str, Any]:
    """What central holds of the store after the replay, against the store's own files."""
    remote = sqlite3.connect(f"file:{central_db}?mode=ro", uri=True)
    local = sqlite3.connect(f"file:{store_db}?mode=ro", uri=True)
    try:
        sales_n, distinct = remote.execute(
            "SELECT COUNT(*), (SELECT COUNT(*) FROM (SELECT DISTINCT lane, receipt_no FROM sales WHERE store = ?)) "
            "FROM sales WHERE store = ?",
            (STORE, STORE),
        ).fetchone()
        other = remote.execute("SELECT COUNT(*) FROM sales WHERE store != ?", (STORE,)).fetchone()[0]
        cursors = dict(remote.execute("SELECT stream, seq FROM stream_cursors WHERE store = ?", (STORE,)).fetchall())
        moves = remote.execute("SELECT COUNT(*) FROM stock_moves WHERE store = ?", (STORE,)).fetchone()[0]
        stock_there = dict(
            remote.execute("SELECT item, qty FROM stock WHERE location = ? AND qty != 0", (STORE,)).fetchall()
        )
        stock_here = dict(local.execute("SELECT item, qty FROM stock WHERE qty != 0").fetchall())
        heads_here = dict(local.execute("SELECT lane, MAX(receipt_no) FROM journal GROUP BY lane").fetchall())
        heads_there = dict(
            remote.execute("SELECT lane, MAX(receipt_no) FROM sales WHERE store = ? GROUP BY lane", (STORE,)).fetchall()
        )
        left = local.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    finally:
        remote.close()
        local.close()
    problems = []
    if sales_n != prep.sales or distinct != prep.sales:
        problems.append(f"central holds {sales_n} sales ({distinct} distinct lane/receipt), expected {prep.sales}")
    if other:
        problems.append(f"central holds {other} sales of other stores")
    expected_cursors = {Stream.JOURNAL: prep.journal_events, Stream.STOCK: prep.stock_events}
    if cursors != expected_cursors:
        problems.append(f"central's stream cursors {cursors}, expected {expected_cursors}")
    if moves != prep.stock_lines:
        problems.append(f"central holds {moves} stock moves, expected {prep.stock_lines}")
    if stock_here != stock_there:
        problems.append(f"stock differs: store {stock_here} central {stock_there}")
    if heads_here != heads_there:
        problems.append(f"last receipt per lane differs: store {heads_here} central {heads_there}")
    if left:
        problems.append(f"{left} events left in the store's outbox")
    return {"central_sales": sales_n, "distinct_receipts": distinct, "cursors": cursors, "problems": problems}


def nodes_cpu(run: dict[str, Any]) -> float:
    """CPU seconds of store and central over a replay (0 where /proc could not tell)."""
    return sum(v or 0.0 for v in run["cpu_s"].values())


def tls_vs_plain(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The TLS replay's time over the plain one's, pair by pair (same repeat, same batch), and the
    median per batch: the pairs ran back to back, from the same template, so the machine's drift
    between them is as small as this run can make it."""
    pairs = []
    for tls in (r for r in runs if r["link"] == "tls"):
        plain = [r for r in runs if r["link"] == "plain" and (r["repeat"], r["batch"]) == (tls["repeat"], tls["batch"])]
        if plain:
            pairs.append(
                {
                    "repeat": tls["repeat"],
                    "batch": tls["batch"],
                    "tls_s": tls["seconds"],
                    "plain_s": plain[0]["seconds"],
                    "ratio": tls["seconds"] / plain[0]["seconds"],
                    "cpu_ratio": nodes_cpu(tls) / nodes_cpu(plain[0]) if nodes_cpu(plain[0]) else None,
                }
            )
    batches = sorted({p["batch"] for p in pairs})
    return {
        "pairs": pairs,
        "median_ratio_by_batch": {b: median([p["ratio"] for p in pairs if p["batch"] == b]) for b in batches},
        "median_cpu_ratio_by_batch": {
            b: median([p["cpu_ratio"] for p in pairs if p["batch"] == b and p["cpu_ratio"]] or [0.0]) for b in batches
        },
    }


def signature_checks(prep: Prep, batches: list[int]) -> dict[str, Any]:
    """What central's signature checks cost in a replay, measured here: central verifies the newest
    record of each lane in each journal batch (central/registers/sales.py), and verifies in both
    links' replays (it has no switch for it), so the TLS / plain ratio cannot show their cost; this
    says how much of either replay they can be at most. The count assumes full batches."""
    key = ingest_store_key(0)
    public, head = identity.public_bytes(key), hashlib.sha256(b"head").digest()
    sig = identity.sign(key, Purpose.JOURNAL, STORE, head)
    rounds = 2_000
    t0 = time.perf_counter()
    for _ in range(rounds):
        identity.verify(public, sig, Purpose.JOURNAL, STORE, head)
    per_verify = (time.perf_counter() - t0) / rounds
    checks = {b: math.ceil(prep.journal_events / b) * len(LANES) for b in batches}
    return {
        "verify_us": per_verify * 1e6,
        "checks_by_batch": checks,
        "seconds_by_batch": {b: n * per_verify for b, n in checks.items()},
    }


async def replay_run(
    fleet: Fleet,
    work: Path,
    template: Path,
    prep: Prep,
    batch: int,
    args: argparse.Namespace,
    profile: bool,
    link: str,
) -> dict[str, Any]:
    """One replay of the template's backlog into a fresh central, over `link` ("tls": wss, the store
    checking central's certificate; "plain": ws with insecure = true). Central verifies the journal's
    signatures either way (it has no switch for that): the two links differ by TLS alone."""
    (work / "store-data").mkdir(parents=True)
    store_db = work / "store-data" / "store.db"
    await trio.to_thread.run_sync(shutil.copyfile, template, store_db)
    await trio.to_thread.run_sync(shutil.copytree, template.parent / KEY_FILE.parent, store_db.parent / KEY_FILE.parent)
    tls_args, ca = central_tls(work, plain=link == "plain")
    central, central_url = await fleet.start(
        "central",
        node_argv("central", "run", "--db", "central.db", "--port", "0", "--per-address", "0", *tls_args),
        work,
    )
    if central_url.startswith("wss://") != (link == "tls"):
        raise BenchError(f"central for a {link} replay listens at {central_url}")
    store: trio.Process | None = None
    profilers: list[Profiler] = []
    try:
        toml = store_toml(STORE, "sync benchmark store", CURRENCY, LANES, central=central_url, ca=ca, batch=batch)
        (work / "store.toml").write_text(toml)
        enrol(work / "central.db", work / "store.toml")
        central_cpu0 = cpu_seconds(central.pid)
        machine = Window({})
        machine.begin()
        t0 = time.perf_counter()
        store = await fleet.spawn(
            node_argv("store", "run", "--config", "store.toml", "--ready-file", str(work / "store.ready")),
            work / "store.log",
            work,
        )
        if profile:
            for name, pid in (("store", store.pid), ("central", central.pid)):
                profilers.append(Profiler(fleet, name, pid, work / f"{name}-profile.txt"))
                await profilers[-1].begin()
        drain = Drain()
        store_url = await fleet.ready("store", store, work)
        drain.ready_s = time.perf_counter() - t0
        pids = {"store": store.pid, "central": central.pid}
        try:
            with trio.fail_after(args.replay_timeout):
                await watch_drain(store_url, t0, drain, pids, args.poll)
        except trio.TooSlowError:
            raise BenchError(
                f"the backlog did not drain within {args.replay_timeout:g} s; last status "
                f"{drain.timeline[-1:] or 'none'}; store log ends:\n{tail(work / 'store.log')}"
            ) from None
        machine.end()
        cpu = {"store": cpu_seconds(store.pid), "central": cpu_seconds(central.pid)}
        if central_cpu0 is not None and cpu["central"] is not None:
            cpu["central"] -= central_cpu0
        memory_drained = {name: memory_mb(pid) for name, pid in pids.items()}
        profiles = [await p.end() for p in profilers]
        profilers.clear()
        t_rec = time.perf_counter()
        with trio.fail_after(RECONCILE_TIMEOUT):
            rec = await trio.run_process(
                node_argv("central", "reconcile", "--store", STORE, "--url", central_url, "--central-dir", str(work)),
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
        reconcile_s = time.perf_counter() - t_rec
        memory_end = {name: memory_mb(pid) for name, pid in pids.items()}
        check_running({"central": central, "store": store}, work, "the replay")
    finally:
        for p in profilers:
            await p.end()
        if store is not None:
            await fleet.stop(store)
        await fleet.stop(central)
    verdict = await trio.to_thread.run_sync(verify_replay, work / "central.db", store_db, prep)
    events = prep.journal_events + prep.stock_events
    seconds = drain.drained_s
    out: dict[str, Any] = {
        "batch": batch,
        "link": link,
        "central_url": central_url,
        "seconds": seconds,
        "sales_per_s": prep.sales / seconds,
        "events_per_s": events / seconds,
        "ready_s": drain.ready_s,
        "online_s": drain.online_s,
        "online_to_drained_s": seconds - (drain.online_s or 0.0),
        "status": latency_stats(drain.status_ns, minimum=False),
        "timeline": drain.timeline,
        "cpu_s": cpu,
        "cpu_pct": {k: None if v is None else 100 * v / seconds for k, v in cpu.items()},
        "machine": machine.record().get("machine"),
        "rss_max_sampled_mb": drain.rss_max_mb,
        "memory_at_drained_mb": memory_drained,
        "memory_before_stop_mb": memory_end,
        "peak_rss_mb": {name: memory_end[name].get("VmHWM") for name in memory_end},
        "reconcile": {
            "exit": rec.returncode,
            "seconds": reconcile_s,
            "output": (rec.stdout + rec.stderr).decode(errors="replace").strip()[-1000:],
        },
        "check": verdict,
        "profiles": profiles,
    }
    problems = list(verdict["problems"])
    if rec.returncode != 0:
        problems.append(f"`storepos central reconcile` exited {rec.returncode}: {out['reconcile']['output']}")
    out["problems"] = problems
    if not args.keep:
        await trio.to_thread.run_sync(shutil.rmtree, work, True)
    return out


# ---------------------------------------------------------------------------------------------
# Part 2: central ingest from many stores at once (this process or worker processes).
# ---------------------------------------------------------------------------------------------


class IngestSpec(msgspec.Struct):
    url: str
    stores: list[int]  # store indices handled by this client process
    sales: int  # per store
    batch: int
    window: int
    seed: int
    floor: bool  # a bare sink: no hello, one ack-sized reply per frame, in order
    timeout: float
    ca: str = ""  # what a wss:// central is checked against (bench.processes.central_tls)


class IngestResult(msgspec.Struct):
    stores: int
    batches: int
    sales_acked: int
    latencies_ns: list[int]
    first_send: float  # time.monotonic(), comparable across processes on one machine
    last_ack: float
    cpu_s: float  # client process CPU from go until its last store finished
    frame_bytes: int
    errors: dict[str, int]


class IngestGate:
    def __init__(self, clients: int) -> None:
        self.waiting = self.running = clients
        self.all_ready = trio.Event()
        self.go = trio.Event()
        self.cpu_start = self.cpu_end = 0.0
        self.first_send = math.inf
        self.last_ack = 0.0
        self.latencies_ns: list[int] = []
        self.sales_acked = 0
        self.errors: Counter[str] = Counter()

    def ready(self) -> None:
        self.waiting -= 1
        if self.waiting == 0:
            self.all_ready.set()

    def start(self) -> None:
        self.cpu_start = time.process_time()
        self.go.set()

    def finished(self) -> None:
        self.running -= 1
        if self.running == 0:
            self.cpu_end = time.process_time()


async def link_store(spec: IngestSpec, index: int, frames: list[tuple[int, bytes]], gate: IngestGate) -> None:
    """One simulated store: hello, welcome, then its batches with `window` in flight until all are acked."""
    codec = LinkCodec()
    store = ingest_store_name(index)
    readied = False
    try:
        trust = client_context(Path(spec.ca)) if spec.ca else None
        async with dial(
            spec.url, subprotocols=[LINK_SUBPROTOCOL], connect_timeout=START_TIMEOUT, ssl_context=trust
        ) as ws:
            if not spec.floor:
                key = ingest_store_key(index)
                hello = LinkHello(node=store, role="store", key=identity.public_bytes(key))
                with trio.fail_after(START_TIMEOUT):
                    welcome = await greet(ws, hello, peer="central", key=key)
                if welcome.acked.get(Stream.JOURNAL, 0):
                    raise BenchError(f"{store}: central already holds {welcome.acked} (not a fresh central.db)")
            gate.ready()
            readied = True
            await gate.go.wait()
            slots = trio.Semaphore(spec.window)
            sent_ns = [0] * len(frames)

            async def receive() -> None:
                k = 0
                while k < len(frames):
                    with trio.fail_after(REQUEST_TIMEOUT):
                        data = await ws.get_message()
                    now = time.perf_counter_ns()
                    if spec.floor:
                        upto = frames[k][0]
                    else:
                        frame = codec.decode(data)
                        if isinstance(frame, LinkError):
                            raise BenchError(f"{store}: central refused: {frame.code}: {frame.message}")
                        if not isinstance(frame, Ack) or frame.gap:
                            gate.errors[f"unexpected {type(frame).__name__} {frame!r}"[:120]] += 1
                            continue
                        upto = frame.seq
                    while k < len(frames) and frames[k][0] <= upto:
                        gate.latencies_ns.append(now - sent_ns[k])
                        k += 1
                        slots.release()
                gate.sales_acked += frames[-1][0]
                gate.last_ack = max(gate.last_ack, time.monotonic())

            async with trio.open_nursery() as nursery:
                nursery.start_soon(receive)
                for j, (_, data) in enumerate(frames):
                    await slots.acquire()
                    sent_ns[j] = time.perf_counter_ns()
                    if j == 0:
                        gate.first_send = min(gate.first_send, time.monotonic())
                    await ws.send_message(data)
    except (OSError, ConnectionClosed, HandshakeError, trio.TooSlowError) as exc:
        gate.errors[f"{type(exc).__name__}"] += 1
        if not readied:
            gate.ready()  # do not keep the others waiting for a store that will never be ready
    finally:
        gate.finished()


async def run_ingest_clients(spec: IngestSpec, on_ready: Callable[[], Any]) -> IngestResult:
    """Build this process's frames, connect all its stores, await `on_ready()`, then go."""
    per_store = {
        i: ingest_frames(ingest_events(i, spec.sales, spec.seed), i, spec.batch)
        for i in spec.stores  # built before anything is timed
    }
    gate = IngestGate(len(spec.stores))
    with trio.fail_after(spec.timeout):
        async with trio.open_nursery() as nursery:
            for i in spec.stores:
                nursery.start_soon(link_store, spec, i, per_store[i], gate)
            with trio.fail_after(START_TIMEOUT):
                await gate.all_ready.wait()
            await on_ready()
            gate.start()
    return IngestResult(
        stores=len(spec.stores),
        batches=len(gate.latencies_ns),
        sales_acked=gate.sales_acked,
        latencies_ns=gate.latencies_ns,
        first_send=gate.first_send if gate.first_send != math.inf else 0.0,
        last_ack=gate.last_ack,
        cpu_s=gate.cpu_end - gate.cpu_start,
        frame_bytes=sum(len(f) for frames in per_store.values() for _, f in frames),
        errors=dict(gate.errors),
    )


async def ingest_worker(spec_json: str) -> None:
    """A client process of `--client-procs`: says `ready` once its stores are welcomed, waits for `go`
    on stdin, then answers its IngestResult as one JSON line."""
    spec = msgspec.json.decode(spec_json, type=IngestSpec)
    answer(await run_ingest_clients(spec, wait_for_go))


async def run_ingest(
    fleet: Fleet, folder: Path, spec: IngestSpec, procs: int, on_go: Callable[[], Any]
) -> list[IngestResult]:
    """Run one ingest phase with the stores in this process (procs == 1) or spread over `procs` workers."""
    if procs <= 1:
        return [await run_ingest_clients(spec, on_go)]
    parts = [msgspec.structs.replace(spec, stores=ids) for ids in round_robin(spec.stores, procs)]
    return await run_workers(
        fleet,
        SCRIPT,
        "--ingest-worker",
        parts,
        IngestResult,
        folder,
        f"worker-{'floor' if spec.floor else 'central'}",
        on_go,
        ready_timeout=START_TIMEOUT * 2,  # each worker builds its frames first
        answer_timeout=spec.timeout,
    )


def ingest_record(parts: list[IngestResult], window: Window, spec: IngestSpec) -> dict[str, Any]:
    latencies = [x for p in parts for x in p.latencies_ns]
    first = min(p.first_send for p in parts if p.first_send) if any(p.first_send for p in parts) else 0.0
    last = max(p.last_ack for p in parts)
    seconds = last - first if last > first else 0.0
    sales = sum(p.sales_acked for p in parts)
    errors: Counter[str] = Counter()
    for p in parts:
        errors.update(p.errors)
    client_cpu = sum(p.cpu_s for p in parts)
    expected = len(spec.stores) * spec.sales
    if sales != expected:
        errors[f"{expected - sales} sales never acked"] += 1
    return {
        "stores": sum(p.stores for p in parts),
        "sales": sales,
        "batches": len(latencies),
        "frame_bytes": sum(p.frame_bytes for p in parts),
        "seconds": seconds,
        "sales_per_s": sales / seconds if seconds > 0 else 0.0,
        "ack_latency": latency_stats(latencies, minimum=False),
        "client_cpu_s": client_cpu,
        "client_cpu_pct": 100 * client_cpu / seconds if seconds > 0 else 0.0,
        "client_procs": len(parts),
        "window": window.record(client_cpu),
        "errors": dict(errors),
        "error_count": sum(errors.values()),
    }


def sqlite_floor(db: Path, stores: int, sales: int, batch: int, seed: int) -> dict[str, Any]:
    """The ingest's rows into central's own `sales` table, one synchronous=FULL commit per batch, in one
    process: no network, no decoding, no actor. Rows are made before the clock starts."""
    conn = open_connection(db)
    try:
        migrate(conn, CENTRAL_MIGRATIONS)
        conn.execute("PRAGMA synchronous=FULL")
        decoder = msgspec.msgpack.Decoder(SaleRecord)
        batches = []
        for i in range(stores):
            store = ingest_store_name(i)
            rows = []
            for e in ingest_events(i, sales, seed):
                r = decoder.decode(e.body)
                rows.append(
                    (store, r.lane, r.receipt_no, r.kind, r.sale_id, r.currency, r.total, r.closed_at, e.seq, e.body)
                )
            batches += [rows[k : k + batch] for k in range(0, len(rows), batch)]
        order = [b for turn in itertools.zip_longest(*[batches[i::stores] for i in range(stores)]) for b in turn if b]
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        for rows in order:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO sales (store, lane, receipt_no, kind, sale_id, currency, total, closed_at, seq, body) "
                "VALUES (?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
            conn.execute("COMMIT")
        seconds = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        stored = conn.execute("SELECT COUNT(*) FROM sales").fetchone()[0]
    finally:
        conn.close()
    if stored != stores * sales:
        raise BenchError(f"SQLite floor stored {stored} rows, expected {stores * sales}")
    return {
        "commits": len(order),
        "seconds": seconds,
        "sales_per_s": stored / seconds,
        "commit_ms": 1000 * seconds / len(order),
        "cpu_s": cpu,
    }


def verify_ingest(central_db: Path, stores: int, sales: int) -> tuple[list[str], dict[str, Any]]:
    """Every sale exactly once, and what shows the run was the trusted link's: no alarm raised, every
    sale stored with its signature and key id, and central's own full audit (sales.verify: every
    record's signature, every chain) passing over all of them. Returns (problems, the trust checks)."""
    conn = sqlite3.connect(f"file:{central_db}?mode=ro", uri=True)
    try:
        raised = journal_alarms.alarms(conn)
        signed = conn.execute("SELECT COUNT(*) FROM sales WHERE length(sig) = 64 AND key != ''").fetchone()[0]
        t0 = time.perf_counter()
        audited, audit_problems = journal.verify(conn)
        audit_s = time.perf_counter() - t0
        total, distinct_keys, distinct_ids = conn.execute(
            "SELECT COUNT(*), (SELECT COUNT(*) FROM (SELECT DISTINCT store, lane, receipt_no FROM sales)), "
            "COUNT(DISTINCT sale_id) FROM sales"
        ).fetchone()
        per_store = dict(conn.execute("SELECT store, COUNT(*) FROM sales GROUP BY store").fetchall())
        cursors = dict(
            conn.execute("SELECT store, seq FROM stream_cursors WHERE stream = ?", (Stream.JOURNAL,)).fetchall()
        )
    finally:
        conn.close()
    problems = []
    expected = stores * sales
    if (total, distinct_keys, distinct_ids) != (expected, expected, expected):
        problems.append(
            f"central holds {total} sales ({distinct_keys} distinct receipts, {distinct_ids} distinct sale ids), "
            f"expected {expected}"
        )
    wrong = {s: n for s, n in per_store.items() if n != sales}
    missing = [ingest_store_name(i) for i in range(stores) if ingest_store_name(i) not in per_store]
    if wrong or missing:
        problems.append(f"stores with a wrong count {dict(list(wrong.items())[:5])}, missing {missing[:5]}")
    bad_cursor = {s: q for s, q in cursors.items() if q != sales}
    if bad_cursor or len(cursors) != stores:
        problems.append(f"{len(cursors)} journal cursors, wrong ones {dict(list(bad_cursor.items())[:5])}")
    if raised:
        problems.append(f"central raised {len(raised)} alarm(s): {[(a.store, a.kind, a.detail) for a in raised[:3]]}")
    if signed != expected:
        problems.append(f"{signed} of central's {total} sales hold a signature and key id, expected {expected}")
    if audited != expected or audit_problems:
        problems.append(f"central's journal audit checked {audited} records: {audit_problems[:3]}")
    trust = {
        "alarms": len(raised),
        "signed_sales": signed,
        "audited_records": audited,
        "audit_problems": len(audit_problems),
        "audit_s": audit_s,
    }
    return problems, trust


async def forged_probe(url: str, ca: str, sales: int, seed: int) -> dict[str, Any]:
    """After the ingest: store 0 proves itself again and sends its next sale, its chain intact but signed
    by another store's key under its own key id (what a forger without the key can do at best). Central
    must refuse it with bad_signature; the caller then finds exactly that one alarm. Shows the run's
    central verifies signatures, not only that nothing went wrong."""
    events = ingest_events(0, sales + 1, seed)
    lane = LANES[(events[-1].seq - 1) % len(LANES)]
    head = GENESIS
    for event in events[LANES.index(lane) :: len(LANES)]:  # the lane's chain up to the new sale
        head = chain_hash(head, event.body)
    forged = msgspec.structs.replace(events[-1], sig=Signer(ingest_store_name(0), ingest_store_key(1)).sign(head))
    key = ingest_store_key(0)
    codec = LinkCodec()
    async with dial(url, subprotocols=[LINK_SUBPROTOCOL], ssl_context=client_context(Path(ca)) if ca else None) as ws:
        with trio.fail_after(REQUEST_TIMEOUT):
            await greet(
                ws,
                LinkHello(node=ingest_store_name(0), role="store", key=identity.public_bytes(key)),
                peer="central",
                key=key,
            )
            await ws.send_message(
                codec.encode(EventBatch(store=ingest_store_name(0), stream=Stream.JOURNAL, events=[forged]))
            )
            while True:
                reply = codec.decode(await ws.get_message())
                if isinstance(reply, (LinkError, Ack)):
                    break
    if isinstance(reply, Ack):
        return {"refused": False, "reply": f"Ack seq {reply.seq}"}
    return {"refused": reply.code == "bad_signature", "reply": f"{reply.code}: {reply.message[:200]}"}


def probe_alarms(central_db: Path, stores: int, sales: int) -> tuple[list[str], int]:
    """Central after the forged probe: one bad_signature alarm for store 0, nothing of the forgery kept."""
    conn = sqlite3.connect(f"file:{central_db}?mode=ro", uri=True)
    try:
        raised = journal_alarms.alarms(conn)
        total = conn.execute("SELECT COUNT(*) FROM sales").fetchone()[0]
    finally:
        conn.close()
    problems = []
    if [(a.store, a.kind) for a in raised] != [(ingest_store_name(0), "bad_signature")]:
        problems.append(f"after the forged probe central holds alarms {[(a.store, a.kind) for a in raised]}")
    if total != stores * sales:
        problems.append(f"after the forged probe central holds {total} sales, expected {stores * sales}")
    return problems, len(raised)


async def ingest_part(fleet: Fleet, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    work = folder / "ingest"
    await trio.Path(work).mkdir(parents=True)
    stores = list(range(args.stores))
    base = IngestSpec(
        url="",
        stores=stores,
        sales=args.store_sales,
        batch=args.ingest_batch,
        window=WINDOW,
        seed=args.seed,
        floor=False,
        timeout=args.ingest_timeout,
    )
    out: dict[str, Any] = {}

    print("  ingest floor: bare SQLite FULL commits ...", flush=True)
    with trio.fail_after(args.ingest_timeout):
        out["floor_sqlite"] = await trio.to_thread.run_sync(
            sqlite_floor, work / "floor.db", args.stores, args.store_sales, args.ingest_batch, args.seed
        )

    print(f"  ingest floor: the same frames over {args.stores} bare websockets ...", flush=True)
    sink, sink_url = await fleet.start("sink", sink_argv(None), work)
    try:
        spec = msgspec.structs.replace(base, url=sink_url, floor=True)
        window = Window({"sink": sink.pid})

        async def on_go_floor() -> None:
            window.begin()

        parts = await run_ingest(fleet, work, spec, min(args.client_procs, args.stores), on_go_floor)
        window.end()
        out["floor_ws"] = ingest_record(parts, window, spec)
    finally:
        await fleet.stop(sink)
    warn_if_disturbed("ingest websocket floor", out["floor_ws"]["window"])

    link = "plain" if args.link == "plain" else "tls"
    print(f"  ingest: {args.stores} stores x {args.store_sales} sales into a real central over {link} ...", flush=True)
    tls_args, ca = central_tls(work, plain=link == "plain")
    central, central_url = await fleet.start(
        "central",
        node_argv("central", "run", "--db", "central.db", "--port", "0", "--per-address", "0", *tls_args),
        work,
    )
    if central_url.startswith("wss://") != (link == "tls"):
        raise BenchError(f"central for a {link} ingest listens at {central_url}")
    profiler: Profiler | None = None
    try:
        spec = msgspec.structs.replace(base, url=central_url, ca=ca)
        await trio.to_thread.run_sync(register_ingest_stores, work / "central.db", spec.stores)
        window = Window({"central": central.pid})

        async def on_go() -> None:
            nonlocal profiler
            if args.py_spy:
                profiler = Profiler(fleet, "central", central.pid, work / "central-profile.txt")
                await profiler.begin()
            window.begin()

        parts = await run_ingest(fleet, work, spec, min(args.client_procs, args.stores), on_go)
        window.end()
        record = ingest_record(parts, window, spec)
        record["central_memory_mb"] = memory_mb(central.pid)
        if profiler is not None:
            record["profile"] = await profiler.end()
        check_running({"central": central}, work, "ingest")
        print("  ingest checks: alarms, stored signatures, central's full journal audit; a forged sale ...", flush=True)
        problems, trust = await trio.to_thread.run_sync(
            verify_ingest, work / "central.db", args.stores, args.store_sales
        )
        trust["forged_probe"] = await forged_probe(central_url, ca, args.store_sales, args.seed)
        if not trust["forged_probe"]["refused"]:
            problems.append(f"central did not refuse a forged signature: {trust['forged_probe']['reply']}")
        check_running({"central": central}, work, "the forged probe")
    finally:
        if profiler is not None and profiler.proc is not None and profiler.proc.returncode is None:
            await fleet.stop(profiler.proc)
        await fleet.stop(central)
    after, trust["alarms_after_probe"] = await trio.to_thread.run_sync(
        probe_alarms, work / "central.db", args.stores, args.store_sales
    )
    record["problems"] = problems + after
    record["link"] = link
    record["central_url"] = central_url
    record["trust"] = trust
    out["central"] = record
    warn_if_disturbed("ingest", record["window"])
    sqlite_s, ws_s = out["floor_sqlite"]["seconds"], out["floor_ws"]["seconds"]
    out["ratio_to_sqlite_floor"] = record["seconds"] / sqlite_s if sqlite_s else None
    out["ratio_to_ws_floor"] = record["seconds"] / ws_s if ws_s else None
    return out


# ---------------------------------------------------------------------------------------------
# Part 3: every store reconnecting at once.
# ---------------------------------------------------------------------------------------------


class ReconnectGate:
    """The stores of a reconnect storm: each says it is ready (its warm-up connection closed), all
    dial when `go` is set, and each holds its new connection until every one is through."""

    def __init__(self, stores: int) -> None:
        self.waiting = self.running = stores
        self.all_ready = trio.Event()
        self.go = trio.Event()
        self.all_done = trio.Event()
        self.go_at = 0.0
        self.last_at = 0.0
        self.latencies_ns: list[int] = []
        self.connect_ns: list[int] = []
        self.errors: Counter[str] = Counter()

    def ready(self) -> None:
        self.waiting -= 1
        if self.waiting == 0:
            self.all_ready.set()

    def done(self) -> None:
        self.running -= 1
        if self.running == 0:
            self.all_done.set()


async def reconnect_store(url: str, trust: ssl.SSLContext | None, index: int, echo: bool, gate: ReconnectGate) -> None:
    """One store: connect, be welcomed (or, against an echo, one round trip), disconnect; then at the
    gate dial again and time dial start -> LinkWelcome (TLS handshake, websocket upgrade, hello,
    challenge, proof, welcome), and dial start -> websocket open on the way."""
    key = ingest_store_key(index)
    hello = LinkHello(node=ingest_store_name(index), role="store", key=identity.public_bytes(key))
    first = LinkCodec().encode(hello)

    async def meet(ws: Any) -> None:
        with trio.fail_after(START_TIMEOUT):
            if echo:
                await ws.send_message(first)
                await ws.get_message()
            else:
                await greet(ws, hello, peer="central", key=key)

    readied = False
    try:
        async with dial(url, subprotocols=[LINK_SUBPROTOCOL], connect_timeout=START_TIMEOUT, ssl_context=trust) as ws:
            await meet(ws)
        gate.ready()
        readied = True
        await gate.go.wait()
        t0 = time.perf_counter_ns()
        async with dial(url, subprotocols=[LINK_SUBPROTOCOL], connect_timeout=START_TIMEOUT, ssl_context=trust) as ws:
            t1 = time.perf_counter_ns()
            await meet(ws)
            t2 = time.perf_counter_ns()
            gate.connect_ns.append(t1 - t0)
            gate.latencies_ns.append(t2 - t0)
            gate.last_at = max(gate.last_at, time.perf_counter())
            gate.done()
            await gate.all_done.wait()
            return
    except (OSError, ConnectionClosed, HandshakeError, SessionError, trio.TooSlowError) as exc:
        gate.errors[f"{type(exc).__name__}: {exc}"[:120]] += 1
        if not readied:
            gate.ready()
    gate.done()  # failed: nobody waits for it


async def reconnect_storm(url: str, ca: str, stores: int, echo: bool, window: Window) -> dict[str, Any]:
    """`stores` stores connect, are welcomed and disconnect; SETTLE_S later (the server has closed
    their sessions) all dial at the same instant. Wall: the gate to the last welcome. `window` is the
    server's CPU over the storm."""
    trust = client_context(Path(ca)) if ca else None  # made once, as each store makes its own at start
    gate = ReconnectGate(stores)
    with trio.fail_after(START_TIMEOUT * 3):
        async with trio.open_nursery() as nursery:
            for i in range(stores):
                nursery.start_soon(reconnect_store, url, trust, i, echo, gate)
            await gate.all_ready.wait()
            await trio.sleep(SETTLE_S)
            window.begin()
            cpu0 = time.process_time()
            gate.go_at = time.perf_counter()
            gate.go.set()
            await gate.all_done.wait()
            cpu = time.process_time() - cpu0
            window.end()
    wall = gate.last_at - gate.go_at if gate.latencies_ns else 0.0
    record = window.record(cpu)
    server_cpu = next(iter(window.cpu().values()))
    server_pct = next(iter(record["cpu_pct"].values()), None)
    return {
        "stores": stores,
        "welcomed": len(gate.latencies_ns),
        "latency": latency_stats(gate.latencies_ns, minimum=True),
        "connect": latency_stats(gate.connect_ns, minimum=True),
        "wall_s": wall,
        "client_cpu_s": cpu,
        "errors": dict(gate.errors),
        "error_count": max(sum(gate.errors.values()), stores - len(gate.latencies_ns)),
        "window": record,
        "client_pct": record["cpu_pct"].get("client"),
        "server_pct": server_pct,
        "server_cpu_ms_per_conn": None if server_cpu is None else 1000 * server_cpu / stores,
    }


TARGETS = ("central", "floor_tls", "floor_plain")  # what a reconnect round storms, taking turns at going first


def storm_summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """One target's storms over the rounds: the median of each round's p50, p99, wall and CPU figures,
    the largest max; errors added up."""
    errors: Counter[str] = Counter()
    for r in records:
        errors.update(r["errors"])

    def mid(pick: Callable[[dict[str, Any]], float | None]) -> float | None:
        values = [v for v in map(pick, records) if v is not None]
        return median(values) if values else None

    return {
        "rounds": len(records),
        "stores": records[0]["stores"],
        "welcomed": min(r["welcomed"] for r in records),
        "latency": {
            "p50_ms": mid(lambda r: r["latency"].get("p50_ms")),
            "p99_ms": mid(lambda r: r["latency"].get("p99_ms")),
            "max_ms": max(r["latency"].get("max_ms", 0.0) for r in records),
        },
        "connect": {
            "p50_ms": mid(lambda r: r["connect"].get("p50_ms")),
            "p99_ms": mid(lambda r: r["connect"].get("p99_ms")),
        },
        "wall_s": mid(lambda r: r["wall_s"]),
        "client_pct": mid(lambda r: r["client_pct"]),
        "server_pct": mid(lambda r: r["server_pct"]),
        "server_cpu_ms_per_conn": mid(lambda r: r["server_cpu_ms_per_conn"]),
        "errors": dict(errors),
        "error_count": sum(r["error_count"] for r in records),
    }


async def reconnect_part(fleet: Fleet, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """`--repeat` rounds, each a storm against a real central (TLS unless --link plain) and the same
    storm against each floor: a bare TLS websocket echo and a bare plain one, the three taking turns
    at going first. All three servers run throughout (idle ones cost nothing)."""
    work = folder / "reconnect"
    await trio.Path(work).mkdir(parents=True)
    link = "plain" if args.link == "plain" else "tls"
    servers: dict[str, tuple[trio.Process, str, str]] = {}  # target -> (process, url, CA)
    rounds: list[dict[str, Any]] = []
    try:
        for name, plain in (("floor_tls", False), ("floor_plain", True)):
            echo_dir = work / name
            await trio.Path(echo_dir).mkdir()
            _tls_args, ca = central_tls(echo_dir, plain=plain)
            sink, sink_url = await fleet.start("sink", sink_argv(None, None if plain else echo_dir), echo_dir)
            servers[name] = (sink, sink_url, ca)
        tls_args, ca = central_tls(work, plain=link == "plain")
        central, central_url = await fleet.start(
            "central",
            node_argv("central", "run", "--db", "central.db", "--port", "0", "--per-address", "0", *tls_args),
            work,
        )
        servers["central"] = (central, central_url, ca)
        if central_url.startswith("wss://") != (link == "tls"):
            raise BenchError(f"central for a {link} reconnect listens at {central_url}")
        await trio.to_thread.run_sync(register_ingest_stores, work / "central.db", range(args.stores))
        for r in range(args.repeat):
            print(
                f"  reconnect round {r + 1}/{args.repeat}: {args.stores} stores at once into central over {link} "
                "with proof, and into bare TLS and plain websocket echoes ...",
                flush=True,
            )
            done: dict[str, Any] = {"round": r}
            for name in TARGETS[r % 3 :] + TARGETS[: r % 3]:
                proc, url, trust = servers[name]
                window = Window({"central" if name == "central" else "sink": proc.pid})
                done[name] = await reconnect_storm(url, trust, args.stores, name != "central", window)
                warn_if_disturbed(f"reconnect round {r + 1} {name}", done[name]["window"])
                check_running({"central": central}, work, "the reconnect storms")
            rounds.append(done)
        central_memory = memory_mb(central.pid)
    finally:
        for proc, _url, _ca in servers.values():
            await fleet.stop(proc)
    conn = sqlite3.connect(f"file:{work / 'central.db'}?mode=ro", uri=True)
    try:
        raised = journal_alarms.alarms(conn)
    finally:
        conn.close()
    out: dict[str, Any] = {"link": link, "urls": {k: v[1] for k, v in servers.items()}, "rounds": rounds}
    for name in TARGETS:
        out[name] = storm_summary([done[name] for done in rounds])
    out["central"]["memory_mb"] = central_memory
    out["central"]["problems"] = [f"central raised alarms {[(a.store, a.kind) for a in raised[:3]]}"] if raised else []
    for name in ("floor_tls", "floor_plain"):
        floor, real = out[name]["latency"]["p50_ms"], out["central"]["latency"]["p50_ms"]
        out[f"p50_ratio_to_{name}"] = real / floor if floor and real else None
    return out


# ---------------------------------------------------------------------------------------------
# The orchestrator and the report.
# ---------------------------------------------------------------------------------------------


def print_report(report: dict[str, Any]) -> None:
    if report["replay"] is not None:
        print_replay(report)
    if report["ingest"] is not None:
        print_ingest(report)
    if report["reconnect"] is not None:
        print_reconnect(report)
    if report.get("batch_best"):
        best = report["batch_best"]
        print(f"\nfastest replay batch (median over repeats): {best['batch']} ({best['seconds']:.2f} s)")
    print()
    for t in report["targets"].values():
        print(f"{t['verdict']:<5} {t['target']}  (measured {t['measured']})")
    for run in report["replay"]["runs"] if report["replay"] else []:
        for profile in run["profiles"]:
            print_profile(
                profile, f"{profile['process']} hot spots during the replay with batch {run['batch']}", most=12
            )
    if report["ingest"] is not None and "profile" in report["ingest"]["central"]:
        profile = report["ingest"]["central"]["profile"]
        print_profile(profile, f"{profile['process']} hot spots during the ingest run", most=12)


def print_replay(report: dict[str, Any]) -> None:
    prep = report["replay"]["prep"]
    events = prep["journal_events"] + prep["stock_events"]
    print(
        f"\nREPLAY of {prep['sales']:,} sales = {events:,} events ({prep['journal_events']:,} journal, "
        f"{prep['stock_events']:,} stock; {prep['journal_body_bytes'] / prep['journal_events']:.0f} / "
        f"{prep['stock_body_bytes'] / max(1, prep['stock_events']):.0f} bytes per body) from {len(LANES)} lanes; "
        f"prepared in {prep['seconds']:.1f} s ({prep['sales_per_s']:,.0f} sales/s, not the figure)"
    )
    head = (
        f"{'link':>5} {'rep':>3} {'batch':>6} {'replay s':>9} {'sales/s':>8} {'events/s':>9} {'ready s':>7} "
        f"{'online s':>8} "
        f"{'floor s':>8} {'x floor':>7} {'status p50':>10} {'status max':>10} {'store MB':>8} {'central MB':>10} "
        f"{'store%':>6} {'central%':>8} {'frame KB':>8} {'reconcile':>9} {'check':>5}"
    )
    print(head)
    print("-" * len(head))
    for run in report["replay"]["runs"]:
        floor = run["floor"]
        st = run["status"]
        rss = run["peak_rss_mb"]
        print(
            f"{run['link']:>5} {run['repeat']:>3} {run['batch']:>6} {run['seconds']:>9.2f} "
            f"{run['sales_per_s']:>8,.0f} {run['events_per_s']:>9,.0f} "
            f"{run['ready_s']:>7.2f} {fmt(run['online_s']):>8} {floor['seconds']:>8.2f} "
            f"{fmt(run['ratio_to_floor'], '.1f'):>7} {st.get('p50_ms', 0):>8.1f}ms {st.get('max_ms', 0):>8.1f}ms "
            f"{fmt(rss.get('store'), '.0f'):>8} {fmt(rss.get('central'), '.0f'):>10} "
            f"{fmt(run['cpu_pct'].get('store'), '.0f'):>6} {fmt(run['cpu_pct'].get('central'), '.0f'):>8} "
            f"{floor['max_frame_bytes'] / 1024:>8.0f} {run['reconcile']['exit']:>9} "
            f"{'ok' if not run['problems'] else 'FAIL':>5}"
        )
    print(
        "replay s: store start -> status says outbox 0 and link online "
        f"(polled every {report['config']['status_poll_s']:g} s); floor: the same frames "
        f"over a bare websocket into a bare SQLite table, FULL commit + ack per batch, {WINDOW} in flight per stream; "
        "MB: peak RSS (VmHWM) just before stopping; %: CPU over the replay in % of one core; frame KB: the largest "
        "EventBatch (trio-websocket refuses messages over 1024 KB by default)"
    )
    versus = report["replay"]["tls_vs_plain"]
    for pair in versus["pairs"]:
        print(
            f"TLS / plain, repeat {pair['repeat']}, batch {pair['batch']}: {pair['tls_s']:.2f} s / "
            f"{pair['plain_s']:.2f} s = {pair['ratio']:.2f}x (store + central CPU: {fmt(pair['cpu_ratio'])}x)"
        )
    for batch, ratio in versus["median_ratio_by_batch"].items():
        print(
            f"TLS / plain, batch {batch}, median over repeats: {ratio:.2f}x "
            f"(store + central CPU: {versus['median_cpu_ratio_by_batch'][batch]:.2f}x)"
        )
    checks = report["replay"].get("signature_checks")
    if checks:
        for batch, n in checks["checks_by_batch"].items():
            print(
                f"central's signature checks, batch {batch}: {n:,} per replay (newest record per lane per journal "
                f"batch) x {checks['verify_us']:.0f} us = {checks['seconds_by_batch'][batch]:.2f} s, made in both "
                "links' replays (central has no switch for them)"
            )
    for run in report["replay"]["runs"]:
        for problem in run["problems"]:
            print(f"!!! replay {run['link']} batch {run['batch']}: {problem}")


def print_ingest(report: dict[str, Any]) -> None:
    ing = report["ingest"]
    c, fs, fw = ing["central"], ing["floor_sqlite"], ing["floor_ws"]
    lat, flat = c["ack_latency"], fw["ack_latency"]
    print(
        f"\nINGEST: {c['stores']} stores x {report['config']['store_sales']} sales in batches of "
        f"{report['config']['ingest_batch']} ({c['frame_bytes'] / max(1, c['batches']):,.0f} bytes per frame), "
        f"{WINDOW} in flight per store, {c['client_procs']} client process(es)"
    )
    head = (
        f"{'what':<28} {'sales':>7} {'seconds':>8} {'sales/s':>8} {'ack p50':>8} {'ack p99':>8} {'client%':>7} "
        f"{'server%':>7} {'errors':>6}"
    )
    print(head)
    print("-" * len(head))
    print(
        f"{'central (real)':<28} {c['sales']:>7,} {c['seconds']:>8.2f} {c['sales_per_s']:>8,.0f} "
        f"{lat.get('p50_ms', 0):>6.1f}ms {lat.get('p99_ms', 0):>6.1f}ms {c['client_cpu_pct']:>7.0f} "
        f"{fmt(c['window']['cpu_pct'].get('central'), '.0f'):>7} {c['error_count']:>6}"
    )
    print(
        f"{'floor: bare websockets':<28} {fw['sales']:>7,} {fw['seconds']:>8.2f} {fw['sales_per_s']:>8,.0f} "
        f"{flat.get('p50_ms', 0):>6.1f}ms {flat.get('p99_ms', 0):>6.1f}ms {fw['client_cpu_pct']:>7.0f} "
        f"{fmt(fw['window']['cpu_pct'].get('sink'), '.0f'):>7} {fw['error_count']:>6}"
    )
    print(
        f"{'floor: bare SQLite commits':<28} {c['sales']:>7,} {fs['seconds']:>8.2f} {fs['sales_per_s']:>8,.0f} "
        f"{fs['commit_ms']:>6.2f}ms {'':>8} {100 * fs['cpu_s'] / fs['seconds']:>7.0f} {'':>7} {0:>6}"
    )
    print(
        f"central / SQLite floor: {fmt(ing['ratio_to_sqlite_floor'], '.2f')}x the time; "
        f"central / websocket floor: {fmt(ing['ratio_to_ws_floor'], '.2f')}x the time "
        f"(client%: benchmark client CPU in % of one core; the machine has {os.cpu_count()} cores)"
    )
    trust = c["trust"]
    probe = trust["forged_probe"]
    print(
        f"central over {c['central_url'].split(':', 1)[0]}://: {trust['alarms']} alarms after the run, "
        f"{trust['signed_sales']:,} sales stored signed, full journal audit {trust['audited_records']:,} records "
        f"with {trust['audit_problems']} problems ({trust['audit_s']:.1f} s); a forged sale afterwards: "
        f"{'refused' if probe['refused'] else 'NOT REFUSED'} ({probe['reply'][:60]}), "
        f"{trust['alarms_after_probe']} alarm"
    )
    for problem in c["problems"]:
        print(f"!!! ingest: {problem}")


def print_reconnect(report: dict[str, Any]) -> None:
    rc = report["reconnect"]
    print(
        f"\nRECONNECT: {rc['central']['stores']} stores dial at the same instant (each connected, was welcomed and "
        f"disconnected first, {SETTLE_S:g} s before); one client process; {len(rc['rounds'])} round(s)"
    )
    head = (
        f"{'what':<40} {'rnd':>3} {'done':>5} {'p50':>8} {'p99':>8} {'max':>8} {'all in':>7} {'open p50':>8} "
        f"{'open p99':>8} {'client%':>7} {'server%':>7} {'srv ms/conn':>11} {'errors':>6}"
    )
    labels = {
        "central": f"central ({rc['link']} + hello + proof + welcome)",
        "floor_tls": "floor: bare TLS websocket echo",
        "floor_plain": "floor: bare plain websocket echo",
    }
    print(head)
    print("-" * len(head))
    rows = [(done[name], labels[name], str(done["round"] + 1)) for done in rc["rounds"] for name in TARGETS]
    rows += [(rc[name], labels[name], "med") for name in TARGETS] if len(rc["rounds"]) > 1 else []
    for r, label, rnd in rows:
        lat, con = r["latency"], r["connect"]
        print(
            f"{label:<40} {rnd:>3} {r['welcomed']:>5} {fmt(lat.get('p50_ms'), '.1f'):>6}ms "
            f"{fmt(lat.get('p99_ms'), '.1f'):>6}ms {fmt(lat.get('max_ms'), '.1f'):>6}ms {fmt(r['wall_s']):>6}s "
            f"{fmt(con.get('p50_ms'), '.1f'):>6}ms {fmt(con.get('p99_ms'), '.1f'):>6}ms "
            f"{fmt(r['client_pct'], '.0f'):>7} {fmt(r['server_pct'], '.0f'):>7} "
            f"{fmt(r['server_cpu_ms_per_conn'], '.2f'):>11} {r['error_count']:>6}"
        )
    print(
        "p50/p99/max: each store's dial start -> LinkWelcome (floors: -> the echo's reply); all in: the gate -> the "
        "last one; open: dial start -> websocket open (TCP, TLS handshake, HTTP upgrade); %: CPU over the storm in % "
        "of one core; srv ms/conn: the server's CPU over the storm per connection (what bounds how many stores a "
        "core welcomes per second, whatever the client shares the machine with); med: the median of the rounds' "
        "figures (max: the largest)"
    )
    for problem in rc["central"]["problems"]:
        print(f"!!! reconnect: {problem}")
    for name in TARGETS:
        for error, n in rc[name]["errors"].items():
            print(f"!!! reconnect {name}: {n} x {error}")


def verdicts(report: dict[str, Any]) -> dict[str, Any]:
    """The replay target is judged on the config default batch (or the first one run), by the median
    over `--repeat` runs; every run must also have passed its checks."""
    out: dict[str, Any] = {}
    if report["replay"] is not None:
        runs = report["replay"]["runs"]
        sales = report["config"]["sales"]
        batch = DEFAULT_BATCH if any(r["batch"] == DEFAULT_BATCH for r in runs) else runs[0]["batch"]
        link = "tls" if any(r["link"] == "tls" for r in runs) else "plain"
        chosen = [r for r in runs if r["batch"] == batch and r["link"] == link]
        seconds = median([r["seconds"] for r in chosen])
        ratio = median([r["ratio_to_floor"] for r in chosen])
        limit = TARGET_REPLAY_S * sales / TARGET_REPLAY_SALES
        scaled = "" if sales == TARGET_REPLAY_SALES else f" (scaled from {TARGET_REPLAY_S:g} s per 100,000)"
        ok_replay = seconds <= limit and not any(r["problems"] for r in runs)
        each = ", ".join(f"{r['seconds']:.1f}" for r in chosen)
        spread = f", runs {each} s" if len(chosen) > 1 else ""
        pairs = [p for p in report["replay"]["tls_vs_plain"]["pairs"] if p["batch"] == batch]
        if pairs:
            tls_ratio = median([p["ratio"] for p in pairs])
            each_pair = ", ".join(f"{p['tls_s']:.1f}/{p['plain_s']:.1f} = {p['ratio']:.2f}" for p in pairs)
            out["replay"] = {
                "target": f"replay of {sales:,} sales over TLS+signatures <= {TARGET_TLS_RATIO:g}x plain "
                f"(median ratio) and <= {limit:g} s{scaled}, batch {batch}",
                "measured": f"{tls_ratio:.2f}x plain, TLS {seconds:.2f} s ({ratio:.1f}x floor); "
                f"TLS/plain s per repeat: {each_pair}",
                "value_s": seconds,
                "tls_ratio": tls_ratio,
                "verdict": "PASS" if ok_replay and tls_ratio <= TARGET_TLS_RATIO else "MISS",
            }
        else:
            out["replay"] = {
                "target": f"replay of {sales:,} sales over {link} <= {limit:g} s{scaled}, batch {batch}",
                "measured": f"{seconds:.2f} s, {ratio:.1f}x floor{spread}",
                "value_s": seconds,
                "verdict": "PASS" if ok_replay else "MISS",
            }
    if report["ingest"] is not None:
        ingest = report["ingest"]["central"]
        ok_ingest = ingest["sales_per_s"] >= TARGET_INGEST and not ingest["problems"] and not ingest["error_count"]
        out["ingest"] = {
            "target": f"central ingest with {ingest['stores']} stores >= {TARGET_INGEST:,.0f} sales/s",
            "measured": f"{ingest['sales_per_s']:,.0f} sales/s, {report['ingest']['ratio_to_sqlite_floor']:.2f}x "
            f"the SQLite floor's time, {report['ingest']['ratio_to_ws_floor']:.2f}x the websocket floor's",
            "value": ingest["sales_per_s"],
            "verdict": "PASS" if ok_ingest else "MISS",
        }
        out["ingest"]["target"] += f" over {ingest['link']}"
    if report["reconnect"] is not None:
        rc = report["reconnect"]
        c, ft, fp = (rc[k]["latency"] for k in TARGETS)
        failed = rc["central"]["problems"] or any(rc[k]["error_count"] for k in TARGETS)
        rounds = len(rc["rounds"])
        over = f" (median of {rounds} rounds; max: the largest)" if rounds > 1 else ""
        out["reconnect"] = {
            "target": f"reconnect of {rc['central']['stores']} stores at once over {rc['link']} + proof: "
            "no target given, reported",
            "measured": f"p50 {fmt(c['p50_ms'], '.0f')} ms, p99 {fmt(c['p99_ms'], '.0f')} ms, max "
            f"{fmt(c['max_ms'], '.0f')} ms, all welcomed {fmt(rc['central']['wall_s'])} s after the gate{over}; "
            f"floors p50/p99: TLS echo {fmt(ft['p50_ms'], '.0f')}/{fmt(ft['p99_ms'], '.0f')} ms, "
            f"plain echo {fmt(fp['p50_ms'], '.0f')}/{fmt(fp['p99_ms'], '.0f')} ms; central's CPU "
            f"{fmt(rc['central']['server_cpu_ms_per_conn'])} ms per store",
            "verdict": "FAIL" if failed else "INFO",
        }
    return out


async def bench(args: argparse.Namespace) -> int:
    folder = Path(tempfile.mkdtemp(prefix="storepos-sync-"))
    fleet = Fleet(STOP_TIMEOUT)
    ok = False
    try:
        print(
            f"storepos sync: {os.cpu_count()} CPUs, Python {platform.python_version()}; replay {args.sales:,} sales, "
            f"batch {args.batch}; ingest {args.stores} stores x {args.store_sales} sales in batches of "
            f"{args.ingest_batch}, {args.client_procs} client process(es)\nwork folder {folder}",
            flush=True,
        )
        load_at_start = load_average()
        replay: dict[str, Any] | None = None
        runs: list[dict[str, Any]] = []
        if args.only in (None, "replay"):
            template = folder / "template-store.db"
            print(f"  preparing a store.db with {args.sales:,} sales in the outbox ...", flush=True)
            prep = await trio.to_thread.run_sync(prepare_store, template, args.sales, args.seed)
            print(f"  prepared in {prep.seconds:.1f} s ({prep.db_bytes / 1e6:.0f} MB)", flush=True)
            events = prep.journal_events + prep.stock_events
            profile_batch = DEFAULT_BATCH if DEFAULT_BATCH in args.batch else args.batch[0]
            links = LINKS[args.link]
            for repeat in range(args.repeat):
                for batch in args.batch:
                    print(f"  replay floor, batch {batch} ...", flush=True)
                    tag = f"b{batch}-r{repeat}"
                    floor = await replay_floor(fleet, folder / f"floor-{tag}", template, batch, events, args.keep)
                    warn_if_disturbed(f"replay floor batch {batch}", floor["window"])
                    print(f"    floor {floor['seconds']:.2f} s", flush=True)
                    # the links take turns going first, so neither always runs on the warmer (or busier) machine
                    for link in links if repeat % 2 == 0 else links[::-1]:
                        print(f"    replay over {link}, batch {batch} ...", flush=True)
                        profiled = args.py_spy and repeat == 0 and batch == profile_batch and link == links[0]
                        run = await replay_run(
                            fleet, folder / f"replay-{tag}-{link}", template, prep, batch, args, profiled, link
                        )
                        run["repeat"] = repeat
                        run["floor"] = floor
                        run["ratio_to_floor"] = run["seconds"] / floor["seconds"]
                        runs.append(run)
                        print(
                            f"    replay over {link} {run['seconds']:.2f} s ({run['ratio_to_floor']:.1f}x floor), "
                            f"reconcile exit {run['reconcile']['exit']}, problems {len(run['problems'])}",
                            flush=True,
                        )
            replay = {"prep": msgspec.to_builtins(prep), "runs": runs, "tls_vs_plain": tls_vs_plain(runs)}
            if len(links) > 1:
                replay["signature_checks"] = signature_checks(prep, args.batch)
        ingest = await ingest_part(fleet, folder, args) if args.only in (None, "ingest") else None
        reconnect = await reconnect_part(fleet, folder, args) if args.only in (None, "reconnect") else None

        machine = machine_info("trio", "trio-websocket", "msgspec", "storepos", implementation=False)
        machine.update(
            sqlite=sqlite3.sqlite_version, load_average_at_start=load_at_start, load_average_at_end=load_average()
        )
        report = new_report(
            "sync",
            machine,
            config={
                "sales": args.sales,
                "batch": args.batch,
                "lanes": LANES,
                "window": WINDOW,
                "stores": args.stores,
                "store_sales": args.store_sales,
                "ingest_batch": args.ingest_batch,
                "client_procs": args.client_procs,
                "seed": args.seed,
                "link": args.link,
                "node_log_level": "WARNING",
                "status_poll_s": args.poll,
                "repeat": args.repeat,
                "only": args.only,
            },
            replay=replay,
            ingest=ingest,
            reconnect=reconnect,
        )
        if len(args.batch) > 1 and runs:
            by_batch = {b: median([r["seconds"] for r in runs if r["batch"] == b]) for b in args.batch}
            best = min(by_batch, key=lambda b: by_batch[b])
            report["batch_best"] = {"batch": best, "seconds": by_batch[best], "median_s_by_batch": by_batch}
        report["targets"] = verdicts(report)
        print_report(report)
        print()
        write_report(args.out, report)
        problems = sum(len(r["problems"]) for r in runs)
        errors = 0
        if ingest is not None:
            problems += len(ingest["central"]["problems"])
            errors += ingest["central"]["error_count"] + ingest["floor_ws"]["error_count"]
        if reconnect is not None:
            problems += len(reconnect["central"]["problems"])
            errors += sum(reconnect[k]["error_count"] for k in TARGETS)
        if problems or errors:
            print(f"\n!!! THIS RUN HAD {problems} CHECK FAILURES AND {errors} ERRORS: the figures are not valid !!!")
        ok = not problems and not errors
        return 0 if ok else 1
    finally:
        await fleet.stop_all()
        if ok and not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            print(f"work folder kept: {folder}", file=sys.stderr)


def parse_batches(text: str) -> list[int]:
    try:
        batches = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 250,500,1000, not {text!r}") from None
    if not batches or min(batches) < 1 or len(set(batches)) != len(batches):
        raise argparse.ArgumentTypeError("batch sizes must be distinct positive numbers")
    return batches


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Offline backlog replay and central ingest, against floors.")
    p.add_argument("--sales", type=int, default=TARGET_REPLAY_SALES, help="sales in the offline backlog")
    p.add_argument(
        "--batch",
        type=parse_batches,
        default=[DEFAULT_BATCH],
        help="store.toml [central] batch for the replay; several (250,500,1000) run the replay once each",
    )
    p.add_argument("--stores", type=int, default=200, help="concurrent simulated stores for ingest")
    p.add_argument("--store-sales", type=int, default=250, help="sales each simulated store sends")
    p.add_argument("--ingest-batch", type=int, default=50, help="sales per EventBatch in the ingest run")
    p.add_argument("--client-procs", type=int, default=1, help="spread the simulated stores over K processes")
    p.add_argument("--repeat", type=int, default=1, help="run each replay R times (the verdict takes the median)")
    p.add_argument("--only", choices=["replay", "ingest", "reconnect"], help="run one part only")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--link",
        choices=sorted(LINKS),
        default="both",
        help="the replay over TLS and over plain ws:// in turn (both, the default), or over one; "
        "ingest and reconnect run over TLS unless plain",
    )
    p.add_argument("--plain", action="store_const", dest="link", const="plain", help="the same as --link plain")
    p.add_argument("--replay-timeout", type=float, default=600.0, help="bound on one replay (seconds)")
    p.add_argument("--ingest-timeout", type=float, default=300.0, help="bound on one ingest phase (seconds)")
    p.add_argument("--poll", type=float, default=POLL, help=f"seconds between status polls in the replay ({POLL:g})")
    p.add_argument(
        "--py-spy", action="store_true", help="profile store and central in one replay, and central during ingest"
    )
    add_out_option(p, "sync")
    p.add_argument("--keep", action="store_true", help="keep the work folder (logs, databases)")
    p.add_argument("--sink-server", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--sink-db", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--sink-tls", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--ready-file", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--ingest-worker", metavar="SPEC", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.sink_server:
        if args.ready_file is None:
            p.error("--sink-server needs --ready-file")
        try:
            trio.run(sink_server, args.ready_file, args.sink_db, args.sink_tls)
        except KeyboardInterrupt:
            pass
        return 0
    if args.ingest_worker:
        trio.run(ingest_worker, args.ingest_worker)
        return 0
    if min(args.sales, args.stores, args.store_sales, args.ingest_batch, args.client_procs, args.repeat) < 1:
        p.error("--sales, --stores, --store-sales, --ingest-batch, --client-procs and --repeat must be at least 1")
    if args.poll <= 0:
        p.error("--poll must be positive")
    return run_script("sync", bench, args)


if __name__ == "__main__":
    sys.exit(main())
