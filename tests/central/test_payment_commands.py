"""`storepos central giftcard|rate|customer` on a real central database file."""

from __future__ import annotations

from pathlib import Path

import pytest

from central.registers import giftcards
from protocol.frames import GiftCardMove
from runtime.database import open_connection
from storepos.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_issue_reload_balance_and_overdrafts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "central.db")
    assert (
        run(capsys, "central", "giftcard", "issue", "GC-1", "100", "--db", db)[1]
        == "giftcard GC-1: balance SEK 100.00\n"
    )
    assert run(capsys, "central", "giftcard", "reload", "GC-1", "50.50", "--db", db)[0] == 0
    assert run(capsys, "central", "giftcard", "balance", "GC-1", "--db", db)[1] == "giftcard GC-1: balance SEK 150.50\n"
    code, _, err = run(capsys, "central", "giftcard", "issue", "GC-1", "100", "--db", db)
    assert code == 1 and "already exists" in err
    code, _, err = run(capsys, "central", "giftcard", "issue", "V-1", "1e2", "--kind", "voucher", "--db", db)
    assert code == 1 and "not an amount" in err
    assert run(capsys, "central", "giftcard", "balance", "NOPE", "--db", db)[0] == 1
    assert run(capsys, "central", "giftcard", "overdrafts", "--db", db)[1] == "no gift card overdrafts\n"
    conn = open_connection(db)
    try:
        taken = GiftCardMove(
            move="m1", kind="redeem", card="GC-1", amount=20000, currency="SEK", store="S9", sale_id="x", at=1,
            offline=True,
        )  # fmt: skip
        conn.execute("BEGIN")
        giftcards.move(conn, taken)
        conn.execute("COMMIT")
    finally:
        conn.close()
    out = run(capsys, "central", "giftcard", "overdrafts", "--db", db)[1]
    assert "card GC-1: store S9 took 200.00 offline in sale x, 49.50 more than the card held" in out


def test_rates_and_customers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "central.db")
    assert run(capsys, "central", "rate", "set", "EUR", "11.45", "--db", db)[0] == 0
    assert "EUR in SEK: 11.45" in run(capsys, "central", "rate", "list", "--db", db)[1]
    assert run(capsys, "central", "rate", "set", "EUR", "-1", "--db", db)[0] == 1
    assert run(capsys, "central", "customer", "add", "C-1", "Acme AB", "--db", db)[0] == 0
    assert run(capsys, "central", "customer", "list", "--db", db)[1] == "C-1  Acme AB\n"
    assert run(capsys, "central", "customer", "add", "C-2", "--db", db)[0] == 2
