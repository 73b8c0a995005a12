"""Payments: what a store node adds to a card payment, and gift card redemptions per second at central.

    .venv/bin/python bench/payments.py [--payments 200] [--lanes 50] [--seconds 5] [--out bench/results/payments.json]

1. Card payment overhead. A real store node (`storepos store run`, lane 1, no central, logging at WARNING)
   as a subprocess, its lane's [[devices]] terminal pointed at a ZVT simulator (devices/sim/zvt.py) on TCP
   in this process, and a till (till.client) attached and logged in. One payment: scan one item, send
   CardTender, and time from the request until the till holds the sale's Receipt (the attempt saved
   durably before the terminal hears of it, the terminal's whole exchange, the sale journaled durably,
   the receipt pushed). Floor, in the same run and alternating with the payments so machine noise falls
   on both alike: the simulator's own round trip, a ZvtTerminal (the same driver the node uses) in this
   process authorizing the same amount against a second simulator, back to back. The overhead is the
   difference of the percentiles. The simulator's intermediate statuses and receipt lines are sent as a
   terminal sends them (no customer delays: the simulator answers at once).
2. Gift card redemptions at central. Central (`storepos central run`) as a subprocess on a database
   holding CARDS gift cards; --lanes concurrent lanes, each one store link as a store node opens it
   (LinkHello, then GiftCardMoveQuestion frames), redeem 1.00 from one of the cards (lanes share cards,
   so redemptions of one card race) one after another for --seconds. Each redemption is a conditional
   UPDATE and its idempotency row, committed durably before central answers. Floor: a bare SQLite commit
   in the same run, one UPDATE per durable commit (WAL, synchronous=FULL) on a file in the work folder,
   for the same --seconds in this process. Afterwards the balances are checked: every approved
   redemption was taken exactly once.

CPU of the node under test and of this process is recorded over each window; a window disturbed by
other processes is flagged (bench/measurements.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root: see bench/processes.py

import argparse
import os
import sqlite3
import ssl
import tempfile
import time
import uuid
from typing import Any

import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.measurements import (
    Window,
    add_out_option,
    fmt,
    latency_stats,
    machine_info,
    new_report,
    warn_if_disturbed,
    write_report,
)
from bench.processes import BenchError, Fleet, central_tls, node_argv, run_script, store_toml
from central.registers import giftcards, identities, imports
from devices.sim.zvt import ZvtSimulator
from devices.terminal import ZvtTcp, ZvtTerminal
from protocol import identity
from protocol.codec import LINK_SUBPROTOCOL, LinkCodec
from protocol.frames import (
    CardTender,
    GiftCardAnswer,
    GiftCardMove,
    GiftCardMoveQuestion,
    LinkHello,
    Login,
    SaleState,
    Scan,
)
from protocol.link import greet
from protocol.tls import client_context
from protocol.websocket import dial
from runtime.database import immediate
from runtime.health import HealthBoard
from runtime.supervision import Backoff, ChildSpec, Intensity, Supervisor
from till.client import TillClient, connect

COFFEE, PRICE = "7310000000034", 6995
CARDS = 10
WARMUP = 10


async def _receipt(till: TillClient, seen: int) -> None:
    while len(till.receipts) == seen:
        await till.pushed.wait()


async def card_part(args: argparse.Namespace, folder: Path, fleet: Fleet) -> dict[str, Any]:
    sim, floor_sim = ZvtSimulator(currency="SEK"), ZvtSimulator(currency="SEK")
    board = HealthBoard()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(sim.run)
        floor_port = await nursery.start(floor_sim.run)
        driver = ZvtTerminal("floor", ZvtTcp("127.0.0.1", floor_port), board, currency="SEK")
        supervisor = Supervisor(
            "floor", [ChildSpec("floor", driver.run)], backoff=Backoff(initial=0.05, cap=0.5),
            intensity=Intensity(max_restarts=100, within=1.0), escalate=False, health=board,
        )  # fmt: skip
        await nursery.start(supervisor.run)
        config = folder / "store.toml"
        config.write_text(
            store_toml("B1", "Payments bench", "SEK", [1])
            + f'\n[[devices]]\nkind = "terminal"\nlane = 1\nport = "tcp://127.0.0.1:{port}"\n'
        )
        store, url = await fleet.start("store", node_argv("store", "run", "--config", str(config)), folder)
        lane_ns: list[int] = []
        floor_ns: list[int] = []
        async with connect(url, lane=1, till="bench") as till:
            await till.request(Login(operator="1", pin="1234"))
            window = Window({"store": store.pid, "bench": os.getpid()})
            window.begin()
            for i in range(WARMUP + args.payments):
                await till.request(Scan(code=COFFEE))
                seen = len(till.receipts)
                start = time.perf_counter_ns()
                answer = await till.request(CardTender())
                if not isinstance(answer, SaleState) or answer.status != "paying":
                    raise BenchError(f"card payment {i} refused: {answer}")
                await _receipt(till, seen)
                lane = time.perf_counter_ns() - start
                start = time.perf_counter_ns()
                result = await driver.authorize(PRICE, "SEK", reference=f"floor-{i}")
                floor = time.perf_counter_ns() - start
                if result.outcome != "approved":
                    raise BenchError(f"floor payment {i}: {result.outcome}: {result.message}")
                if i >= WARMUP:
                    lane_ns.append(lane)
                    floor_ns.append(floor)
            window.end()
            cpu = window.record()
        nursery.cancel_scope.cancel()
    if len(sim.payments) != WARMUP + args.payments or sim.charged != PRICE * len(sim.payments):
        raise BenchError(f"the terminal booked {len(sim.payments)} payments, expected {WARMUP + args.payments}")
    lane_stats = latency_stats(lane_ns)
    floor_stats = latency_stats(floor_ns)
    overhead = {k: lane_stats[k] - floor_stats[k] for k in ("p50_ms", "p90_ms", "p99_ms", "mean_ms")}
    warn_if_disturbed("card payments", cpu)
    return {"payments": args.payments, "lane": lane_stats, "simulator_floor": floor_stats, "overhead": overhead,
            "cpu": cpu}  # fmt: skip


def prepare_central(db: Path) -> None:
    conn = imports.open_catalog(db, create=True)
    try:
        conn.execute("BEGIN")
        for n in range(CARDS):
            giftcards.issue(conn, f"BENCH-{n}", "giftcard", 10**12, "SEK", at=0)
        conn.execute("COMMIT")
    finally:
        conn.close()


def enrolled_stores(db: Path, lanes: int) -> dict[int, Ed25519PrivateKey]:
    """A key for each simulated store, registered at central through the registry's own function."""
    keys = {lane: identity.generate() for lane in range(lanes)}
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        with immediate(conn):
            for lane, key in keys.items():
                identities.register(conn, f"B{lane:02d}", identity.public_bytes(key), int(time.time() * 1000))
    finally:
        conn.close()
    return keys


async def redeeming_lane(
    url: str,
    trust: ssl.SSLContext | None,
    lane: int,
    key: Ed25519PrivateKey,
    until: float,
    counts: list[int],
    latencies: list[int],
) -> None:
    codec = LinkCodec()
    store = f"B{lane:02d}"
    async with dial(url, subprotocols=[LINK_SUBPROTOCOL], ssl_context=trust) as ws:
        hello = LinkHello(node=store, role="store", key=identity.public_bytes(key))
        await greet(ws, hello, peer="central", key=key)
        n = 0
        while trio.current_time() < until:
            n += 1
            move = GiftCardMove(
                move=uuid.uuid4().hex, kind="redeem", card=f"BENCH-{lane % CARDS}", amount=100, currency="SEK",
                store=store, sale_id=f"{store}-{n}", at=0,
            )  # fmt: skip
            start = time.perf_counter_ns()
            await ws.send_message(codec.encode(GiftCardMoveQuestion(id=n, move=move)))
            reply = codec.decode(await ws.get_message())
            latencies.append(time.perf_counter_ns() - start)
            if not isinstance(reply, GiftCardAnswer) or reply.id != n:
                raise BenchError(f"lane {lane}: {reply}")
            state = reply.card
            if not state.ok or state.amount != 100:
                raise BenchError(f"lane {lane}: redemption refused: {state.message}")
            counts[lane] += 1


def sqlite_floor(path: Path, seconds: float) -> dict[str, float]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS cards (card TEXT PRIMARY KEY, balance INTEGER NOT NULL)")
    conn.execute("INSERT OR REPLACE INTO cards VALUES ('X', 1000000000000)")
    commits = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        conn.execute("BEGIN")
        conn.execute("UPDATE cards SET balance = balance - 100 WHERE card = 'X' AND balance >= 100")
        conn.execute("COMMIT")
        commits += 1
    elapsed = time.perf_counter() - start
    conn.close()
    return {"commits": commits, "per_s": commits / elapsed}


async def giftcard_part(args: argparse.Namespace, folder: Path, fleet: Fleet) -> dict[str, Any]:
    db = folder / "central.db"
    prepare_central(db)
    tls_args, ca = central_tls(folder)
    argv = node_argv("central", "run", "--db", str(db), "--port", "0", *tls_args)
    central, url = await fleet.start("central", argv, folder)
    trust = client_context(Path(ca)) if ca else None
    counts = [0] * args.lanes
    latencies: list[int] = []
    keys = enrolled_stores(db, args.lanes)
    window = Window({"central": central.pid, "bench": os.getpid()})
    window.begin()
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        for lane in range(args.lanes):
            nursery.start_soon(redeeming_lane, url, trust, lane, keys[lane], start + args.seconds, counts, latencies)
    elapsed = trio.current_time() - start
    window.end()
    cpu = window.record()
    await fleet.stop(central)
    conn = sqlite3.connect(db)
    try:
        taken = sum(10**12 - b for (b,) in conn.execute("SELECT balance FROM giftcards"))
        moves = conn.execute("SELECT COUNT(*) FROM giftcard_moves").fetchone()[0]
    finally:
        conn.close()
    if taken != 100 * sum(counts) or moves != sum(counts):
        raise BenchError(f"balances show {taken / 100:.0f} redemptions and {moves} moves, lanes saw {sum(counts)}")
    floor = await trio.to_thread.run_sync(sqlite_floor, folder / "floor.db", args.seconds)
    warn_if_disturbed("gift card redemptions", cpu)
    return {
        "lanes": args.lanes,
        "cards": CARDS,
        "redemptions": sum(counts),
        "per_s": sum(counts) / elapsed,
        "latency": latency_stats(latencies),
        "sqlite_commit_floor": floor,
        "cpu": cpu,
    }


async def bench(args: argparse.Namespace) -> int:
    fleet = Fleet()
    with tempfile.TemporaryDirectory(prefix="storepos-bench-payments-") as work:
        folder = Path(work)
        try:
            with trio.fail_after(600):
                cards = await card_part(args, folder, fleet)
                gift = await giftcard_part(args, folder, fleet)
        finally:
            await fleet.stop_all()
    report = new_report("payments", machine_info("trio", "msgspec"), card_payments=cards, giftcards=gift)
    lane, floor, over = cards["lane"], cards["simulator_floor"], cards["overhead"]
    print(f"card payment at the lane ({cards['payments']} payments), ms:")
    print(f"  {'':<28}{'p50':>8}{'p90':>8}{'p99':>8}")
    print(f"  {'lane (till to receipt)':<28}{fmt(lane['p50_ms']):>8}{fmt(lane['p90_ms']):>8}{fmt(lane['p99_ms']):>8}")
    print(
        f"  {'simulator floor (driver)':<28}{fmt(floor['p50_ms']):>8}{fmt(floor['p90_ms']):>8}{fmt(floor['p99_ms']):>8}"
    )
    print(f"  {'store-node overhead':<28}{fmt(over['p50_ms']):>8}{fmt(over['p90_ms']):>8}{fmt(over['p99_ms']):>8}")
    print(
        f"gift card redemptions at central, {gift['lanes']} concurrent lanes on {gift['cards']} cards: "
        f"{gift['per_s']:.0f}/s (p50 {fmt(gift['latency']['p50_ms'])} ms, p99 {fmt(gift['latency']['p99_ms'])} ms); "
        f"floor: bare durable SQLite commits {gift['sqlite_commit_floor']['per_s']:.0f}/s"
    )
    write_report(args.out, report)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Card payment overhead at a lane; gift card redemptions at central.")
    p.add_argument("--payments", type=int, default=200, help="measured card payments (and as many floor ones)")
    p.add_argument("--lanes", type=int, default=50, help="concurrent lanes redeeming gift cards at central")
    p.add_argument("--seconds", type=float, default=5.0, help="how long the lanes redeem (and the floor commits)")
    add_out_option(p, "payments")
    args = p.parse_args(argv)
    if args.payments < 1 or args.lanes < 1 or args.seconds <= 0:
        p.error("--payments and --lanes must be at least 1, --seconds positive")
    return run_script("payments", bench, args, stop_on_signals=True)


if __name__ == "__main__":
    sys.exit(main())
