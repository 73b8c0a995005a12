"""Who may log in at this store, how many wrong PINs each operator has had, and the approvals given
outside a sale: the store's side of the operator register (issue 13). SQL only; the lanes decide.

Where operators come from: central's register, replicated with the catalogue (table `operators`, a PIN
hash only for operators who work here), and, while central holds no operator for the chain (a store
without central, or a chain that has not imported its operators yet), the catalogue file's list
(`file_operators`). Once central has sent any operator, its register alone decides: the file's list is
never mixed in, so an operator removed at central cannot log in through the file.

Lockout: wrong PINs count per operator number in the database (`operator_lockouts`), so the count is the
same on every lane and survives restarts, and a new connection gets no new guesses. Unknown numbers count
too (and are checked against the dummy hash, protocol.pins), so neither timing nor lockout tells which
numbers exist. Business time (the store's clock) measures the lockout: it must outlast a restart.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

from protocol import pins
from runtime.health import HealthBoard

HEALTH = "operators"  # the store alarm's name on the health board (storepos store status shows it)


@dataclass(frozen=True)
class Operator:
    number: str
    name: str
    role: str
    pin_hash: str

    @property
    def approves(self) -> bool:
        return self.role in pins.APPROVERS


def find(conn: sqlite3.Connection, number: str, store: str) -> Operator | None:
    """The operator with this number who works at this store, or None (then check the dummy hash)."""
    if conn.execute("SELECT 1 FROM operators LIMIT 1").fetchone() is not None:
        row = conn.execute("SELECT name, role, stores, pin_hash FROM operators WHERE number = ?", (number,)).fetchone()
        if row is None or not row[3] or not pins.works_at(row[2], store):
            return None
        return Operator(number, row[0], row[1], row[3])
    row = conn.execute("SELECT name, role, pin_hash FROM file_operators WHERE number = ?", (number,)).fetchone()
    return None if row is None else Operator(number, row[0], row[1], row[2])


def locked_until(conn: sqlite3.Connection, number: str) -> int:
    """Epoch ms the operator is locked until (0: never locked, or a lock that has run out is also < now)."""
    row = conn.execute("SELECT locked_until FROM operator_lockouts WHERE number = ?", (number,)).fetchone()
    return int(row[0]) if row else 0


def failures(conn: sqlite3.Connection, number: str) -> int:
    row = conn.execute("SELECT failures FROM operator_lockouts WHERE number = ?", (number,)).fetchone()
    return int(row[0]) if row else 0


FORGET_MS = 86_400_000  # wrong PINs of a number that has had none for a day are forgotten (not an active lock)


def failed(conn: sqlite3.Connection, number: str, now: int, limit: int, lockout_ms: int) -> int:
    """Count a wrong PIN; returns the lock's end when this one locks the operator, else 0. A lock that
    has run out starts the count again.

    Unknown numbers are counted too (see the module docstring), so someone trying number after number
    would grow the table without end: rows with no wrong PIN for FORGET_MS and no lock running are
    deleted here, by index. That gives a guesser at most `limit - 1` more tries per number a day."""
    conn.execute(
        "DELETE FROM operator_lockouts WHERE last_at < ? AND locked_until < ?", (now - max(FORGET_MS, lockout_ms), now)
    )
    row = conn.execute("SELECT failures, locked_until FROM operator_lockouts WHERE number = ?", (number,)).fetchone()
    count = 1 if row is None or row[1] else row[0] + 1
    until = now + lockout_ms if count >= limit else 0
    conn.execute(
        "INSERT INTO operator_lockouts (number, failures, locked_until, last_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (number) DO UPDATE SET failures = excluded.failures, locked_until = excluded.locked_until,"
        " last_at = excluded.last_at",
        (number, count, until, now),
    )
    return until


def succeeded(conn: sqlite3.Connection, number: str) -> None:
    conn.execute("DELETE FROM operator_lockouts WHERE number = ?", (number,))


def locked(conn: sqlite3.Connection, now: int) -> list[tuple[str, int]]:
    """Operators locked now, with the end of each lock, by number."""
    return conn.execute(
        "SELECT number, locked_until FROM operator_lockouts WHERE locked_until > ? ORDER BY number", (now,)
    ).fetchall()


def record_approval(
    conn: sqlite3.Connection, at: int, lane: int, operator: str, approver: str, action: str, detail: str
) -> None:
    """An approval given outside a sale's journal record (a stock move, the terminal's end of day)."""
    conn.execute(
        "INSERT INTO approvals (at, lane, operator, approver, action, detail) VALUES (?, ?, ?, ?, ?, ?)",
        (at, lane, operator, approver, action, detail),
    )


def approvals(conn: sqlite3.Connection) -> list[tuple[int, int, str, str, str, str]]:
    return conn.execute("SELECT at, lane, operator, approver, action, detail FROM approvals ORDER BY rowid").fetchall()


def clock_text(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%H:%M:%S UTC")


def report(health: HealthBoard, locks: list[tuple[str, int]]) -> None:
    """The store alarm: which operators are locked and until when ('ok' when none is)."""
    if not locks:
        health.set(HEALTH, "ok", detail="no operator locked out")
        return
    detail = ", ".join(f"operator {number} locked until {clock_text(until)}" for number, until in locks)
    health.set(HEALTH, "alarm", detail=f"wrong PINs: {detail}")
