"""Operator logins: a known number with a wrong PIN against an unknown number, over a real till connection.

    .venv/bin/python bench/operator_login.py [--rounds 30] [--out bench/results/operator_login.json]

A store node in this process (no central, the packaged demo catalogue, lockout raised so the rounds do
not lock anyone), one till attached to lane 1. Each round sends Login for operator 1 with a wrong PIN
and Login for operator 42 (no such operator), in turns, each first every other round, so machine noise
falls on both alike, and
times each from request to refusal. Before issue 13 a known number took ~23 ms and an unknown one ~1 ms
(a way to list the operators); now both run the same scrypt work (the unknown one against the dummy
hash, protocol.pins) and the same database writes, so the two medians should agree within noise. The
floor: one scrypt check alone, in this process, measured between the rounds.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root: see bench/processes.py

import argparse
import tempfile
import time

import trio

from bench.measurements import add_out_option, latency_stats, machine_info, new_report, write_report
from devtools import enrolment
from protocol import pins
from protocol.frames import Error, Login
from storenode.app import StoreNode
from storenode.config import GatewayConfig, OperatorsConfig, StoreConfig
from till.client import connect


async def measure(rounds: int, folder: Path) -> dict[str, list[int]]:
    config = StoreConfig(
        store="B001",
        lanes=[1],
        data_dir=str(folder),
        gateway=GatewayConfig(port=0),
        operators=OperatorsConfig(pin_failures=10**6),
    )
    enrolment.prepare(config, enrolment.process_chain(folder))  # its till enrolled, over wss
    node = StoreNode(config)
    times: dict[str, list[int]] = {"known": [], "unknown": [], "scrypt": []}
    stored = pins.hash_pin("1234")
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        async with connect(node.url, lane=1, till="bench") as till:
            for n in range(rounds):
                pair = [("known", "1"), ("unknown", "42")]
                for name, number in pair if n % 2 else pair[::-1]:  # either goes first as often
                    start = time.perf_counter_ns()
                    answer = await till.request(Login(operator=number, pin="9999"))
                    times[name].append(time.perf_counter_ns() - start)
                    assert isinstance(answer, Error) and answer.code == "wrong_pin", answer
                start = time.perf_counter_ns()
                pins.verify("9999", stored)
                times["scrypt"].append(time.perf_counter_ns() - start)
        nursery.cancel_scope.cancel()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    add_out_option(parser, "operator_login")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        times = trio.run(measure, args.rounds, Path(folder))
    stats = {name: latency_stats(samples) for name, samples in times.items()}
    for name, s in stats.items():
        print(f"{name:<8} median {s['p50_ms']:7.2f} ms  p90 {s['p90_ms']:7.2f} ms  ({int(s['count'])} logins)")
    ratio = stats["unknown"]["p50_ms"] / stats["known"]["p50_ms"]
    print(f"unknown / known median: {ratio:.3f}")
    report = new_report("operator_login", machine_info(), rounds=args.rounds, latency=stats, ratio=ratio)
    write_report(args.out, report)


if __name__ == "__main__":
    main()
