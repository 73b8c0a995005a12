"""The terminal till's cash management commands (issue 14, cash): what a cashier types, the frames it
becomes, and how the lane's answer reads; and the bounds every cash frame has at decoding."""

from __future__ import annotations

import pytest

from protocol.codec import FrameError, TillCodec
from protocol.frames import (
    CASH_LINES,
    CashAmount,
    CashCount,
    CashDeposit,
    CashDone,
    CashDrop,
    Counted,
    CountLine,
    FloatMove,
    NoSale,
    Payout,
    TenderLine,
)
from till.terminal import InputError, parse, show


def test_cash_commands_parse() -> None:
    assert parse("nosale 1 1234 customer wants change", "SEK", 0) == NoSale(
        operator="1", pin="1234", reason="customer wants change"
    )
    assert parse("payout 12.50 postage stamps for letters approve 2 4321", "SEK", 0) == Payout(
        amount=1250, account="postage", reason="stamps for letters", approver="2", approver_pin="4321"
    )
    assert parse("float in 1000 50 EUR", "SEK", 0) == FloatMove(
        amounts=[CashAmount(amount=100000), CashAmount(amount=5000, currency="EUR")]
    )
    assert parse("float out 1000", "SEK", 0) == FloatMove(amounts=[CashAmount(amount=100000)], out=True)
    assert parse("drop 5000", "SEK", 0) == CashDrop(amounts=[CashAmount(amount=500000)])
    assert parse("deposit 20 eur 100", "SEK", 0) == CashDeposit(
        amounts=[CashAmount(amount=2000, currency="EUR"), CashAmount(amount=10000)]
    )
    assert parse("cashcount 1499.50 60 EUR card 69.95", "SEK", 0) == CashCount(
        counts=[Counted(counted=149950), Counted(counted=6000, currency="EUR"), Counted(counted=6995, tender="card")]
    )


@pytest.mark.parametrize(
    "line",
    ["nosale 1 1234", "payout 12.50 postage", "float sideways 100", "float in", "drop", "drop EUR 100", "cashcount"],
)
def test_cash_commands_written_wrong_are_told_not_sent(line: str) -> None:
    with pytest.raises(InputError):
        parse(line, "SEK", 0)


def test_a_count_reads_with_its_differences() -> None:
    done = CashDone(
        lane=1,
        code="count",
        receipt_no=9,
        event="e9",
        currency="SEK",
        counts=[
            CountLine(tender="cash", currency="SEK", expected=150000, counted=149950),
            CountLine(tender="card", currency="SEK", expected=6995, uncounted=True),
        ],
        message="cash counted: difference SEK -0.50",
        text="CASH COUNT\n",
    )
    out = show(done)
    assert "cash      expected SEK 1500.00, counted 1499.50, difference -0.50" in out
    assert "card      expected SEK 69.95 (not counted)" in out
    assert out.startswith("CASH COUNT") and "count recorded as event 9 on lane 1" in out
    deposit = CashDone(
        lane=1,
        code="deposit",
        receipt_no=3,
        event="e3",
        currency="SEK",
        amounts=[TenderLine(kind="cash", amount=2000, currency="EUR", value=23000)],
        message="deposited: EUR 20.00",
    )
    assert show(deposit) == "-- deposit recorded as event 3 on lane 1: deposited: EUR 20.00"


@pytest.mark.parametrize(
    "frame",
    [
        NoSale(operator="1", pin="1234", reason="x" * 65),
        Payout(amount=10**12 + 1, account="postage", reason="stamps"),
        Payout(amount=100, account="a" * 65, reason="stamps"),
        CashDrop(amounts=[CashAmount(amount=1)] * (CASH_LINES + 1)),
        CashDeposit(amounts=[CashAmount(amount=-(10**12) - 1)]),
        CashCount(counts=[Counted(counted=1, currency="E" * 65)]),
        CashCount(counts=[Counted(counted=1)] * (CASH_LINES + 1)),
    ],
    ids=lambda f: type(f).__name__,
)
def test_cash_frames_beyond_their_bounds_do_not_decode(frame: object) -> None:
    data = TillCodec("storepos.msgpack", "till").encode(frame)  # type: ignore[arg-type]
    with pytest.raises(FrameError):
        TillCodec("storepos.msgpack", "store").decode(data)
