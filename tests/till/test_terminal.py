"""The terminal till: line parsing, and a scripted session against a real store node."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from protocol.frames import (
    CancelSale,
    CardTender,
    CashTender,
    EndOfDay,
    GiftCardQuery,
    GiftCardTender,
    InvoiceTender,
    Login,
    Logout,
    RefundOf,
    ResolvePayment,
    Scan,
    SetAside,
    StartSale,
    StatusRequest,
    TerminalReport,
    TerminalTotal,
    Total,
    VoidLine,
)
from storenode.app import StoreNode
from till.terminal import InputError, parse, run_till, show


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("7310000000010", Scan(code="7310000000010")),
        ("  7310000000010\r\n", Scan(code="7310000000010")),  # a keyboard-wedge scanner's CRLF
        ("3*7310000000010", Scan(code="7310000000010", qty=3)),
        ("scan 123 4", Scan(code="123", qty=4)),
        ("login 1 1234", Login(operator="1", pin="1234")),
        ("LOGOUT", Logout()),
        ("start", StartSale()),
        ("void 2", VoidLine(line=2)),
        ("total", Total()),
        ("cash", CashTender(amount=19100)),
        ("cash 200", CashTender(amount=20000)),
        ("cash 12,50", CashTender(amount=1250)),
        ("cancel", CancelSale()),
        ("status", StatusRequest()),
        ("help", "help"),
        ("quit", "quit"),
        ("# a comment", None),
        ("   ", None),
    ],
)
def test_parse(line: str, expected: object) -> None:
    assert parse(line, "SEK", 19100) == expected


@pytest.mark.parametrize("line", ["bogus", "void x", "cash 1.234", "login 1", "3*", "scan", "cash 1e2"])
def test_parse_refuses_with_a_reason(line: str) -> None:
    with pytest.raises(InputError, match=r"cannot read|unknown command"):
        parse(line, "SEK", 0)


async def test_scripted_session(store: StoreNode, tmp_path: Path) -> None:
    script = tmp_path / "s.txt"
    script.write_text("login 1 1234\n2*7310000000034\n7310000000010\nvoid 2\ntotal\ncash\nquit\nnever 1\n")
    out: list[str] = []
    with trio.fail_after(20):
        rc = await run_till(store.url, 1, "T1", script, read_stdin=False, out=out.append)
    text = "\n".join(out)
    assert rc == 0
    assert "[lane 1 | tender | operator 1 | online] to pay SEK 140.00" in text
    assert "Cash rounding                         0.10" in text  # 139.90 is paid as 140.00 in cash
    assert "-- receipt 1 done, change 0.00" in text
    assert "never" not in text  # quit ended the script


async def test_unreachable_store_gives_up_with_a_message(tmp_path: Path) -> None:
    out: list[str] = []
    with trio.fail_after(30):
        rc = await run_till("ws://127.0.0.1:9", 1, "T1", None, read_stdin=False, out=out.append)
    assert rc == 1 and "cannot reach the store" in out[-1]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("card", CardTender()),
        ("card 50", CardTender(amount=5000)),
        ("cash 50 part", CashTender(amount=5000, part=True)),
        ("cash 10 eur", CashTender(amount=1000, currency="EUR")),
        ("cash 10 EUR part", CashTender(amount=1000, currency="EUR", part=True)),
        ("giftcard GC-1", GiftCardTender(card="GC-1")),
        ("giftcard GC-1 25", GiftCardTender(card="GC-1", amount=2500)),
        ("balance GC-1", GiftCardQuery(card="GC-1")),
        ("invoice C-77", InvoiceTender(customer="C-77")),
        ("resolve", ResolvePayment()),
        ("refund S001-1-42", RefundOf(receipt="S001-1-42")),
        ("setaside 2 4321 terminal replaced", SetAside(operator="2", pin="4321", reason="terminal replaced")),
        ("endofday", EndOfDay()),
    ],
)
def test_payment_commands(line: str, expected: object) -> None:
    assert parse(line, "SEK", 19100) == expected


@pytest.mark.parametrize(
    "line", ["cash 10 EUR USD", "cash 10 part part", "card x", "giftcard", "refund", "setaside 2 4321", "endofday 1"]
)
def test_bad_payment_commands(line: str) -> None:
    with pytest.raises(InputError):
        parse(line, "SEK", 0)


def test_end_of_day_is_shown_with_its_card_groups() -> None:
    report = TerminalReport(
        lane=1, terminal="terminal-1", ok=True, currency="SEK", total=8585, count=2,
        totals=[TerminalTotal(card="Visa", count=2, amount=8585)], text="Kassenschnitt",
    )  # fmt: skip
    assert show(report) == "end of day at terminal-1: done, 2 payments, SEK 85.85\n  Visa: 2, 85.85\nKassenschnitt"
