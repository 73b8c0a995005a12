"""Chaos: selling continuously through a misbehaving link while both nodes are killed with SIGKILL.
A run that loses or duplicates a single event fails."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from devtools.chaos.harness import ChaosPlan, check, run_chaos
from devtools.chaos.proxy import Faults
from tests.kit import certificates

pytestmark = pytest.mark.e2e  # real storepos processes: left out of the fast loop


async def test_chaos_run_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    plan = ChaosPlan(rounds=5, lanes=3, seed=11)
    with trio.fail_after(240):
        result = await run_chaos(tmp_path, plan, certificates.chain())
    assert len(result.receipts) > 20, "too few sales to prove anything"
    assert result.store_kills == 5 and result.central_kills == 2
    assert result.proxy["duplicates"] and result.proxy["reorders"], result.proxy  # the faults really happened
    assert check(tmp_path, "CHAOS", result.receipts) == []


async def test_check_catches_a_lost_and_a_duplicated_event(tmp_path: Path) -> None:
    """The checker itself must be able to fail: break a consistent pair of files both ways."""
    import sqlite3

    plan = ChaosPlan(rounds=1, lanes=1, seed=3, kill_central_every=0, faults=Faults())
    with trio.fail_after(120):
        result = await run_chaos(tmp_path, plan, certificates.chain())
    assert check(tmp_path, "CHAOS", result.receipts) == []
    db = sqlite3.connect(tmp_path / "central.db")
    lane, no, body = db.execute("SELECT lane, receipt_no, body FROM sales ORDER BY receipt_no DESC LIMIT 1").fetchone()
    db.execute("DELETE FROM sales WHERE lane = ? AND receipt_no = ?", (lane, no))
    db.commit()
    problems = check(tmp_path, "CHAOS", result.receipts)
    assert any("never reached central" in p for p in problems), problems
    db.execute(
        "INSERT INTO sales (store, lane, receipt_no, kind, sale_id, currency, total, closed_at, seq, body)"
        " VALUES ('CHAOS', ?, ?, 'sale', 'dup', 'SEK', 0, 0, 0, ?)",
        (lane, no, body),
    )
    db.execute("INSERT INTO stock_moves VALUES ('CHAOS', 0, '1001', 'sale', -1, 'dup', 0)")
    db.execute("UPDATE stock SET qty = qty - 1 WHERE location = 'CHAOS' AND item = '1001'")
    db.commit()
    db.close()
    problems = check(tmp_path, "CHAOS", result.receipts)
    assert any("stock differs" in p for p in problems), problems
