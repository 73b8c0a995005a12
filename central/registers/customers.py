"""Customers registered for invoices: a store asks central before it puts a sale on one's invoice."""

from __future__ import annotations

import sqlite3


class CustomerError(ValueError):
    pass


def register(conn: sqlite3.Connection, customer: str, name: str) -> None:
    customer, name = customer.strip(), name.strip()
    if not customer or len(customer) > 64 or any(c.isspace() for c in customer):
        raise CustomerError("a customer number is 1 to 64 characters without spaces")
    if not name:
        raise CustomerError("a customer needs a name")
    conn.execute(
        "INSERT INTO customers (customer, name, active) VALUES (?,?,1) "
        "ON CONFLICT (customer) DO UPDATE SET name = excluded.name, active = 1",
        (customer, name),
    )


def name_of(conn: sqlite3.Connection, customer: str) -> str | None:
    row = conn.execute("SELECT name FROM customers WHERE customer = ? AND active = 1", (customer,)).fetchone()
    return row[0] if row else None


def listing(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    return [(c, n) for c, n in conn.execute("SELECT customer, name FROM customers WHERE active = 1 ORDER BY customer")]
