"""Long chaos runs: the fault-injection harness of devtools/chaos, for as many rounds or minutes as asked.

    .venv/bin/python bench/chaos.py [--rounds 30] [--lanes 3] [--seed 1] [--minutes M]
        [--cut 0.01] [--duplicate 0.05] [--reorder 0.05] [--delay 0.02] [--kill-central-every 2]
        [--dir D] [--keep] [--out F.json]

Why: the test suite runs the harness for a few rounds so it stays fast; a lost or duplicated event
that needs a rare interleaving (a SIGKILL mid-commit while a reordered frame is in flight) shows up
only in long runs. This runs `devtools.chaos.harness.run_chaos` (real central and store processes, a
proxy that cuts, duplicates, delays and reorders link frames, both nodes killed with SIGKILL and
restarted, tills selling on every lane throughout) and then `check`, which compares central with the
store's own files: every receipt exactly once, the same totals, hash-chain heads and stock.

With `--minutes`, runs of `--rounds` rounds are repeated with seeds seed, seed+1, ... and a new run is
started only while time is left (a run is never cut short: it has to drain and be checked to prove
anything). Every run is bounded by its own deadline. Printed: per run the rounds, kills, proxy
statistics, receipts sold and problems (there must be none); written: the same to JSON. The exit
status is 1 when any check found a problem, 2 when a run could not complete.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root first: see bench/processes.py

import argparse
import os
import shutil
import tempfile
import time
from typing import Any

import trio

from bench.measurements import add_out_option, machine_info, new_report, write_report
from bench.processes import run_script
from devtools.chaos.harness import ChaosPlan, check, run_chaos
from devtools.chaos.proxy import Faults
from storenode.config import ConfigError, load_config

NODE_START = 35.0  # devtools.processes waits up to 30 s for a node's ready file, plus slack


def run_budget(plan: ChaosPlan) -> float:
    """The longest a run may take: every round starting a store (and now and then central) and
    selling its longest, then the settle bound; anything beyond is a hang, not a slow machine."""
    per_round = NODE_START + 2 * plan.round_seconds[1]
    if plan.kill_central_every:
        per_round += NODE_START / plan.kill_central_every
    return 2 * NODE_START + plan.rounds * per_round + plan.settle_seconds


def store_id(folder: Path) -> str:
    """The store the harness configured (it writes store.toml into the run folder)."""
    try:
        return load_config(folder / "store.toml").store
    except ConfigError:
        return "CHAOS"


async def one_run(folder: Path, plan: ChaosPlan) -> dict[str, Any]:
    """One harness run and its check; a run that cannot complete is reported, not raised."""
    await trio.Path(folder).mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    out: dict[str, Any] = {"seed": plan.seed, "rounds": plan.rounds, "folder": str(folder)}
    try:
        with trio.fail_after(run_budget(plan)):
            result = await run_chaos(folder, plan)
    except Exception as exc:  # a node that would not start, a backlog that would not drain, ...
        out["seconds"] = time.monotonic() - started
        out["failed"] = f"{type(exc).__name__}: {exc}"
        out["problems"] = []
        return out
    out["seconds_run"] = time.monotonic() - started
    problems = await trio.to_thread.run_sync(check, folder, store_id(folder), result.receipts)
    out.update(
        seconds=time.monotonic() - started,
        store_kills=result.store_kills,
        central_kills=result.central_kills,
        receipts=len(result.receipts),
        sales_total=sum(result.receipts.values()),
        proxy=result.proxy,
        problems=problems,
    )
    return out


def print_run(run: dict[str, Any]) -> None:
    if "failed" in run:
        print(f"seed {run['seed']:>5}: RUN FAILED after {run['seconds']:.0f} s: {run['failed']}", flush=True)
        return
    p = run["proxy"]
    verdict = "ok" if not run["problems"] else f"{len(run['problems'])} PROBLEMS"
    print(
        f"seed {run['seed']:>5}: {run['rounds']} rounds in {run['seconds']:.0f} s, kills store {run['store_kills']} "
        f"central {run['central_kills']}, proxy links {p['links']} messages {p['messages']} cuts {p['cuts']} "
        f"duplicates {p['duplicates']} reorders {p['reorders']}, receipts {run['receipts']}: {verdict}",
        flush=True,
    )
    for problem in run["problems"]:
        print(f"    !!! {problem}", flush=True)


async def bench(args: argparse.Namespace) -> int:
    base = args.dir.resolve() if args.dir else Path(tempfile.mkdtemp(prefix="storepos-chaos-"))
    base.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + args.minutes * 60 if args.minutes else None
    faults = Faults(cut=args.cut, duplicate=args.duplicate, reorder=args.reorder, delay=args.delay)
    print(
        f"storepos chaos: {os.cpu_count()} CPUs; {args.rounds} rounds per run, {args.lanes} lanes, seed {args.seed}"
        f"{f', runs with new seeds for {args.minutes:g} min' if deadline else ''}; faults {faults}, "
        f"central killed every {args.kill_central_every or 'never'} rounds\nwork folder {base}",
        flush=True,
    )
    runs: list[dict[str, Any]] = []
    seed = args.seed
    started = time.monotonic()
    while True:
        plan = ChaosPlan(
            rounds=args.rounds,
            lanes=args.lanes,
            seed=seed,
            round_seconds=args.round_seconds,
            kill_central_every=args.kill_central_every,
            heartbeat=args.heartbeat,
            faults=Faults(**vars(faults)),
            settle_seconds=args.settle_seconds,
        )
        run = await one_run(base / f"seed-{seed}", plan)
        runs.append(run)
        print_run(run)
        if run["problems"] or "failed" in run:
            args.keep = True  # the files are the evidence
        seed += 1
        if deadline is None or time.monotonic() >= deadline:
            break

    ok_runs = [r for r in runs if "failed" not in r]
    problems = sum(len(r["problems"]) for r in runs)
    failed = len(runs) - len(ok_runs)
    totals = {
        "runs": len(runs),
        "rounds": sum(r["rounds"] for r in ok_runs),
        "store_kills": sum(r["store_kills"] for r in ok_runs),
        "central_kills": sum(r["central_kills"] for r in ok_runs),
        "receipts": sum(r["receipts"] for r in ok_runs),
        "proxy": {
            k: sum(r["proxy"][k] for r in ok_runs) for k in ("links", "messages", "cuts", "duplicates", "reorders")
        },
        "problems": problems,
        "failed_runs": failed,
        "seconds": time.monotonic() - started,
    }
    t = totals
    print(
        f"\ntotal: {t['runs']} run(s), {t['rounds']} rounds, {t['store_kills']} store kills, "
        f"{t['central_kills']} central kills, {t['receipts']} receipts sold, proxy {t['proxy']}, "
        f"{t['seconds']:.0f} s\nproblems: {problems}{f', FAILED RUNS: {failed}' if failed else ''}"
    )
    report = new_report(
        "chaos",
        machine_info(implementation=False),
        config={
            "rounds": args.rounds,
            "lanes": args.lanes,
            "seed": args.seed,
            "minutes": args.minutes,
            "faults": vars(faults),
            "kill_central_every": args.kill_central_every,
            "heartbeat": args.heartbeat,
            "round_seconds": list(args.round_seconds),
            "settle_seconds": args.settle_seconds,
        },
        runs=runs,
        totals=totals,
    )
    write_report(args.out, report)
    if args.keep or args.dir:
        print(f"work folder kept: {base}")
    else:
        shutil.rmtree(base, ignore_errors=True)
    if failed:
        return 2
    return 1 if problems else 0


def probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a probability is between 0 and 1, not {text}")
    return value


def seconds_range(text: str) -> tuple[float, float]:
    try:
        low, high = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN,MAX seconds like 0.4,1.5, not {text!r}") from None
    if not 0 < low <= high:
        raise argparse.ArgumentTypeError("need 0 < MIN <= MAX")
    return low, high


def main(argv: list[str] | None = None) -> int:
    d = ChaosPlan()
    df = d.faults
    p = argparse.ArgumentParser(description="Chaos runs of a store and central through a faulty link, then checked.")
    p.add_argument("--rounds", type=int, default=30, help="store kills per run (default 30)")
    p.add_argument("--lanes", type=int, default=d.lanes, help=f"lanes selling at once (default {d.lanes})")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the first run")
    p.add_argument("--minutes", type=float, help="keep starting runs with new seeds until this much time has passed")
    p.add_argument("--cut", type=probability, default=df.cut, help=f"per frame: cut the link ({df.cut})")
    p.add_argument("--duplicate", type=probability, default=df.duplicate, help=f"per frame ({df.duplicate})")
    p.add_argument("--reorder", type=probability, default=df.reorder, help=f"per frame ({df.reorder})")
    p.add_argument("--delay", type=float, default=df.delay, help=f"per frame: up to this many seconds ({df.delay})")
    p.add_argument("--kill-central-every", type=int, default=d.kill_central_every, help="0: never kill central")
    p.add_argument("--heartbeat", type=float, default=d.heartbeat, help="store.toml [central] heartbeat")
    p.add_argument(
        "--round-seconds", type=seconds_range, default=d.round_seconds, help="MIN,MAX selling time per half round"
    )
    p.add_argument("--settle-seconds", type=float, default=d.settle_seconds, help="bound on the final drain")
    p.add_argument("--dir", type=Path, help="work here instead of a temporary folder (kept)")
    p.add_argument("--keep", action="store_true", help="keep the work folder even when all is well")
    add_out_option(p, "chaos")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.lanes < 1 or args.kill_central_every < 0 or args.delay < 0:
        p.error("--rounds and --lanes must be at least 1, --kill-central-every and --delay not negative")
    if args.minutes is not None and args.minutes <= 0:
        p.error("--minutes must be positive")
    return run_script("chaos", bench, args)


if __name__ == "__main__":
    sys.exit(main())
