"""The till's receipt text is the printed layout, line for line (one layout, two sheets)."""

from __future__ import annotations

import msgspec
import pytest

from devices.escpos import ReceiptLayout, encode_receipt, receipt_text
from devices.escpos_decode import decode
from protocol.frames import RecordLine, RecordTender, RecordVat, SaleRecord
from protocol.money import MoneyError, parse_money

RECORD = SaleRecord(
    store="S001",
    lane=2,
    receipt_no=7,
    kind="sale",
    sale_id="x",
    operator="7",
    opened_at=0,
    closed_at=1795000000000,
    currency="SEK",
    lines=[
        RecordLine(1, "1001", "7310000000010", "Milk 1l", 2, 1590, 3180, 1200, False),
        RecordLine(2, "1005", "7310000000058", "Bananas", 1, 2495, 1328, 1200, False, 532),
        RecordLine(3, "1003", "7310000000034", "Coffee", 1, 6995, 6995, 2500, True),
    ],
    total=4508,
    rounding=-8,
    vat=[RecordVat(1200, 4508, 483)],
    tenders=[RecordTender("cash", "SEK", 5000)],
    change=500,
)
LAYOUT = ReceiptLayout(store_name="Test Store", header=["Main St 1"], footer=["Thanks"], timezone="Europe/Stockholm")

EXPECTED = """\
                Test Store
                Main St 1
Lane 2                           Receipt 7
2026-11-18 12:06 CET            Operator 7
------------------------------------------
Milk 1l
  2 x 15.90                          31.80
Bananas
  0.532 kg x 24.95/kg                13.28
Coffee                               69.95
VOID Coffee                         -69.95
------------------------------------------
TOTAL                            SEK 45.08
Cash rounding                        -0.08
To pay                               45.00
Cash                                 50.00
Change                                5.00

VAT                Net       VAT     Gross
  12%            40.25      4.83     45.08

                  Thanks
             Receipt S001-2-7
"""


def test_receipt_text_in_local_time_with_a_weighed_line() -> None:
    assert receipt_text(LAYOUT, RECORD) == EXPECTED


def test_screen_and_paper_say_the_same() -> None:
    printed = [line.strip() for line in decode(encode_receipt(LAYOUT, RECORD)).splitlines() if line.strip()]
    shown = [line.strip() for line in receipt_text(LAYOUT, RECORD).splitlines() if line.strip()]
    assert [line for line in printed if not line.startswith("[")] == shown  # [QR: ...] and [CUT] are paper-only


def test_nordic_letters_reach_the_paper_through_one_code_page() -> None:
    line = msgspec.structs.replace(RECORD.lines[0], name="Smörgåsost Ærø")
    record = msgspec.structs.replace(RECORD, lines=[line, *RECORD.lines[1:]])
    data = encode_receipt(LAYOUT, record)
    assert b"\x1b@\x1bt\x02" in data  # reset, then PC850 once for the whole receipt
    assert "Smörgåsost Ærø" in decode(data)


def printed_lines_sum(text: str) -> tuple[int, int]:
    """(the sum of the amounts printed between the two rules, the TOTAL printed), in minor units."""
    rows = text.splitlines()
    first = rows.index("-" * 42)
    second = rows.index("-" * 42, first + 1)
    added = 0
    for row in rows[first + 1 : second]:
        try:
            added += parse_money(row.split()[-1], "SEK")
        except MoneyError:  # a name above its quantity row
            continue
    total = next(row for row in rows if row.startswith("TOTAL"))
    return added, parse_money(total.split()[-1], "SEK")


REFUND = msgspec.structs.replace(
    RECORD,
    receipt_no=8,
    lines=[
        RecordLine(1, "1003", "7310000000034", "Coffee", -1, 3500, -3500, 2500, True, origin=3),
        RecordLine(2, "1001", "7310000000010", "Milk 1l", -1, 1590, -1590, 1200, False, origin=1),
    ],
    total=-1590,
    rounding=-10,
    vat=[RecordVat(1200, -1590, -170)],
    tenders=[RecordTender("cash", "SEK", 0)],
    change=1600,
    refund_of="S001-2-7",
)


@pytest.mark.parametrize("record", [RECORD, REFUND], ids=["sale", "refund"])
def test_the_printed_lines_add_up_to_the_total_with_a_voided_line(record: SaleRecord) -> None:
    """Before: only `VOID Coffee -69.95` was printed, so the lines summed to 69.95 less than TOTAL; on a refund
    the void read `--35.00`."""
    text = receipt_text(LAYOUT, record)
    added, total = printed_lines_sum(text)
    assert added == total == record.total
    assert "--" not in text.replace("-" * 42, "")


def test_a_refund_receipt_says_what_went_back_in_positive_amounts() -> None:
    rows = receipt_text(LAYOUT, REFUND).splitlines()
    assert "  -1 x 35.00                        -35.00" in rows
    assert "VOID Coffee                          35.00" in rows  # the void adds back what the return took off
    assert "To pay back                          16.00" in rows
    assert "Cash paid back                       16.00" in rows
    assert not any(row.startswith(("Change", "Cash  ", "To pay  ")) for row in rows)


def test_the_salesperson_is_on_the_receipt() -> None:
    assert "Salesperson 2" not in receipt_text(LAYOUT, RECORD)
    rows = receipt_text(LAYOUT, msgspec.structs.replace(RECORD, salesperson="2")).splitlines()
    assert rows[4] == "                             Salesperson 2"
