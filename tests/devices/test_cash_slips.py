"""The cash slips (issue 14, cash) as ESC/POS: a payout voucher and a count slip, decoded back from the
bytes a printer gets; a cashier's words on them are text, never printer commands; every line fits the paper."""

from __future__ import annotations

from devices.escpos import ReceiptLayout, cash_slip_text, encode_cash_slip
from devices.escpos_decode import decode
from protocol.frames import RecordCount, RecordEvent, RecordTender, SaleRecord
from tests.kit.nodes import T0
from tests.kit.printing import LAYOUT


def event_record(event: RecordEvent, *, training: bool = False) -> SaleRecord:
    return SaleRecord(
        store="S001",
        lane=2,
        receipt_no=17,
        kind="event",
        sale_id="e17",
        operator="1",
        opened_at=T0,
        closed_at=T0,
        currency="SEK",
        lines=[],
        total=0,
        rounding=0,
        vat=[],
        tenders=[],
        change=0,
        training=training,
        event=event,
    )


PAYOUT = event_record(
    RecordEvent(
        code="payout",
        reason="window cleaner \x1bp\x00\x19\xfa paid",
        account="cleaning",
        amounts=[RecordTender(kind="cash", currency="SEK", amount=-65000)],
        approver="2",
    )
)
COUNT = event_record(
    RecordEvent(
        code="count",
        counts=[
            RecordCount(tender="cash", currency="EUR", expected=6000, counted=5000),
            RecordCount(tender="cash", currency="SEK", expected=1234567, counted=1234517),
        ],
        detail="not counted: card 69.95",
    )
)


def test_a_payout_voucher_names_the_money_the_account_and_who_approved_it() -> None:
    data = encode_cash_slip(LAYOUT, PAYOUT)
    paper = decode(data)
    assert "PETTY CASH VOUCHER" in paper and "Hörnbutiken" in paper
    assert "cleaning" in paper and "-650.00" in paper and "Approved by" in paper and "Received by:" in paper
    assert "Event S001-2-17" in paper
    assert b"\x1bp\x00\x19" not in data  # the drawer kick typed into the reason is not a command


def test_a_count_slip_shows_expected_counted_and_the_difference_within_the_paper() -> None:
    text = cash_slip_text(LAYOUT, COUNT)
    assert "CASH COUNT" in text
    assert "Cash EUR" in text and "60.00" in text and "50.00" in text and "-10.00" in text
    assert "12345.67" in text and "12345.17" in text and "-0.50" in text
    assert "not counted: card 69.95" in text
    assert all(len(line) <= LAYOUT.width for line in text.splitlines())
    assert "CASH COUNT" in decode(encode_cash_slip(LAYOUT, COUNT))


def test_a_slip_made_in_training_says_so() -> None:
    record = event_record(RecordEvent(code="float_in", amounts=[RecordTender("cash", "SEK", 100000)]), training=True)
    text = cash_slip_text(ReceiptLayout(), record)
    assert "TRAINING" in text and "FLOAT IN" in text and "1000.00" in text
