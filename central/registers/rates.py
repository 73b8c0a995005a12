"""Exchange rates for foreign cash: central publishes them, stores keep the last ones they heard."""

from __future__ import annotations

import sqlite3

from protocol.frames import ExchangeRate


def publish(conn: sqlite3.Connection, rate: ExchangeRate) -> None:
    conn.execute(
        "INSERT INTO exchange_rates (base, currency, rate, at) VALUES (?,?,?,?) "
        "ON CONFLICT (base, currency) DO UPDATE SET rate = excluded.rate, at = excluded.at",
        (rate.base, rate.currency, rate.rate, rate.at),
    )


def published(conn: sqlite3.Connection, base: str | None = None) -> list[ExchangeRate]:
    if base is None:
        rows = conn.execute("SELECT base, currency, rate, at FROM exchange_rates ORDER BY base, currency")
    else:
        rows = conn.execute(
            "SELECT base, currency, rate, at FROM exchange_rates WHERE base = ? ORDER BY currency", (base,)
        )
    return [ExchangeRate(base=b, currency=c, rate=r, at=a) for b, c, r, a in rows]
