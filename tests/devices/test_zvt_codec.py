"""The ZVT codec: golden bytes for every command we send, sample terminal answers, serial framing (DLE
stuffing, CRC, noise, split reads, through a real pty too), bitmaps we skip or refuse, and card-number
masking. Pure functions, except the one pty test."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from devices.serialport import open_serial
from devices.sim.pty import VirtualPort
from devices.zvt import (
    ACK,
    NAK,
    Abort,
    Ack,
    Apdu,
    ApduError,
    ApduReader,
    Authorization,
    BcdError,
    BitmapError,
    Completion,
    EndOfDay,
    Frame,
    FrameError,
    IntermediateStatus,
    Nack,
    PrintLine,
    PrintTextBlock,
    Refund,
    Registration,
    RepeatReceipt,
    Reversal,
    SerialFramer,
    StatusEnquiry,
    StatusInformation,
    Unsupported,
    ZvtError,
    bcd_decode,
    bcd_encode,
    crc16,
    decode_apdu,
    decode_command,
    decode_message,
    decode_pan,
    encode_apdu,
    encode_pan,
    encode_totals,
    frame,
    iter_bitmaps,
    mask_pan,
)

FULL_PAN = "4761739001010119"


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# -- commands we send: golden bytes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "golden"),
    [
        # password 000000, config 3E (ECR prints payment + admin receipts, intermediate status, ECR controls
        # payment and administration), currency 09 78 untagged
        (Registration(), "06 00 06 000000 3E 0978"),
        (
            Registration(password="123456", config_byte=0xBA, currency="EUR", service_byte=0x01),
            "06 00 08 123456 BA 0978 03 01",
        ),
        (Registration(currency=None), "06 00 04 000000 3E"),
        (Authorization(1234, "EUR"), "06 01 0A 04 000000001234 49 0978"),
        # as logged by a real ECR against a real terminal (Portalum.Zvt issue #33): 3,14 EUR, no currency
        (Authorization(314), "06 01 07 04 000000000314"),
        (Authorization(999_999_999_999, "SEK"), "06 01 0A 04 999999999999 49 0752"),
        (Reversal(45), "06 30 06 000000 87 0045"),
        (Refund(500, "EUR"), "06 31 0D 000000 04 000000000500 49 0978"),
        (EndOfDay(), "06 50 03 000000"),
        # Repeat Receipt as logged in Portalum.Zvt issue #26
        (RepeatReceipt(), "06 20 03 000000"),
        (StatusEnquiry(), "05 01 00"),
        (StatusEnquiry("000000"), "05 01 03 000000"),
        (Ack(), "80 00 00"),
        (Nack(0x83), "84 83 00"),
    ],
)
def test_commands_encode_to_golden_bytes(message: object, golden: str) -> None:
    assert message.encode() == h(golden)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "message",
    [
        Registration(),
        Authorization(1234, "EUR"),
        Authorization(314),
        Reversal(45),
        Refund(500, "EUR"),
        EndOfDay(),
        RepeatReceipt(),
        StatusEnquiry(),
        Ack(),
        Nack(0x9C),
    ],
)
def test_commands_decode_back_for_the_simulator(message: object) -> None:
    raw = message.encode()  # type: ignore[attr-defined]
    assert decode_command(decode_apdu(raw)) == message


def test_bad_requests_are_refused_before_any_byte() -> None:
    with pytest.raises(ZvtError):
        Authorization(10**12, "EUR").encode()
    with pytest.raises(ZvtError):
        Authorization(-1, "EUR").encode()
    with pytest.raises(ZvtError):
        Authorization(100, "XXX").encode()
    with pytest.raises(ZvtError):
        Registration(password="12345").encode()


# -- APDU lengths -------------------------------------------------------------------------------------


def test_extended_length_is_ff_then_two_bytes_low_first() -> None:
    raw = encode_apdu(0x06, 0xD3, bytes(861))
    assert raw[:5] == h("06 D3 FF 5D 03")  # the spec's own example: 0x035D = 861 bytes
    assert decode_apdu(raw) == Apdu(0x06, 0xD3, bytes(861))
    assert encode_apdu(0x04, 0x0F, bytes(254))[2] == 254  # the short form up to 254
    assert encode_apdu(0x04, 0x0F, bytes(255))[2:5] == h("FF FF 00")


def test_apdu_length_mismatch_is_an_error() -> None:
    with pytest.raises(ApduError):
        decode_apdu(h("06 0F 02 19"))
    with pytest.raises(ApduError):
        decode_apdu(h("06 0F"))


def test_apdu_reader_reassembles_split_tcp_reads() -> None:
    stream = Ack().encode() + IntermediateStatus(0x0A).encode() + encode_apdu(0x06, 0xD3, bytes(300))
    for cut in range(len(stream) + 1):
        reader = ApduReader()
        got = reader.feed(stream[:cut]) + reader.feed(stream[cut:])
        assert [a.control for a in got] == [(0x80, 0x00), (0x04, 0xFF), (0x06, 0xD3)]
        assert len(got[2].data) == 300
        assert reader.pending == 0


# -- BCD ------------------------------------------------------------------------------------------------


def test_bcd() -> None:
    assert bcd_encode(1234, 6) == h("000000001234")
    assert bcd_decode(h("00 12 34")) == 1234
    with pytest.raises(BcdError):
        bcd_decode(h("1A"))
    with pytest.raises(BcdError):
        bcd_encode(1000, 1)


# -- serial framing -------------------------------------------------------------------------------------


def test_crc_is_crc16_kermit() -> None:
    assert crc16(b"123456789") == 0x2189  # the catalogue check value of CRC-16/KERMIT


def _table_crc(data: bytes) -> int:
    """ecrterm's table-driven form of the same checksum (poly 0x8408): an independent implementation."""
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    crc = 0
    for byte in data:
        crc = table[(crc & 0xFF) ^ byte] ^ (crc >> 8)
    return crc


@given(st.binary(max_size=300))
def test_crc_matches_the_table_form(data: bytes) -> None:
    assert crc16(data) == _table_crc(data)


def test_frame_layout_crc_over_apdu_and_etx_low_byte_first() -> None:
    apdu = Ack().encode()
    crc = crc16(apdu + b"\x03")
    assert frame(apdu) == h("10 02 80 00 00 10 03") + bytes((crc & 0xFF, crc >> 8))


def test_dle_in_the_apdu_is_doubled() -> None:
    apdu = Authorization(1000, "EUR").encode()  # 10.00 EUR: the amount holds a 0x10 byte
    assert b"\x10" in apdu
    raw = frame(apdu)
    body = raw[2:-4]  # between DLE STX and DLE ETX CRC CRC
    assert body == apdu.replace(b"\x10", b"\x10\x10")
    assert SerialFramer().feed(raw) == [Frame("data", apdu)]


def test_framer_survives_noise_acks_and_split_reads() -> None:
    one = Authorization(1000, "EUR").encode()
    two = StatusInformation(result_code=0, amount=1000, trace="000010").encode()
    stream = b"\xff\x00" + frame(one) + bytes((ACK,)) + b"\x10\x41junk" + bytes((NAK,)) + frame(two)
    expected = [Frame("data", one), Frame("ack"), Frame("nak"), Frame("data", two)]
    assert SerialFramer().feed(stream) == expected
    for cut in range(len(stream) + 1):
        framer = SerialFramer()
        assert framer.feed(stream[:cut]) + framer.feed(stream[cut:]) == expected
    framer = SerialFramer()
    assert [item for byte in stream for item in framer.feed(bytes((byte,)))] == expected
    assert framer.noise > 0


def test_damaged_frames_are_reported_and_the_next_one_is_read() -> None:
    good = frame(Ack().encode())
    bad_crc = good[:-1] + bytes(((good[-1] ^ 0xFF),))
    items = SerialFramer().feed(bad_crc + good)
    assert isinstance(items[0], FrameError) and "CRC" in items[0].reason
    assert items[1:] == [Frame("data", Ack().encode())]
    cut_short = good[:5] + good  # a frame interrupted by the start of the next one
    items = SerialFramer().feed(cut_short)
    assert isinstance(items[0], FrameError) and items[1:] == [Frame("data", Ack().encode())]
    stray_dle = h("10 02 80 10 41") + good  # DLE followed by neither DLE nor ETX
    items = SerialFramer().feed(stray_dle)
    assert isinstance(items[0], FrameError) and items[1:] == [Frame("data", Ack().encode())]


@given(st.binary(max_size=600), st.lists(st.integers(min_value=0, max_value=700), max_size=5))
def test_any_apdu_survives_framing_at_any_split(data: bytes, cuts: list[int]) -> None:
    apdu = encode_apdu(0x06, 0xD3, data)
    raw = frame(apdu)
    framer = SerialFramer()
    items: list[Frame | FrameError] = []
    start = 0
    for cut in [*sorted(c % (len(raw) + 1) for c in cuts), len(raw)]:
        items += framer.feed(raw[start:cut])
        start = cut
    assert items == [Frame("data", apdu)]
    assert decode_apdu(items[0].apdu) == Apdu(0x06, 0xD3, data)  # type: ignore[union-attr]


async def test_framing_through_a_real_pty(tmp_path: Path) -> None:
    """Frames written to the terminal end of a pseudo-terminal arrive intact (DLE bytes and all) through
    the same tty path the driver uses, and the framer reassembles them from whatever reads the tty
    gives."""
    port = VirtualPort(tmp_path / "zvt")
    port.plug()
    try:
        with trio.fail_after(10):
            ecr = await open_serial(port.path, baudrate=9600, stopbits=2)
            async with ecr:
                apdus = [Authorization(1000 + i * 16, "EUR").encode() for i in range(20)]
                wire = b"\x00noise" + b"".join(frame(a) + b"\xfe" for a in apdus)
                await port.send(wire)
                framer = SerialFramer()
                got: list[Frame | FrameError] = []
                while len(got) < len(apdus):
                    got += framer.feed(await ecr.receive_some(7))  # deliberately small reads
                assert got == [Frame("data", a) for a in apdus]
                await ecr.send_all(bytes((ACK,)))  # and the other way
                master = port.stream
                assert SerialFramer().feed(await master.receive_some()) == [Frame("ack")]
    finally:
        port.close()


# -- what the terminal sends ---------------------------------------------------------------------------

# A Status-Information as a terminal sends it after an approved payment, built by hand from the bitmap
# table: result 00, 12.34, trace 000042, time 12:30:45, date 11-17, PAN masked by the terminal,
# payment type 40, TID 52500001, VU number, AID "123456", currency EUR, receipt 0007, turnover 000009,
# card type 10 (Visa), card name "VISA", plus bitmaps we only skip: expiry date (0E), card sequence
# number (17) and a TLV container (06).
SAMPLE_STATUS = encode_apdu(
    0x04,
    0x0F,
    h(
        "27 00"
        "04 000000001234"
        "0B 000042"
        "0C 123045"
        "0D 1117"
        "0E 2812"
        "17 0001"
        "22 F0F8 476173EEEEEE0119"
        "19 40"
        "29 52500001"
        "2A 53494D565530303030303030303031"
        "3B 3132333435360000"
        "49 0978"
        "87 0007"
        "88 000009"
        "8A 0A"
        "8B F0F4 56495341"
        "06 05 1F1002 0102"
    ),
)


def test_status_information_sample() -> None:
    status = decode_message(decode_apdu(SAMPLE_STATUS))
    assert status == StatusInformation(
        result_code=0,
        amount=1234,
        currency="EUR",
        trace="000042",
        receipt_no=7,
        turnover_no=9,
        time="123045",
        date="1117",
        masked_pan="476173******0119",
        auth_code="123456",
        card_type=10,
        card_name="VISA",
        payment_type=0x40,
        terminal_id="52500001",
        vu_number="SIMVU0000000001",
    )


def test_status_information_roundtrip() -> None:
    status = StatusInformation(
        result_code=0x71, amount=1, currency="SEK", trace="999999", receipt_no=9999, masked_pan="****1234"
    )
    assert decode_message(decode_apdu(status.encode())) == status


def test_unknown_bitmap_with_known_length_is_skipped() -> None:
    data = h("27 00") + h("2D F0F3 AABBCC") + h("37 000001") + h("9A F0F0F2 0102") + h("04 000000000100")
    status = StatusInformation.decode(data)
    assert status.result_code == 0 and status.amount == 100


def test_unknown_bitmap_without_known_length_is_refused() -> None:
    assert 0x99 not in dict(iter_bitmaps(h("27 00")))
    with pytest.raises(BitmapError, match="unknown bitmap 99"):
        StatusInformation.decode(h("27 00 99 01 04 000000000100"))
    with pytest.raises(BitmapError):
        StatusInformation.decode(h("27 00 04 0000"))  # cut short
    with pytest.raises(BitmapError):
        StatusInformation.decode(h("22 F1"))  # length field cut short
    with pytest.raises(BitmapError):
        StatusInformation.decode(h("22 A1 00"))  # not an LL-var length


def test_other_terminal_messages() -> None:
    assert decode_message(decode_apdu(h("80 00 00"))) == Ack()
    assert decode_message(decode_apdu(h("84 00 00"))) == Ack()  # 84 00 is positive too
    assert decode_message(decode_apdu(h("84 9C 00"))) == Nack(0x9C)
    assert decode_message(decode_apdu(h("04 FF 01 0A"))) == IntermediateStatus(0x0A)
    assert decode_message(decode_apdu(h("04 FF 02 17 3C"))) == IntermediateStatus(0x17, 60)
    assert decode_message(decode_apdu(h("06 1E 01 6C"))) == Abort(0x6C)
    assert decode_message(decode_apdu(h("06 1E 00"))) == Abort(None)
    assert decode_message(decode_apdu(h("06 0F 00"))) == Completion()
    assert decode_message(decode_apdu(h("06 0F 07 19 00 29 52500001"))) == Completion(
        status_byte=0, terminal_id="52500001"
    )
    # the answer to a Status-Enquiry: <sw-version LLL-var> <terminal status>
    assert decode_message(decode_apdu(h("06 0F 08 F0F0F4 31 2E 30 30 00"))) == Completion(
        sw_version="1.00", terminal_status=0
    )
    assert decode_message(decode_apdu(h("06 D1 06 FF 42 65 74 72 81"))) == PrintLine("Betrü", 0xFF)  # CP437
    assert decode_message(decode_apdu(h("06 E0 00"))) == Unsupported(0x06, 0xE0)


def test_print_text_block_lines() -> None:
    block = PrintTextBlock(("Kartenzahlung", "", "Betrag EUR 12.34"))
    assert decode_message(decode_apdu(block.encode())) == block
    # the TLV as a terminal nests it: 06 <len> 25 <len> (07 <len> text)*, with a receipt type tag 1F07
    raw = encode_apdu(0x06, 0xD3, h("06 0E 25 08 07 02 4F 4B 07 02 4E 4F 1F07 01 01"))
    assert decode_message(decode_apdu(raw)) == PrintTextBlock(("OK", "NO"))


# -- card numbers ----------------------------------------------------------------------------------------


def test_a_full_card_number_is_masked_on_decode() -> None:
    data = h("22 F0F8") + encode_pan(FULL_PAN) + h("27 00")
    status = StatusInformation.decode(data)
    assert status.masked_pan == "476173******0119"
    for text in (repr(status), msgspec.json.encode(status).decode(), str(msgspec.structs.asdict(status))):
        assert FULL_PAN not in text
        assert "7390010101" not in text


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        (encode_pan(FULL_PAN), "476173******0119"),
        (h("476173EEEEEE0119"), "476173******0119"),  # masked by the terminal already
        (h("6703EEEEEEEEEE12345F"), "6703***********2345"),  # 19 digits, padded with F, 6+4 at most
        (h("EEEEEEEEEEEE1234"), "************1234"),
        (encode_pan("123456789012"), "********9012"),  # short: at least three stay hidden
        (encode_pan("1234567"), "***4567"),
        (encode_pan("123456"), "******"),
    ],
)
def test_pan_masking(value: bytes, masked: str) -> None:
    assert decode_pan(value) == masked


def test_pan_with_impossible_nibbles_is_refused() -> None:
    with pytest.raises(BitmapError):
        decode_pan(h("47A1"))


@given(st.text(alphabet="0123456789*", min_size=0, max_size=19))
def test_masking_never_shows_more_than_six_and_four(pan: str) -> None:
    masked = mask_pan(pan)
    assert len(masked) == len(pan)
    shown = [i for i, c in enumerate(masked) if c != "*"]
    assert all(i < 6 or i >= len(pan) - 4 for i in shown)
    assert len(pan) - len(shown) >= min(3, len(pan))
    assert all(masked[i] == pan[i] for i in shown)
    assert decode_pan(encode_pan(pan)) == masked


def test_end_of_day_totals() -> None:
    value = encode_totals(1, 9, [(1, 500), (0, 0), (2, 1500), (0, 0), (3, 2500), (0, 0), (1, 1)])
    status = StatusInformation.decode(h("27 00 04 000000004501 60 F0F5F3") + value)
    assert status.amount == 4501
    assert [(t.card, t.count, t.amount) for t in status.totals] == [
        ("girocard", 1, 500),
        ("JCB", 0, 0),
        ("Eurocard", 2, 1500),
        ("American Express", 0, 0),
        ("Visa", 3, 2500),
        ("Diners", 0, 0),
        ("remaining", 1, 1),
    ]
