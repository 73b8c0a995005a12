"""Wrong PINs per operator number in the store database (storenode.operators): counted across lanes and
restarts, and forgotten a day after the last one unless a lock is running, so numbers tried one after
another cannot grow the table without end."""

from __future__ import annotations

from pathlib import Path

from runtime.database import migrate, open_connection
from storenode import operators
from storenode.schema import MIGRATIONS

NOW = 1_795_000_000_000
DAY = 86_400_000
LIMIT, LOCK_MS = 5, 15 * 60_000


def test_numbers_tried_once_are_forgotten_after_a_day_but_a_running_lock_and_a_recent_count_stay(
    tmp_path: Path,
) -> None:
    conn = open_connection(tmp_path / "store.db")
    migrate(conn, MIGRATIONS)
    for n in range(500):  # a guesser trying number after number, once each
        operators.failed(conn, f"G{n}", NOW + n, LIMIT, LOCK_MS)
    for k in range(LIMIT):  # a real operator locked out a little later
        locked = operators.failed(conn, "7", NOW + DAY - 1000 + k, LIMIT, LOCK_MS)
    assert locked == NOW + DAY - 1000 + LIMIT - 1 + LOCK_MS
    operators.failed(conn, "8", NOW + DAY, LIMIT, LOCK_MS)  # one wrong PIN, recent
    assert conn.execute("SELECT count(*) FROM operator_lockouts").fetchone()[0] == 502

    later = NOW + DAY + 10_000  # a day after the guesser's tries: the next wrong PIN anywhere prunes them
    operators.failed(conn, "9", later, LIMIT, LOCK_MS)
    left = dict(conn.execute("SELECT number, failures FROM operator_lockouts").fetchall())
    assert left == {"7": LIMIT, "8": 1, "9": 1}
    assert operators.locked_until(conn, "7") > later  # the lock runs on
    assert operators.failed(conn, "8", later, LIMIT, LOCK_MS) == 0 and operators.failures(conn, "8") == 2
