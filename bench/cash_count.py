"""What a cash count costs as a lane's journal grows: the expected amounts read since the lane's last count.

    .venv/bin/python bench/cash_count.py [--history 100000] [--shifts 100,1000,5000] [--rounds 20]
        [--out bench/results/cash_count.json]

A store database on a temporary file, lane 1's journal filled with `--history` cash sales (each with two
lines, a cash tender and change) and a cash count, then a shift of sales after it; for each shift size the
time `storenode.lanes.cash.expected` takes (what every count pays inside its transaction), and, beside
it, the same computation with no count recorded (the whole journal read), which is what the count would
cost without `cash_counts`. The first should follow the shift, the second the history.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root: see bench/processes.py

import argparse
import sqlite3
import tempfile
import time

from bench.measurements import add_out_option, latency_stats, machine_info, new_report, write_report
from protocol.frames import RecordCount, RecordEvent, RecordLine, RecordTender, RecordVat, SaleRecord
from runtime.database import migrate, open_connection
from storenode.journal import chain
from storenode.lanes import cash, events
from storenode.schema import MIGRATIONS

T0 = 1_795_000_000_000
SIGNER = chain.Signer("B001", None)  # unsigned: signing is not what is measured


def sale(no: int) -> SaleRecord:
    lines = [
        RecordLine(1, "1001", "7310000000010", "Milk 1l", 2, 1590, 3180, 1200, False),
        RecordLine(2, "1003", "7310000000034", "Coffee 500 g", 1, 6995, 6995, 1200, False),
    ]
    return SaleRecord(
        store="B001",
        lane=1,
        receipt_no=no,
        kind="sale",
        sale_id=f"sale-{no}",
        operator="1",
        opened_at=T0 + no * 1000,
        closed_at=T0 + no * 1000 + 500,
        currency="SEK",
        lines=lines,
        total=10175,
        rounding=-5,
        vat=[RecordVat(1200, 10175, 1090)],
        tenders=[RecordTender("cash", "SEK", 20000)],
        change=9830,
    )


def fill(conn: sqlite3.Connection, n: int) -> None:
    conn.execute("BEGIN")
    for _ in range(n):
        chain.append(conn, 1, sale, SIGNER)
    conn.execute("COMMIT")


def count(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN")
    event = RecordEvent(code="count", counts=[RecordCount("cash", "SEK", 0, 500_00)])
    record = events.journal_event(conn, event, store="B001", lane=1, operator="1", currency="SEK", at=T0, signer=SIGNER)
    conn.execute(
        "INSERT INTO cash_counts (lane, receipt_no) VALUES (1, ?) "
        "ON CONFLICT (lane) DO UPDATE SET receipt_no = excluded.receipt_no",
        (record.receipt_no,),
    )
    conn.execute("COMMIT")


def timed(conn: sqlite3.Connection, rounds: int) -> list[int]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        cash.expected(conn, 1, "SEK")
        samples.append(time.perf_counter_ns() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", type=int, default=100_000)
    parser.add_argument("--shifts", default="100,1000,5000")
    parser.add_argument("--rounds", type=int, default=20)
    add_out_option(parser, "cash_count")
    args = parser.parse_args()
    shifts = [int(s) for s in args.shifts.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as folder:
        conn = open_connection(Path(folder) / "store.db")
        migrate(conn, MIGRATIONS)
        started = time.perf_counter()
        fill(conn, args.history)
        print(f"journal of {args.history} sales written in {time.perf_counter() - started:.1f} s")
        for shift in shifts:
            count(conn)
            fill(conn, shift)
            since = latency_stats(timed(conn, args.rounds))
            conn.execute("BEGIN")
            conn.execute("DELETE FROM cash_counts")  # as if no count were kept: the whole journal is read
            whole = latency_stats(timed(conn, max(3, args.rounds // 5)))
            conn.execute("ROLLBACK")
            total = conn.execute("SELECT count(*) FROM journal").fetchone()[0]
            print(
                f"shift {shift:>6} sales, journal {total:>7}: since the last count p50 {since['p50_ms']:8.2f} ms"
                f" | whole journal p50 {whole['p50_ms']:9.2f} ms"
            )
            results.append({"shift": shift, "journal": total, "since_last_count": since, "whole_journal": whole})
        conn.close()
    write_report(args.out, new_report("cash_count", machine_info(), history=args.history, results=results))


if __name__ == "__main__":
    main()
