"""Business time (what is printed on receipts), kept apart from trio's clock (what times out).

Actors take a Clock so tests can pin receipts to a known instant while timeouts run on
`autojump_clock`.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class Clock(Protocol):
    def now_ms(self) -> int: ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class FixedClock:
    def __init__(self, now_ms: int) -> None:
        self.now = now_ms

    def now_ms(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


def store_zone(name: str) -> dt.tzinfo:
    """The store's time zone (store.toml `timezone`) for receipts, business days and reports; UTC for a
    zone this machine does not know (config loading refuses such a name, so only old data meets it)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC
