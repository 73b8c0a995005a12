"""The customer receipt text, rendered from the journal record alone. Expected texts laid out by hand."""

from __future__ import annotations

import msgspec

from protocol.frames import RecordLine, RecordTender, RecordVat, SaleRecord
from storenode.journal.receipt import WIDTH, render

CLOSED_AT = 1_795_000_060_000  # 2026-11-18 11:07:40 UTC

SALE = SaleRecord(
    store="S001",
    lane=2,
    receipt_no=7,
    kind="sale",
    sale_id="S001-2-0001",
    operator="7",
    opened_at=1_795_000_000_000,
    closed_at=CLOSED_AT,
    currency="SEK",
    lines=[
        RecordLine(
            no=1,
            item="MILK1",
            code="7310000000010",
            name="Milk 1l",
            qty=2,
            unit_price=1590,
            amount=3180,
            vat_rate=1200,
            voided=False,
        ),
        RecordLine(
            no=2,
            item="BUTR",
            code="7310000000027",
            name="Butter",
            qty=1,
            unit_price=5995,
            amount=5995,
            vat_rate=1200,
            voided=True,
        ),
        RecordLine(
            no=3,
            item="COFF",
            code="7310000000034",
            name="Coffee",
            qty=1,
            unit_price=6995,
            amount=6995,
            vat_rate=2500,
            voided=False,
        ),
    ],
    total=10175,
    rounding=25,
    vat=[RecordVat(rate=1200, gross=3180, vat=341), RecordVat(rate=2500, gross=6995, vat=1399)],
    tenders=[RecordTender(kind="cash", currency="SEK", amount=20000)],
    change=9800,
)

HEADER = ["Storgatan 1", "Org.nr 556000-0000"]
FOOTER = ["Thank you!"]

EXPECTED_SALE = """\
                Test Store
               Storgatan 1
            Org.nr 556000-0000
Lane 2                           Receipt 7
2026-11-18 11:07 UTC            Operator 7
------------------------------------------
Milk 1l
  2 x 15.90                          31.80
VOID Butter                         -59.95
Coffee                               69.95
------------------------------------------
TOTAL                           SEK 101.75
Cash rounding                         0.25
To pay                              102.00
Cash                                200.00
Change                               98.00

VAT                       Gross        VAT
  12%                     31.80       3.41
  25%                     69.95      13.99

                Thank you!
Sale S001-2-0001
"""

EXPECTED_CANCEL = """\
                   S001
Lane 2                           Receipt 8
2026-11-18 11:07 UTC            Operator 7
  *** SALE CANCELLED - NOT A RECEIPT ***
------------------------------------------
Milk 1l
  2 x 15.90                          31.80
VOID Butter                         -59.95
Coffee                               69.95
------------------------------------------
TOTAL                           SEK 101.75

VAT                       Gross        VAT
  12%                     31.80       3.41
  25%                     69.95      13.99

Sale S001-2-0001
"""


def test_render_sale() -> None:
    text = render(SALE, store_name="Test Store", header=HEADER, footer=FOOTER)
    assert text == EXPECTED_SALE


def test_render_sale_lines_fit_the_paper() -> None:
    text = render(SALE, store_name="Test Store", header=HEADER, footer=FOOTER)
    assert all(len(line) <= WIDTH for line in text.splitlines())
    assert WIDTH == 42


def test_render_is_a_pure_function_of_the_record() -> None:
    """A reprint from the journal bytes is identical to the original."""
    copy = msgspec.msgpack.decode(msgspec.msgpack.encode(SALE), type=SaleRecord)
    first = render(SALE, store_name="Test Store", header=HEADER, footer=FOOTER)
    assert render(copy, store_name="Test Store", header=HEADER, footer=FOOTER) == first


def test_render_cancel_says_it_is_not_a_receipt() -> None:
    cancel = msgspec.structs.replace(SALE, kind="cancel", receipt_no=8, rounding=0, tenders=[], change=0)
    text = render(cancel, store_name="", header=[], footer=[])
    assert text == EXPECTED_CANCEL
    assert "NOT A RECEIPT" in text
    assert "Change" not in text and "Cash" not in text and "To pay" not in text


def test_render_without_rounding_has_no_rounding_lines() -> None:
    record = msgspec.structs.replace(
        SALE,
        currency="EUR",
        rounding=0,
        tenders=[RecordTender(kind="cash", currency="EUR", amount=10175)],
        change=0,
    )
    text = render(record, store_name="Test Store", header=[], footer=[])
    assert "Cash rounding" not in text and "To pay" not in text
    assert "TOTAL                           EUR 101.75\nCash                                101.75\n" in text
    assert "\nChange                                0.00\n" in text


def test_render_truncates_long_names() -> None:
    long_name = "Organic fair-trade dark roast coffee beans 1kg bag"  # 50 characters
    assert len(long_name) == 50
    lines = [
        RecordLine(
            no=1,
            item="C1",
            code="1",
            name=long_name,
            qty=1,
            unit_price=12995,
            amount=12995,
            vat_rate=1200,
            voided=False,
        ),
        RecordLine(
            no=2,
            item="C1",
            code="1",
            name=long_name,
            qty=3,
            unit_price=12995,
            amount=38985,
            vat_rate=1200,
            voided=False,
        ),
    ]
    record = msgspec.structs.replace(SALE, lines=lines)
    text = render(record, store_name="Test Store", header=[], footer=[])
    assert "\nOrganic fair-trade dark roast coffe 129.95\n" in text
    assert "\nOrganic fair-trade dark roast coffee beans\n  3 x 129.95                        389.85\n" in text
