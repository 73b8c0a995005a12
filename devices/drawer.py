"""Cash drawer: opened by a pulse from the receipt printer's kick-out connector, watched through the same
connector's sensor pin, which the printer reports in its status (DLE EOT 1, bit 2).

The drawer has no connection of its own, so it never touches the port: kicks are control jobs in the
printer's queue (ahead of waiting receipts, and sent as a real-time pulse when the printer is out of paper),
and the sensor is read from the printer actor's status polls. The drawer's own actor only watches the time:
a drawer left open is a till anybody can take money from, so past `alert_after` seconds the health board
says "open-too-long" and a warning is logged; closing it clears the alert.
"""

from __future__ import annotations

import itertools
import logging
from typing import Protocol

import trio

from devices.escpos import PrinterStatus, drawer_kick, drawer_pulse_now
from runtime.health import HealthBoard

log = logging.getLogger(__name__)


class DrawerPort(Protocol):
    """What the drawer needs from the printer actor (ReceiptPrinter provides it)."""

    @property
    def status(self) -> PrinterStatus | None: ...

    @property
    def connected(self) -> bool: ...

    def submit_control(
        self, job_id: str, payload: bytes, *, when_offline: bytes | None = None, ttl: float = 30.0
    ) -> None: ...

    async def next_status(self) -> PrinterStatus: ...


class CashDrawer:
    """Health entry `name`: closed | open | open-too-long | unknown (the printer is not connected)."""

    def __init__(
        self,
        name: str,
        printer: DrawerPort,
        health: HealthBoard,
        *,
        pin: int = 0,  # 0: kick-out connector pin 2, 1: pin 5 (a second drawer)
        open_level_high: bool = True,  # drawers differ: which sensor level (pin 3) means open
        alert_after: float = 60.0,
        check_every: float = 1.0,
        kick_ttl: float = 10.0,  # a kick that could not be sent by then is dropped: nobody waits any more
        realtime_pulse: bool = True,  # DLE DC4 1 while the printer is offline; off for clones without it
    ) -> None:
        self.name = name
        self.pin = pin
        self.open_level_high = open_level_high
        self.alert_after = alert_after
        self.check_every = check_every
        self.kick_ttl = kick_ttl
        self.realtime_pulse = realtime_pulse
        self._printer = printer
        self._health = health
        self._kicks = itertools.count(1)
        self._open_since: float | None = None
        self._alerted = False
        self._is_open: bool | None = None

    def open(self, job_id: str | None = None) -> str:
        """Queue a kick (on cash tender). Pass the sale's id as `job_id` to make a retried command kick
        once; returns the job id used."""
        job_id = job_id or f"{self.name}-kick-{next(self._kicks)}"
        now = drawer_pulse_now(self.pin) if self.realtime_pulse else None
        self._printer.submit_control(job_id, drawer_kick(self.pin), when_offline=now, ttl=self.kick_ttl)
        return job_id

    @property
    def is_open(self) -> bool | None:
        """The sensor at the last check; None while the printer is unreachable."""
        return self._is_open

    @property
    def open_for(self) -> float:
        return 0.0 if self._open_since is None else trio.current_time() - self._open_since

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            self.check()
            with trio.move_on_after(self.check_every):
                await self._printer.next_status()

    def check(self) -> None:
        """Update from the printer's last status and the clock; public so a caller can force it."""
        status = self._printer.status if self._printer.connected else None
        if status is None:
            self._is_open = None
            self._health.set(self.name, "unknown", detail="printer not connected: sensor unknown")
            return  # open_since is kept: if it is still open when the printer is back, it counts from then
        now = trio.current_time()
        self._is_open = status.drawer_pin3_high == self.open_level_high
        if not self._is_open:
            if self._alerted:
                log.info("drawer %s: closed after %.0f s", self.name, now - (self._open_since or now))
            self._open_since, self._alerted = None, False
            self._health.set(self.name, "closed", detail="")
            return
        if self._open_since is None:
            self._open_since = now
        open_for = now - self._open_since
        if open_for < self.alert_after:
            self._health.set(self.name, "open", detail=f"open {open_for:.0f} s")
            return
        detail = f"open {open_for:.0f} s, longer than {self.alert_after:g} s"
        if not self._alerted:
            log.warning("drawer %s: %s", self.name, detail)
            self._alerted = True
        self._health.set(self.name, "open-too-long", detail=detail)
