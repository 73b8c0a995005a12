"""The sans-IO ESC/POS codec: status bits per Epson's DLE EOT, commands, and the receipt as a person reads it."""

from __future__ import annotations

import re

import pytest
from escpos import constants as escpos_constants
from hypothesis import given
from hypothesis import strategies as st

from devices.escpos import (
    Discount,
    PrinterStatus,
    ReceiptLayout,
    StatusByteError,
    drawer_kick,
    drawer_pulse_now,
    encode_receipt,
    interrupted_notice,
    parse_status,
    profile_names,
    receipt_id,
    receipt_text,
    status_byte,
    status_request,
)
from devices.escpos_decode import decode, split_commands
from protocol.frames import RecordDiscount
from tests.kit.printing import LAYOUT, make_record

# -- status -------------------------------------------------------------------------------------------


def test_status_request_is_dle_eot_n() -> None:
    assert [status_request(n) for n in (1, 2, 3, 4)] == [
        b"\x10\x04\x01",
        b"\x10\x04\x02",
        b"\x10\x04\x03",
        b"\x10\x04\x04",
    ]
    assert status_request(1) == escpos_constants.RT_STATUS_ONLINE
    assert status_request(4) == escpos_constants.RT_STATUS_PAPER
    with pytest.raises(ValueError):
        status_request(5)


def test_printer_status_byte() -> None:
    assert parse_status(1, 0x12) == PrinterStatus()
    assert parse_status(1, 0x16).drawer_pin3_high
    offline = parse_status(1, 0x1A)
    assert not offline.online and not offline.ready and offline.state == "offline"


def test_offline_cause_byte() -> None:
    assert parse_status(2, 0x16).cover_open
    assert parse_status(2, 0x1A).feed_button
    stopped = parse_status(2, 0x32)
    assert stopped.paper_end_stop and stopped.state == "paper-out" and not stopped.ready
    assert parse_status(2, 0x52).error


def test_error_cause_byte() -> None:
    status = parse_status(3, 0x12 | 0x04 | 0x08 | 0x20 | 0x40)
    assert status.mechanical_error and status.cutter_error
    assert status.unrecoverable_error and status.auto_recoverable_error
    assert parse_status(3, 0x12) == PrinterStatus()


def test_paper_sensor_byte_agrees_with_python_escpos_masks() -> None:
    assert parse_status(4, escpos_constants.RT_MASK_PAPER) == PrinterStatus()
    low = parse_status(4, escpos_constants.RT_MASK_LOWPAPER)
    assert low.paper_near_end and not low.paper_end and low.ready and low.state == "paper-low"
    out = parse_status(4, escpos_constants.RT_MASK_NOPAPER)
    assert out.paper_end and not out.ready and out.state == "paper-out"


def test_bytes_merge_into_one_status() -> None:
    status = parse_status(1, 0x1E)  # offline, drawer high
    status = parse_status(2, 0x16, into=status)  # cover open
    status = parse_status(4, 0x12, into=status)
    assert status.drawer_pin3_high and not status.online and status.cover_open and not status.paper_end
    assert status.state == "cover-open"  # the cause, not the symptom "offline"


@pytest.mark.parametrize("byte", [0x00, 0xFF, 0x02, 0x10, 0x13, 0x92, 0x1B, 0x80])
@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_noise_is_refused(n: int, byte: int) -> None:
    with pytest.raises(StatusByteError, match=f"0x{byte:02x} is not a DLE EOT {n} reply"):
        parse_status(n, byte)


@given(st.integers(1, 4), st.integers(0, 255))
def test_a_byte_is_a_status_exactly_when_its_fixed_bits_are_right(n: int, byte: int) -> None:
    fixed_ok = byte & 0b1001_0011 == 0b0001_0010
    try:
        parse_status(n, byte)
    except StatusByteError:
        assert not fixed_ok
    else:
        assert fixed_ok


@given(st.builds(PrinterStatus, *[st.booleans()] * 12), st.integers(1, 4))
def test_status_byte_round_trips_the_fields_its_query_covers(status: PrinterStatus, n: int) -> None:
    again = parse_status(n, status_byte(n, status), into=status)
    assert again == status


def test_state_words_in_the_order_a_person_fixes_them() -> None:
    assert PrinterStatus(cover_open=True, paper_end=True, online=False).state == "cover-open"
    assert PrinterStatus(paper_end=True, error=True, online=False).state == "paper-out"
    assert PrinterStatus(error=True).state == "error"
    assert PrinterStatus(paper_near_end=True).state == "paper-low"
    assert PrinterStatus().state == "ok" and PrinterStatus().ready
    assert PrinterStatus(error=True, cutter_error=True).describe() == "error (cutter error)"


# -- drawer commands ------------------------------------------------------------------------------------


def test_drawer_kick_is_esc_p() -> None:
    assert drawer_kick() == b"\x1bp\x00\x32\x32"  # pin 2, 100 ms on, 100 ms off (2 ms units)
    assert drawer_kick(1, on_ms=50, off_ms=500) == b"\x1bp\x01\x19\xfa"
    assert drawer_kick(0) == escpos_constants.CD_KICK_2
    with pytest.raises(ValueError):
        drawer_kick(2)


def test_real_time_pulse_is_dle_dc4() -> None:
    assert drawer_pulse_now() == b"\x10\x14\x01\x00\x01"
    assert drawer_pulse_now(1, on_ms=300) == b"\x10\x14\x01\x01\x03"


# -- receipts -----------------------------------------------------------------------------------------


def test_receipt_reads_like_a_receipt() -> None:
    text = decode(encode_receipt(LAYOUT, make_record()))
    lines = text.splitlines()
    assert lines[0] == "Hörnbutiken"
    assert lines[1:3] == ["Storgatan 1", "Org.nr 556000-0000"]
    for expected in [
        "Lane 1                          Receipt 42",
        "2026-11-18 11:07 UTC            Operator 1",
        "Mjölk 1l                             16.90",
        "Kaffe 500g",
        "  3 x 59.90                         179.70",
        "VOID Kvällstidning                  -25.00",
        "Batterier AA                         89.50",
        "TOTAL                           SEK 286.10",
        "Cash rounding                        -0.10",
        "To pay                              286.00",
        "Cash                                300.00",
        "Change                               14.00",
        "VAT                Net       VAT     Gross",
        "  12%           175.54     21.06    196.60",
        "  25%            71.60     17.90     89.50",
        "Välkommen åter",
        "Receipt S001-1-42",
        "[QR: S001-1-42]",
    ]:
        assert expected in lines, expected
    assert lines.index("Change                               14.00") < lines.index(
        "  12%           175.54     21.06    196.60"
    )
    assert lines[-1] == "[CUT]"
    assert all(len(line) <= 42 for line in lines)


def test_total_is_bold_and_double_height() -> None:
    commands, _ = split_commands(encode_receipt(LAYOUT, make_record()))
    at = next(i for i, c in enumerate(commands) if c.name == "text" and c.raw.startswith(b"TOTAL"))
    styles = {c.raw for c in commands[at - 12 : at]}
    assert b"\x1bE\x01" in styles and b"\x1b!\x10" in styles
    after = {c.raw for c in commands[at + 1 : at + 14]}
    assert b"\x1bE\x00" in after  # and back to normal for the rest


def test_receipt_id_in_code128() -> None:
    data = encode_receipt(msgspec_replace(LAYOUT, barcode="code128"), make_record())
    assert b"\x1dkI\x0b{BS001-1-42" in data  # GS k 73 (CODE128, function B), length, code set B
    assert "[BARCODE: S001-1-42]" in decode(data)
    assert "[QR" not in decode(data)


def test_no_code_when_configured_off() -> None:
    text = decode(encode_receipt(msgspec_replace(LAYOUT, barcode="none"), make_record()))
    assert "[QR" not in text and "[BARCODE" not in text and "Receipt S001-1-42" in text


def test_cancelled_sale_says_so_and_shows_no_payment() -> None:
    text = decode(encode_receipt(LAYOUT, make_record(kind="cancel")))
    assert "*** SALE CANCELLED - NOT A RECEIPT ***" in text
    assert "Change" not in text and "Cash " not in text


def test_copy_is_marked_in_both_languages_with_its_number() -> None:
    lines = decode(encode_receipt(LAYOUT, make_record(), copy=2)).splitlines()
    assert lines[:2] == ["COPY / KOPIA", "copy 2 / kopia 2"]
    assert "COPY" not in decode(encode_receipt(LAYOUT, make_record()))


def test_discounts_show_under_their_line_and_in_total() -> None:
    discounts = [Discount("3 for 2", 5990, line=2), Discount("Member 5%", 1430)]
    lines = decode(encode_receipt(LAYOUT, make_record(), discounts=discounts)).splitlines()
    at = lines.index("  3 x 59.90                         179.70")
    assert lines[at + 1] == "  3 for 2                           -59.90"
    assert "Member 5%                           -14.30" in lines
    assert "You saved                            74.20" in lines


def test_narrow_paper() -> None:
    lines = decode(encode_receipt(msgspec_replace(LAYOUT, width=32), make_record())).splitlines()
    assert all(len(line) <= 32 for line in lines)
    assert "TOTAL                 SEK 286.10" in lines


@pytest.mark.parametrize("profile", ["TM-T88V", "TM-T20II", "TM-T88IV", "default"])
def test_profiles(profile: str) -> None:
    assert profile in profile_names()
    text = decode(encode_receipt(LAYOUT, make_record(), profile=profile), profile=profile)
    assert "Mjölk 1l" in text and "[QR: S001-1-42]" in text


def test_unknown_profile_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown printer profile 'TM-NOPE'"):
        encode_receipt(LAYOUT, make_record(), profile="TM-NOPE")


def test_layout_is_strict_config() -> None:
    import msgspec

    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"store_name": "x", "fotter": []}, ReceiptLayout)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"barcode": "pdf417"}, ReceiptLayout)


def test_receipt_id() -> None:
    assert receipt_id(make_record(7)) == "S001-1-7"


def test_interrupted_notice_closes_the_fragment() -> None:
    data = interrupted_notice()
    assert data.startswith(b"\x00" * 8 + b"\x1b@")
    text = decode(data)
    assert "*** PRINT INTERRUPTED ***" in text and text.rstrip().endswith("[CUT]")


# -- decoder ------------------------------------------------------------------------------------------


def test_decoder_skips_unknown_commands_and_status_requests() -> None:
    data = b"\x1b@abc\x1b\xff\x10\x04\x01def\n\x1d\x99ghi\n\x1bp\x00\x32\x32"
    assert decode(data) == "abcdef\nghi\n"


def test_decoder_drops_a_truncated_last_command() -> None:
    whole = encode_receipt(LAYOUT, make_record())
    cut = whole[: whole.index(b"\x1d(k\x0c")] + b"\x1d(k\x0c\x001P0S0"  # QR data cut short
    text = decode(cut)
    assert "Receipt S001-1-42" in text and "[QR" not in text


def test_decoder_centres_with_a_width() -> None:
    lines = decode(encode_receipt(LAYOUT, make_record()), width=42).splitlines()
    assert lines[0] == "Hörnbutiken".center(42).rstrip()


@given(st.binary(max_size=400))
def test_decoder_never_fails_on_garbage(data: bytes) -> None:
    decode(data)
    commands, used = split_commands(data)
    assert b"".join(c.raw for c in commands) == data[:used]


@given(st.lists(st.integers(0, 2000), max_size=6))
def test_splitting_a_stream_anywhere_gives_the_same_commands(cuts: list[int]) -> None:
    data = encode_receipt(LAYOUT, make_record()) + drawer_kick() + status_request(1)
    whole, used = split_commands(data)
    assert used == len(data)
    got, pending, start = [], b"", 0
    for cut in [*sorted(c % len(data) for c in cuts), len(data)]:
        commands, n = split_commands(pending + data[start:cut])
        pending = (pending + data[start:cut])[n:]
        got += commands
        start = cut
    assert pending == b""
    merged = b"".join(c.raw for c in got)
    assert merged == data
    assert [c.name for c in got if c.name != "text"] == [c.name for c in whole if c.name != "text"]


def msgspec_replace(layout: ReceiptLayout, **changes: object) -> ReceiptLayout:
    import msgspec

    return msgspec.structs.replace(layout, **changes)


def test_the_journal_records_discounts_print_each_on_its_own_line() -> None:
    """Issue 14: SaleRecord.discounts reach the receipt without the caller mapping them; a price raised by
    hand prints as an addition, never as "--"; a reason code from master data is made plain."""
    record = msgspec_replace(
        make_record(),
        discounts=[
            RecordDiscount(line=2, kind="percent", value=1000, amount=1797, reason="DAMAGED"),
            RecordDiscount(line=1, kind="price", value=1990, amount=-300, reason="PRICE\x1b[2J"),
            RecordDiscount(line=0, kind="amount", value=500, amount=500, reason="GOODWILL"),
        ],
    )
    lines = decode(encode_receipt(LAYOUT, record)).splitlines()
    at = lines.index("  3 x 59.90                         179.70")
    assert lines[at + 1] == "  Discount 10% (DAMAGED)            -17.97"
    assert lines[lines.index("Mjölk 1l                             16.90") + 1].endswith(" 3.00")
    assert not any(re.search(r"--\d", line) for line in lines) and "\x1b[2J" not in "".join(lines)
    assert "Discount (GOODWILL)                  -5.00" in lines
    assert receipt_text(LAYOUT, record).count("Discount 10% (DAMAGED)") == 1
