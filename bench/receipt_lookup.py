"""Receipt lookup among 1,000,000 journal receipts (issue 14): p99 <= 20 ms for each kind of lookup.

    .venv/bin/python bench/receipt_lookup.py [--receipts 1000000] [--lookups 2000] [--db F] [--out F.json]

Why: a cashier looks a receipt up with a customer waiting (by its id, a few days, its total, the last four
digits of a card), on a store whose journal grows by every sale for years; what it costs must not grow
with the journal. The store keeps a receipt index beside the journal (storenode/journal/index.py, written
in the close's transaction) and a lookup reads the index and decodes only the receipts it answers with.

The store.db: `--receipts` sales journaled with the journal's own append (chain.append: receipt numbers,
hash chain, a key-less Signer, as the sale-close job calls it) and indexed with the close's own
`index.index_record`, in transactions of 10,000, over 8 lanes and 400 days, 1-4 lines each, totals from
a few thousand distinct amounts, a third paid by card (its masked number's last four from 10,000). With
`--db F` the file is kept and reused when it already holds that many receipts (building takes minutes).

Measured, each on a read connection in its own read transaction, as the lane reads (its WAL reader):
what the lane runs for a ReceiptQuery (storenode.lanes.lookup.where_of + look_up: the index read, the
newest 20, their journal bodies decoded, their copy counts), `--lookups` times per kind with random
arguments: by id, by a 5-day period, by exact total, by card last 4. Floor, in the same run: a bare
SQLite indexed SELECT of one journal body by its primary key (no decoding), the least a lookup can do.
Printed: p50/p99 per kind and its ratio to the floor's; target p99 <= 20 ms per kind. JSON written to
bench/results/receipt_lookup.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root first: see bench/processes.py

import argparse
import datetime as dt
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable
from typing import Any

from bench.measurements import add_out_option, fmt, latency_stats, machine_info, new_report, write_report
from protocol.frames import ReceiptQuery, RecordLine, RecordPayment, RecordTender, RecordVat, SaleRecord
from runtime.database import migrate, open_connection
from storenode.journal import chain, index
from storenode.lanes import lookup
from storenode.schema import MIGRATIONS

STORE, CURRENCY, ZONE = "S001", "SEK", "UTC"
LANES = 8
DAYS = 400
TX = 10_000
START_MS = 1_767_225_600_000  # 2026-01-01T00:00Z
TARGET_P99_MS = 20.0
ITEMS = [("MILK1", "7310000000010", "Milk 1l", 1590), ("BUTR", "7310000000027", "Butter", 5490)]
ITEMS += [(f"I{n:04}", f"73100{n:08}", f"Item {n}", 500 + 37 * n) for n in range(200)]


def make_record(rng: random.Random, lane: int, no: int, at: int) -> SaleRecord:
    lines = []
    for n in range(rng.randint(1, 4)):
        item, code, name, price = rng.choice(ITEMS)
        qty = rng.randint(1, 3)
        lines.append(RecordLine(n + 1, item, code, name, qty, price, qty * price, 1200, False))
    total = sum(line.amount for line in lines)
    payments: list[RecordPayment] = []
    if rng.random() < 1 / 3:
        pan = f"476173******{rng.randrange(10_000):04}"
        payments.append(RecordPayment("payment", "card", "approved", total, CURRENCY, f"p{lane}-{no}", masked_pan=pan))
        tenders = [RecordTender("card", CURRENCY, total, total)]
    else:
        tenders = [RecordTender("cash", CURRENCY, total, total)]
    return SaleRecord(
        store=STORE,
        lane=lane,
        receipt_no=no,
        kind="sale",
        sale_id=f"{lane:02}{no:010}{rng.getrandbits(64):016x}",
        operator="1",
        opened_at=at - 60_000,
        closed_at=at,
        currency=CURRENCY,
        lines=lines,
        total=total,
        rounding=0,
        vat=[RecordVat(1200, total, total * 12 // 112)],
        tenders=tenders,
        change=0,
        payments=payments,
    )


def build(db: Path, receipts: int, seed: int) -> dict[str, Any]:
    """A store.db holding `receipts` indexed journal receipts; reused when it already holds them."""
    conn = open_connection(db)
    try:
        migrate(conn, MIGRATIONS)
        have = conn.execute("SELECT COUNT(*) FROM receipt_index").fetchone()[0]
        if have == receipts:
            return {"receipts": receipts, "reused": True, "seconds": 0.0, "db_bytes": db.stat().st_size}
        if have:
            raise SystemExit(f"{db} holds {have} receipts, not {receipts}: remove it or name another --db")
        started = time.perf_counter()
        rng = random.Random(seed)
        signer = chain.Signer(STORE, None)
        step = DAYS * 86_400_000 // receipts
        for first in range(0, receipts, TX):
            conn.execute("BEGIN IMMEDIATE")
            for n in range(first, min(receipts, first + TX)):
                lane = n % LANES + 1
                at = START_MS + n * step
                record, _ = chain.append(
                    conn, lane, lambda no, lane=lane, at=at: make_record(rng, lane, no, at), signer
                )
                index.index_record(conn, record)
            conn.execute("COMMIT")
            if first and first % 100_000 == 0:
                print(f"  {first:,} receipts in {time.perf_counter() - started:.0f} s", flush=True)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("ANALYZE")
        seconds = time.perf_counter() - started
        return {"receipts": receipts, "reused": False, "seconds": seconds, "db_bytes": db.stat().st_size}
    finally:
        conn.close()


def timed(conn: sqlite3.Connection, run: Callable[[sqlite3.Connection], object], n: int) -> tuple[list[int], int]:
    """`n` runs, each in its own read transaction; their times in ns, and how many answered anything."""
    samples, hits = [], 0
    for _ in range(n):
        t0 = time.perf_counter_ns()
        conn.execute("BEGIN")
        try:
            found = run(conn)
        finally:
            conn.execute("COMMIT")
        samples.append(time.perf_counter_ns() - t0)
        hits += bool(found)
    return samples, hits


def day(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).date().isoformat()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--receipts", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--db", type=Path, default=None, help="keep the store.db here (reused when it fits)")
    add_out_option(parser, "receipt_lookup")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="receipt-lookup-") as work:
        db = args.db or Path(work) / "store.db"
        print(f"building {args.receipts:,} journal receipts in {db} ...", flush=True)
        prep = build(db, args.receipts, args.seed)
        print(
            "  " + ("reused" if prep["reused"] else f"built in {prep['seconds']:.0f} s"),
            f"{prep['db_bytes'] / 1e6:.0f} MB",
        )

        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA query_only = ON")
        rng = random.Random(args.seed + 1)
        per_lane = args.receipts // LANES
        span = args.receipts * (DAYS * 86_400_000 // args.receipts)
        amounts = [r[0] for r in conn.execute("SELECT total FROM receipt_index ORDER BY random() LIMIT 5000")]
        cards = [r[0] for r in conn.execute("SELECT card FROM receipt_cards ORDER BY random() LIMIT 5000")]

        def query(q: ReceiptQuery) -> Callable[[sqlite3.Connection], object]:
            def run(c: sqlite3.Connection) -> object:
                return lookup.look_up(c, lookup.where_of(q, STORE, ZONE), q.limit).listed

            return run

        def by_id() -> ReceiptQuery:
            return ReceiptQuery(receipt=f"{STORE}-{rng.randint(1, LANES)}-{rng.randint(1, per_lane)}")

        def by_period() -> ReceiptQuery:
            start = START_MS + rng.randrange(span)
            return ReceiptQuery(since=day(start), until=day(start + 4 * 86_400_000))

        def by_amount() -> ReceiptQuery:
            return ReceiptQuery(amount=rng.choice(amounts))

        def by_card() -> ReceiptQuery:
            return ReceiptQuery(card=rng.choice(cards))

        def floor(c: sqlite3.Connection) -> object:
            lane, no = rng.randint(1, LANES), rng.randint(1, per_lane)
            return c.execute("SELECT body FROM journal WHERE lane = ? AND receipt_no = ?", (lane, no)).fetchone()

        kinds: dict[str, Callable[[], ReceiptQuery]] = {
            "id": by_id,
            "period": by_period,
            "amount": by_amount,
            "card": by_card,
        }
        timed(conn, floor, 200)  # warm the cache as a running store's would be
        floor_ns, _ = timed(conn, floor, args.lookups)
        floor_stats = latency_stats(floor_ns)
        results: dict[str, Any] = {}
        for name, make in kinds.items():
            timed(conn, lambda c, make=make: query(make())(c), 50)
            samples, hits = timed(conn, lambda c, make=make: query(make())(c), args.lookups)
            stats = latency_stats(samples)
            stats["answered"] = hits
            stats["p50_vs_floor"] = stats["p50_ms"] / floor_stats["p50_ms"]
            stats["p99_vs_floor"] = stats["p99_ms"] / floor_stats["p99_ms"]
            stats["meets_target"] = stats["p99_ms"] <= TARGET_P99_MS
            results[name] = stats
        conn.close()

    print(
        f"\n{'lookup':<8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'x floor p50':>12} {'x floor p99':>12}  answered"
    )
    print(
        f"{'floor':<8} {fmt(floor_stats['p50_ms'], '.3f'):>8} {fmt(floor_stats['p99_ms'], '.3f'):>8} "
        f"{fmt(floor_stats['max_ms'], '.3f'):>8}"
    )
    for name, stats in results.items():
        print(
            f"{name:<8} {fmt(stats['p50_ms'], '.3f'):>8} {fmt(stats['p99_ms'], '.3f'):>8}"
            f" {fmt(stats['max_ms'], '.3f'):>8}"
            f" {fmt(stats['p50_vs_floor'], '.1f'):>12} {fmt(stats['p99_vs_floor'], '.1f'):>12}  "
            f"{stats['answered']}/{stats['count']:.0f}"
        )
    ok = all(stats["meets_target"] for stats in results.values())
    print(f"\ntarget p99 <= {TARGET_P99_MS:g} ms per kind: {'met' if ok else 'NOT met'}")
    report = new_report(
        "receipt_lookup",
        machine_info(),
        build=prep,
        lookups=args.lookups,
        floor=floor_stats,
        kinds=results,
        target_p99_ms=TARGET_P99_MS,
        met=ok,
    )
    write_report(args.out, report)


if __name__ == "__main__":
    main()
