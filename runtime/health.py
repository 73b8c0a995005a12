"""Where every actor's health is published, so the manager console and `storepos store status` can read it.

Written by supervisors and by actors that know more about themselves (a device that is up but out of
paper); read by anyone. It is plain data on the one Trio thread, so no locking is needed.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import trio


class Health(msgspec.Struct):
    name: str
    state: str = "starting"  # starting | running | backoff | stopped | failed | a device's own word
    restarts: int = 0
    last_error: str = ""
    since: float = 0.0  # trio time of the last state change
    detail: str = ""


class HealthBoard:
    def __init__(self) -> None:
        self._entries: dict[str, Health] = {}
        self.listeners: list[Callable[[Health], None]] = []  # told of every change of state
        self._changed = trio.Event()  # set on every update, then replaced: what wait_until sleeps on

    def get(self, name: str) -> Health:
        entry = self._entries.get(name)
        if entry is None:
            entry = self._entries[name] = Health(name=name)
        return entry

    def set(self, name: str, state: str, *, error: str | None = None, detail: str | None = None) -> Health:
        entry = self.get(name)
        changed = entry.state != state
        if changed:
            entry.since = trio.current_time()
        entry.state = state
        if error is not None:
            entry.last_error = error
        if detail is not None:
            entry.detail = detail
        if changed:
            for listener in self.listeners:
                listener(entry)
        self._changed.set()
        self._changed = trio.Event()
        return entry

    async def wait_until(self, name: str, ok: Callable[[Health], bool]) -> Health:
        """Until `name`'s entry satisfies `ok` (bound it with trio.fail_after): for consoles and tests."""
        while not ok(self.get(name)):
            await self._changed.wait()
        return self.get(name)

    def snapshot(self) -> list[Health]:
        return [msgspec.structs.replace(h) for h in sorted(self._entries.values(), key=lambda h: h.name)]
