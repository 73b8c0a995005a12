"""The exchange rates central publishes, as this store last heard them: foreign cash is taken offline too."""

from __future__ import annotations

import sqlite3

from protocol.frames import ExchangeRate


def save(conn: sqlite3.Connection, rates: list[ExchangeRate]) -> None:
    conn.executemany(
        "INSERT INTO exchange_rates (base, currency, rate, at) VALUES (?,?,?,?) "
        "ON CONFLICT (base, currency) DO UPDATE SET rate = excluded.rate, at = excluded.at",
        [(r.base, r.currency, r.rate, r.at) for r in rates],
    )


def get(conn: sqlite3.Connection, base: str, currency: str) -> ExchangeRate | None:
    row = conn.execute(
        "SELECT rate, at FROM exchange_rates WHERE base = ? AND currency = ?", (base, currency)
    ).fetchone()
    return ExchangeRate(base=base, currency=currency, rate=row[0], at=row[1]) if row else None
