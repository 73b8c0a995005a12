"""What a benchmark run measures and writes down.

- CPU over a measured window (`Window`): seconds of each process of the benchmark (/proc/<pid>/stat)
  and the whole machine's split (/proc/stat: busy, I/O wait, steal by the hypervisor, idle), and from
  them the load of processes outside the benchmark; `disturbed` and `warn_if_disturbed` say when
  others loaded the machine so much that the figures do not count.
- Latency percentiles and summaries (`latency_stats`, `median`), `fmt` for a table's cells.
- The JSON result: `machine_info`, `new_report`, `write_report`, and the `--out` option that says where.
- py-spy profiles of a node: the command line, the hot spots in its output, and their printout.

Linux only where it reads /proc; elsewhere the readings are None or empty and the figures that need
them are left out. Imported as `bench.measurements`: how the scripts make that work is in
bench/processes.py's docstring.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import re
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import trio

RESULTS = Path(__file__).resolve().parent / "results"
OTHER_LOAD_WARNING = 25.0  # % of one core used by processes outside the benchmark: the figures are disturbed
STEAL_WARNING = 10.0  # % of all cores the hypervisor took (a noisy neighbour): disturbed too, where counted
SHORTEST_JUDGED_S = 1.0  # /proc/stat counts in 10 ms ticks: a shorter window is too coarse to judge


# ---------------------------------------------------------------------------------------------
# /proc readings.
# ---------------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process, all its threads (Linux /proc); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak resident set since start) of a process, in MiB."""
    out: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return out


def load_average() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        return []


def machine_ticks() -> list[int]:
    """The first line of /proc/stat: user nice system idle iowait irq softirq steal ... (Linux only)."""
    try:
        with open("/proc/stat") as f:
            return [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return []


def other_load_pct(machine: Mapping[str, float], ours_pct: Iterable[float | None]) -> float:
    """What processes outside the benchmark used, in % of one core: the machine's busy share over all
    its cores less what the benchmark's own processes used (`ours_pct`, each in % of one core)."""
    ours = sum(v for v in ours_pct if v is not None)
    return max(0.0, machine["busy_pct"] * (os.cpu_count() or 1) - ours)


class Window:
    """CPU seconds of some processes (name -> pid) and of the whole machine between `begin` and `end`."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.start: dict[str, float | None] = {}
        self.stop: dict[str, float | None] = {}
        self.machine_start: list[int] = []
        self.machine_stop: list[int] = []
        self.t0 = self.t1 = 0.0

    def begin(self) -> None:
        self.t0 = time.monotonic()
        self.start = {k: cpu_seconds(p) for k, p in self.pids.items()}
        self.machine_start = machine_ticks()

    def end(self) -> None:
        self.t1 = time.monotonic()
        self.stop = {k: cpu_seconds(p) for k, p in self.pids.items()}
        self.machine_stop = machine_ticks()

    async def measure(self, seconds: float) -> None:
        """A window of `seconds` from now."""
        self.begin()
        await trio.sleep(seconds)
        self.end()

    @property
    def seconds(self) -> float:
        return self.t1 - self.t0

    def cpu(self) -> dict[str, float | None]:
        """CPU seconds of each process over the window (None where /proc could not tell)."""
        out: dict[str, float | None] = {}
        for k in self.pids:
            a, b = self.start.get(k), self.stop.get(k)
            out[k] = None if a is None or b is None else b - a
        return out

    def machine(self, *, irq: bool = False) -> dict[str, float] | None:
        """The whole machine over the window, in % of all its cores: busy, (with `irq`: interrupts,
        mostly our own loopback traffic), waiting on I/O, stolen by the hypervisor (a noisy neighbour
        shows up as steal and makes every figure slower), idle. None without /proc/stat."""
        if not self.machine_start or not self.machine_stop:
            return None
        d = [b - a for a, b in zip(self.machine_start, self.machine_stop, strict=False)]
        total = sum(d[:8]) or 1
        user, nice, system, idle, iowait, irqs, softirqs, steal = d[:8]
        out = {"busy_pct": 100 * (user + nice + system) / total}  # what processes used
        if irq:
            out["irq_pct"] = 100 * (irqs + softirqs) / total
        out["iowait_pct"] = 100 * iowait / total
        out["steal_pct"] = 100 * steal / total
        out["idle_pct"] = 100 * idle / total
        return out

    def record(self, client_cpu_s: float | None = None) -> dict[str, Any]:
        """The window as a result records it: seconds, each process's CPU seconds and % of one core
        (`client_cpu_s`: CPU of client processes measured apart, as "client"), and the machine's split
        with the load of others."""
        seconds = self.seconds
        cpu = self.cpu()
        if client_cpu_s is not None:
            cpu["client"] = client_cpu_s
        pct = {k: None if v is None else 100 * v / seconds for k, v in cpu.items()} if seconds > 0 else {}
        out: dict[str, Any] = {"seconds": seconds, "cpu_s": cpu, "cpu_pct": pct}
        machine = self.machine()
        if machine is not None:
            out["machine"] = machine
            out["other_load_pct"] = other_load_pct(machine, pct.values())
        return out


def disturbed(window: Mapping[str, Any], *, steal: bool = False) -> bool:
    """Whether others loaded the machine during a measured window: processes outside the benchmark used
    more than OTHER_LOAD_WARNING % of a core (`other_load_pct`) or, where `steal` counts, the hypervisor
    took more than STEAL_WARNING % of the machine (`machine.steal_pct`). `window` is a `Window.record()`,
    or any record with `other_load_pct`; one that gives its `seconds` is judged only from
    SHORTEST_JUDGED_S on."""
    if window.get("seconds", SHORTEST_JUDGED_S) < SHORTEST_JUDGED_S:
        return False
    stolen = steal and window.get("machine", {}).get("steal_pct", 0) > STEAL_WARNING
    return window.get("other_load_pct", 0) > OTHER_LOAD_WARNING or stolen


def warn_if_disturbed(what: str, window: Mapping[str, Any], *, steal: bool = False) -> None:
    """Say so, right away, when `disturbed(window, steal=steal)`."""
    if disturbed(window, steal=steal):
        hypervisor = f" and the hypervisor took {window.get('machine', {}).get('steal_pct', 0):.0f}% of the machine"
        print(
            f"!!! {what}: other processes used {window.get('other_load_pct', 0):.0f}% of a core"
            f"{hypervisor if steal else ''} meanwhile; these figures are disturbed",
            flush=True,
        )


def print_disturbed(names: Sequence[str]) -> None:
    """The run's closing word on its disturbed windows, if any."""
    if names:
        print(f"\n!!! other processes loaded the machine during {', '.join(names)}: rerun on a quiet machine")


# ---------------------------------------------------------------------------------------------
# Percentiles and summaries.
# ---------------------------------------------------------------------------------------------


def nearest_rank(ordered: Sequence[float], p: float) -> float:
    """The nearest-rank `p`th percentile of sorted, non-empty values."""
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def latency_stats(
    samples_ns: Sequence[int],
    *,
    window_s: float | None = None,
    back_to_back: bool = False,
    percentiles: Sequence[float] = (50, 90, 99),
    minimum: bool = True,
) -> dict[str, float]:
    """Timings in nanoseconds summed up in milliseconds: count, min_ms (unless not `minimum`), mean_ms,
    nearest-rank percentiles (p50_ms, ..., 99.9 as p99_9_ms), max_ms. A rate `per_s` where asked:
    over a window of `window_s` seconds (given even with no samples), or `back_to_back`: one at a time,
    1 / mean."""
    out: dict[str, float] = {"count": len(samples_ns)}
    if window_s is not None:
        out["per_s"] = len(samples_ns) / window_s if window_s > 0 else 0.0
    if not samples_ns:
        return out
    s = sorted(samples_ns)
    total = sum(s)
    if minimum:
        out["min_ms"] = s[0] / 1e6
    out["mean_ms"] = total / len(s) / 1e6
    for p in percentiles:
        out[f"p{p:g}_ms".replace(".", "_")] = nearest_rank(s, p) / 1e6
    out["max_ms"] = s[-1] / 1e6
    if back_to_back:
        out["per_s"] = len(s) / (total / 1e9) if total else 0.0
    return out


def median(values: Sequence[float]) -> float:
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def fmt(value: float | None, spec: str = ".2f") -> str:
    """A table cell: `value` formatted, or "-" when there is none."""
    return "-" if value is None else format(value, spec)


# ---------------------------------------------------------------------------------------------
# The JSON result.
# ---------------------------------------------------------------------------------------------


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def machine_info(*packages: str, implementation: bool = True) -> dict[str, Any]:
    """The result's `machine`: CPUs, Python (and its implementation), platform, and the versions of
    `packages` if any are named."""
    info: dict[str, Any] = {"cpu_count": os.cpu_count(), "python": platform.python_version()}
    if implementation:
        info["implementation"] = platform.python_implementation()
    info["platform"] = platform.platform()
    if packages:
        info["versions"] = {p: version(p) for p in packages}
    return info


def new_report(benchmark: str, machine: dict[str, Any], **sections: Any) -> dict[str, Any]:
    """A result: which benchmark, when (UTC), on what machine, then its own sections in order."""
    return {
        "benchmark": benchmark,
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine,
        **sections,
    }


def write_report(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {path}")


def add_out_option(parser: argparse.ArgumentParser, benchmark: str) -> None:
    """`--out F.json`, made absolute, by default bench/results/BENCHMARK.json."""
    parser.add_argument(
        "--out",
        type=lambda text: Path(text).resolve(),
        default=RESULTS / f"{benchmark}.json",
        help=f"JSON results (default bench/results/{benchmark}.json)",
    )


# ---------------------------------------------------------------------------------------------
# py-spy profiles.
# ---------------------------------------------------------------------------------------------

PROJECT_FRAME = re.compile(r"\((storenode|runtime|protocol|devices|central|till)/")
SUPERVISOR_FRAME = re.compile(r"^(Supervisor\.|serve \(runtime/mailbox)")


def py_spy_record(pid: int, out: Path, seconds: int, *, threads: bool = False) -> list[str]:
    """The py-spy command sampling `pid` for `seconds` (or until SIGINT) into `out`, as collapsed stacks."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    argv = [exe, "record", "--pid", str(pid), "--rate", "200", "--duration", str(seconds)]
    if threads:
        argv.append("--threads")
    return [*argv, "--format", "raw", "--function", "--nonblocking", "--output", str(out)]


def hot_spots(raw: Path, top: int = 15, *, threads: bool = False) -> dict[str, Any]:
    """Sample shares from py-spy's collapsed stacks: per function where the sample was taken (self),
    per library or project file where it was taken, and per project function on the stack (inclusive,
    leaving out the supervisor and mailbox loops every actor runs under); with `threads` (recorded with
    --threads), per thread too."""
    own: Counter[str] = Counter()
    files: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    by_thread: Counter[str] = Counter()
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
        frames = [re.sub(r"\(/.*?/(site-packages|lib/python3\.\d+)/", "(", f) for f in stack.split(";")]
        total += n
        by_thread[frames[0] if frames[0].startswith("thread") else "(thread?)"] += n
        own[frames[-1]] += n
        where = re.search(r"\((.*?)(:\d+)?\)$", frames[-1])
        files[where.group(1) if where else frames[-1]] += n
        for frame in set(frames):
            if PROJECT_FRAME.search(frame) and not SUPERVISOR_FRAME.search(frame):
                inclusive[frame] += n
    pct = 100 / total if total else 0.0
    out: dict[str, Any] = {"raw": str(raw), "samples": total}
    if threads:
        out["threads"] = [(f, round(c * pct, 1)) for f, c in by_thread.most_common(top)]
    out["self"] = [(f, round(c * pct, 1)) for f, c in own.most_common(top)]
    out["self_by_file"] = [(f, round(c * pct, 1)) for f, c in files.most_common(top)]
    out["inclusive_project"] = [(f, round(c * pct, 1)) for f, c in inclusive.most_common(top)]
    return out


def print_profile(profile: dict[str, Any], title: str, *, most: int = 15) -> None:
    """A `hot_spots` profile (or the error that left it empty), `most` lines per section."""
    print(f"\n{title} (py-spy, all threads, % of samples):")
    if "error" in profile:
        print(f"  {profile['error']}")
        return
    print(f"  {profile['samples']} samples; raw collapsed stacks in {profile['raw']}")
    for heading, key in (
        ("by thread", "threads"),
        ("self time", "self"),
        ("self time by file", "self_by_file"),
        ("inclusive, storepos code", "inclusive_project"),
    ):
        if key in profile:
            print(f"  {heading}:")
            for frame, pct in profile[key][:most]:
                print(f"    {pct:5.1f}%  {frame}")
