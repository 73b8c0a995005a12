"""The devices supervisor as the device tests run it: one-for-one, quick retries, never giving up, so a
test waits on the health board's restart count rather than on the clock."""

from __future__ import annotations

from runtime.health import HealthBoard
from runtime.supervision import Backoff, ChildSpec, Intensity, Supervisor


def devices_supervisor(board: HealthBoard, *children: ChildSpec) -> Supervisor:
    return Supervisor(
        "devices",
        list(children),
        backoff=Backoff(initial=0.02, cap=0.1),
        intensity=Intensity(max_restarts=10_000, within=1.0),
        escalate=False,
        health=board,
    )
