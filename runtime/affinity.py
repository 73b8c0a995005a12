"""Keeping a node's threads on one CPU core.

A node is one Python process, and the GIL lets only one of its threads run Python at a time, so a
second core buys it little. Spread over two cores, though, every hand-off between the event loop and
the database thread has to wake the other core: on a VM that is an inter-processor interrupt and a
virtual CPU leaving its idle halt, about 35 us each way on the benchmark machine, a third of a scan's
time in the store. On one core the same hand-off is a plain context switch. Measured with
`bench/scan_latency.py` on 2 cores: one lane's scan p50 0.74 -> 0.56 ms, 100 lanes at 2,000 scans/s
p99 17-26 -> 11-16 ms, 100 lanes back to back 3,374 -> 3,632 scans/s. The other core is left to the
operating system and to other processes.
"""

from __future__ import annotations

import contextlib
import os


class AffinityError(Exception):
    """The node cannot be kept on the CPU it was configured for."""


def available_cpus() -> set[int]:
    """The CPUs this process may run on (every one the machine has on a platform without affinity)."""
    if hasattr(os, "sched_getaffinity"):
        return os.sched_getaffinity(0)
    return set(range(os.cpu_count() or 1))


def pin_process(cpu: int) -> None:
    """Every thread of this process, and every thread it starts later (they inherit it), on `cpu` only.

    Linux applies affinity per thread, so each thread running now is pinned by its id, not only the
    caller; call this early, before the node starts its own threads, to leave nothing to chance.
    """
    if not hasattr(os, "sched_setaffinity"):
        raise AffinityError("keeping a node on one CPU needs Linux (sched_setaffinity); remove `cpu`")
    allowed = available_cpus()
    if cpu not in allowed:
        listed = ", ".join(map(str, sorted(allowed)))
        raise AffinityError(f"cpu {cpu} is not available to this process (available: {listed})")
    for tid in _threads():
        with contextlib.suppress(ProcessLookupError):  # the thread ended meanwhile
            os.sched_setaffinity(tid, {cpu})


def _threads() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc/self/task")]
    except OSError:  # no /proc: the calling thread (0) is all that can be named
        return [0]
