"""ZVT, the German ECR interface to card payment terminals: the codec (sans-IO: bytes in, values out).

Sources. The specification is public and free (Verband der Terminalhersteller in Deutschland,
terminalhersteller.de): PA00P016 "Transport-Protocol / Application-Protocol" (rev. 04, 2016) and PA00P015
"Commands, Bitmaps, Error-Messages" (rev. 13.07 to 13.13). Only excerpts of those PDFs could be consulted
while writing this, so every layout below was cross-checked against independent open implementations
that follow the spec chapter by chapter: Portalum.Zvt (C#, rev. 13.09: ApduHelper, ChecksumHelper,
BmpParser, RegistrationConfig, ZvtClient), EVerest/zvt (Rust, rev. 13.11: packets.rs, length.rs,
encoding.rs) and ecrterm (Python: transport_serial.py, crc.py), plus terminal logs published in
Portalum.Zvt's issues. Where two sources disagreed, or only one had it, the text says so.

APDU (Portalum ApduHelper, EVerest `length::Adpu`)
    CLASS INSTR LEN DATA. LEN is one byte for 0..254 data bytes; for more, LEN is FF followed by the
    length as two bytes, low byte first (e.g. `06 D3 FF 5D 03 ...` carries 0x035D = 861 bytes).

Serial transport (ecrterm transport_serial.py and crc.py, Portalum ChecksumHelper)
    DLE STX <APDU, every DLE (0x10) doubled> DLE ETX CRC-lo CRC-hi. The CRC is CRC-16/CCITT in its
    reflected form (polynomial 0x8408, initial value 0, no final XOR; the catalogue name is
    CRC-16/KERMIT) over the *unstuffed* APDU followed by the ETX byte, sent low byte first. The receiver
    answers every frame with a single byte: ACK 0x06 (good) or NAK 0x15 (bad CRC / malformed); the sender
    repeats a frame on NAK or when no answer comes, at most 3 times (the repeat count and the ACK
    waiting time are settings of the driver: check them against the terminal's manual). Line: 9600 baud
    8N2 by default (ecrterm); configurable because terminals differ.

TCP transport (Portalum TcpNetworkDeviceCommunication; EVerest): the bare APDUs, no framing, no CRC, no
    ACK bytes; the PT listens on port 20007 by default.

Application flow (Portalum ReceiveHandler and ZvtClient; ecrterm; EVerest sequences): the ECR sends a
    command; the PT answers `80 00 00` (positive acknowledgement) or `84 xx 00` (negative, xx = result
    code; `84 00` is also positive), then sends its own messages: Intermediate Status-Information `04 FF`,
    Status-Information `04 0F` (the result), Print Line `06 D1` / Print Text-Block `06 D3` (only when the
    ECR prints, see the config byte), and finally Completion `06 0F` (success) or Abort
    `06 1E <result-code>` (failure). The ECR acknowledges every one of them with `80 00 00`, as Portalum
    and ecrterm do (a command it does not support gets `84 83 00`). The ECR's acknowledgement of the
    Status-Information is what makes a booking final: a PT whose Status-Information is not acknowledged
    reverses it by itself ("auto-reversal", spec 2.2.8 as summarised in the bonbon mock-terminal notes),
    which is why the driver acknowledges before it does anything else.

Commands we send (the ECR side; golden bytes in tests/devices/test_zvt_codec.py):
    Registration   06 00  <password 3 BCD> <config-byte> [<CC 2 BCD, untagged> [03 <service-byte>]]
    Authorization  06 01  04 <amount 6 BCD> [49 <CC 2 BCD>]
    Reversal       06 30  <password> 87 <receipt-no 2 BCD>
    Refund         06 31  <password> 04 <amount> [49 <CC>]
    End-of-Day     06 50  <password>
    Repeat Receipt 06 20  <password>
    Status-Enquiry 05 01  [<password>]
    Ack 80 00 00 / Nack 84 xx 00
  Repeat Receipt is the one command that reports a past transaction: the PT sends the Status-Information
  of its last transaction before the receipt copy, "so that the ECR can resynchronise in case of an
  inconclusive ending of a transaction" (spec 2.20.2, rev. 13.09, as quoted in the bonbon mock-terminal
  notes). Terminals differ here: the PAX A80 logged in Portalum.Zvt issue #26 answered 06 20 with
  80 00 00 and 06 0F only, no Status-Information, in one of its configurations; the driver then treats
  the last transaction as not reported. Status-Enquiry (05 01) reports the terminal's state and software
  version, not a transaction.
  Config byte (Portalum RegistrationConfig): 02 ECR prints payment receipts, 04 ECR prints
  administration receipts, 08 PT sends intermediate status, 10 ECR controls payment (no amount entry on
  the PT), 20 ECR controls administration, 80 ECR print type = text blocks (06 D3) instead of lines. The
  driver uses 0x3E by default: receipts come to the ECR line by line (so a query never wastes paper on
  the PT) and neither payments nor administration (reversal, end-of-day) can be started on the PT's own
  keypad, which the "last transaction" reasoning in devices/terminal.py relies on.

Messages we decode (from the PT):
    80 00 / 84 00 Ack, 84 xx Nack(xx), 04 FF IntermediateStatus(code[, timeout]), 04 0F
    StatusInformation (bitmaps, below), 06 0F Completion ([19 status-byte] [29 TID] [49 CC] [06 TLV], or,
    answering a Status-Enquiry, <sw-version LLL-var> <terminal-status-code>), 06 1E Abort(<result-code>),
    06 D1 PrintLine(<attribute> <text>), 06 D3 PrintTextBlock(06 <TLV>, text lines in tag 07).
    Text is code page 437, the ZVT default character set (EVerest; ecrterm). Anything else is
    `Unsupported(class, instr)`, which the ECR answers with `84 83 00` ("function not possible").

Bitmaps (BMP: one tag byte, then the value; lengths from Portalum BmpParser and EVerest packets.rs, which
agree on every bitmap both list, as does bezahl-online/zvt bmp.go for the ones it lists). Interpreted:
    04 amount 6 BCD (minor units) | 0B trace number 3 BCD | 0C time HHMMSS 3 BCD | 0D date MMDD 2 BCD |
    19 payment type 1 | 22 PAN LL-var BCD, 'E' nibbles masked, 'F' pad | 27 result code 1 | 29 terminal id
    4 BCD | 2A VU number 15 ASCII | 3B AID / authorisation attribute 8 ASCII (the approval code) |
    3C additional text LLL-var | 49 currency 2 BCD (ISO 4217 numeric) | 60 individual totals LLL-var |
    87 receipt number 2 BCD | 88 turnover record number 3 BCD | 8A ZVT card type 1 | 8B card name LL-var |
    8C card type id of the network operator 1 | 06 TLV container (BER length, skipped)
  Skipped by their known length: 01 02 03 05 0E 17 23 24 2D 37 3A 3D 9A A0 A7 AA AF BA D0-D3 E0-EB F0-FD
  (37 3A 3D 9A A0 A7 AA AF BA D0-FD from Portalum only; 2D as LL-var, where Portalum's table is unclear).
  Any other bitmap number stops decoding with a BitmapError: its length is unknown, so nothing after it
  can be found, and guessing would mean reading an amount or a result code out of the wrong bytes.
  LL-var / LLL-var lengths are 2 / 3 bytes F0+digit (`F1 F2` = 12). TLV lengths are BER (`81 xx`,
  `82 xx xx`).

Individual totals (BMP 60, in the End-of-Day Status-Information; EVerest `SingleAmounts`):
    <receipt-no start 2 BCD> <receipt-no end 2 BCD>, then for girocard, JCB, Eurocard, Amex, Visa, Diners
    and "remaining": <count 1 byte binary> <total 6 BCD>.

Card numbers (PCI DSS): a PAN is masked the moment it is decoded: at most the first six and the last four
digits stay visible, and fewer for short numbers so that at least three are always hidden. A terminal
normally sends it masked already ('E' nibbles), but if one sends it in full the full number exists only as
a local value inside `decode_pan`, never in any object. Track data (BMP 23/24/2D) is skipped unread. The
raw APDUs, which do contain what the terminal sent, are transient: never logged, never stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Literal

import msgspec

log = logging.getLogger(__name__)

DLE, STX, ETX, ACK, NAK = 0x10, 0x02, 0x03, 0x06, 0x15
TCP_PORT = 20007
MAX_DATA = 0xFFFF  # the extended length field's maximum
TEXT_ENCODING = "cp437"


class ZvtError(ValueError):
    """Bytes that are not valid ZVT."""


class ApduError(ZvtError):
    pass


class BitmapError(ZvtError):
    pass


class BcdError(ZvtError):
    pass


# -- numbers ----------------------------------------------------------------------------------------


def bcd_encode(value: int, nbytes: int) -> bytes:
    """`value` as packed BCD in exactly `nbytes` bytes, most significant digit first."""
    if value < 0 or value >= 10 ** (2 * nbytes):
        raise BcdError(f"{value} does not fit {nbytes} BCD bytes")
    return bytes.fromhex(f"{value:0{2 * nbytes}d}")


def bcd_digits(data: bytes) -> str:
    """The decimal digits of packed BCD, leading zeros kept; any nibble above 9 is an error."""
    text = data.hex()
    if not text.isdigit():
        raise BcdError(f"not BCD: {text}")
    return text


def bcd_decode(data: bytes) -> int:
    return int(bcd_digits(data)) if data else 0


AMOUNT_MAX = 10**12 - 1


def encode_amount(amount: int) -> bytes:
    if not 0 <= amount <= AMOUNT_MAX:
        raise ZvtError(f"amount {amount} is outside 0..{AMOUNT_MAX} minor units")
    return bcd_encode(amount, 6)


# ISO 4217 numeric codes for the currencies a store may be configured with.
CURRENCIES: dict[str, int] = {
    "EUR": 978, "SEK": 752, "NOK": 578, "DKK": 208, "CHF": 756, "GBP": 826, "USD": 840,
    "PLN": 985, "CZK": 203, "HUF": 348, "ISK": 352, "JPY": 392,
}  # fmt: skip
_ALPHA = {number: alpha for alpha, number in CURRENCIES.items()}


def currency_code(alpha: str) -> bytes:
    """The 2-byte BCD currency code ("CC"), e.g. EUR -> 09 78."""
    try:
        return bcd_encode(CURRENCIES[alpha], 2)
    except KeyError:
        raise ZvtError(f"currency {alpha!r} has no ISO 4217 number configured") from None


def currency_alpha(cc: bytes) -> str:
    number = bcd_decode(cc)
    return _ALPHA.get(number, f"{number:03d}")


def encode_password(password: str) -> bytes:
    if len(password) != 6 or not password.isdigit():
        raise ZvtError("the ZVT password is six digits")
    return bytes.fromhex(password)


def _llvar(nbytes: int, digits: int) -> bytes:
    text = f"{nbytes:0{digits}d}"
    if len(text) != digits:
        raise ZvtError(f"{nbytes} bytes do not fit a {digits}-digit length")
    return bytes(0xF0 | int(c) for c in text)


def _llvar_length(data: bytes) -> int:
    value = 0
    for byte in data:
        if byte >> 4 != 0xF or byte & 0xF > 9:
            raise BitmapError(f"bad LL-var length byte {byte:02X}")
        value = value * 10 + (byte & 0xF)
    return value


def _ber_length(data: bytes, pos: int) -> tuple[int, int]:
    """(length, position after the length field) of a BER length at `pos`."""
    if pos >= len(data):
        raise BitmapError("TLV length missing")
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    count = first & 0x7F
    if count not in (1, 2) or pos + 1 + count > len(data):
        raise BitmapError(f"unsupported TLV length form {first:02X}")
    return int.from_bytes(data[pos + 1 : pos + 1 + count], "big"), pos + 1 + count


def _ber_encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    if length <= 0xFF:
        return bytes((0x81, length))
    return bytes((0x82,)) + length.to_bytes(2, "big")


# -- APDU -------------------------------------------------------------------------------------------


class Apdu(msgspec.Struct, frozen=True):
    cls: int
    ins: int
    data: bytes = b""

    @property
    def control(self) -> tuple[int, int]:
        return self.cls, self.ins

    def encode(self) -> bytes:
        return encode_apdu(self.cls, self.ins, self.data)


def encode_apdu(cls: int, ins: int, data: bytes = b"") -> bytes:
    n = len(data)
    if n > MAX_DATA:
        raise ApduError(f"APDU data of {n} bytes exceeds {MAX_DATA}")
    length = bytes((n,)) if n < 0xFF else b"\xff" + n.to_bytes(2, "little")
    return bytes((cls, ins)) + length + bytes(data)


def apdu_size(buf: bytes | bytearray) -> int | None:
    """Total size of the APDU at the start of `buf`, or None while its header is incomplete."""
    if len(buf) < 3:
        return None
    if buf[2] != 0xFF:
        return 3 + buf[2]
    if len(buf) < 5:
        return None
    return 5 + int.from_bytes(buf[3:5], "little")


def decode_apdu(raw: bytes) -> Apdu:
    size = apdu_size(raw)
    if size is None:
        raise ApduError(f"APDU too short ({len(raw)} bytes)")
    if size != len(raw):
        raise ApduError(f"APDU length field says {size} bytes, got {len(raw)}")
    start = 3 if raw[2] != 0xFF else 5
    return Apdu(raw[0], raw[1], bytes(raw[start:]))


class ApduReader:
    """Splits a TCP byte stream into APDUs, whatever the read boundaries. TCP has no framing to
    resynchronise on, so the stream is trusted as it comes; the length field alone delimits APDUs."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes | bytearray) -> list[Apdu]:
        self._buf += data
        out: list[Apdu] = []
        while (size := apdu_size(self._buf)) is not None and len(self._buf) >= size:
            out.append(decode_apdu(bytes(self._buf[:size])))
            del self._buf[:size]
        return out

    @property
    def pending(self) -> int:
        return len(self._buf)


# -- serial framing ---------------------------------------------------------------------------------


def crc16(data: bytes) -> int:
    """CRC-16/CCITT, reflected (poly 0x8408), initial 0: the ZVT serial checksum (CRC-16/KERMIT)."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc


def frame(apdu: bytes) -> bytes:
    """One APDU as a serial frame: DLE STX, the APDU with DLEs doubled, DLE ETX, CRC low byte first."""
    crc = crc16(bytes(apdu) + bytes((ETX,)))
    stuffed = bytes(apdu).replace(bytes((DLE,)), bytes((DLE, DLE)))
    return bytes((DLE, STX)) + stuffed + bytes((DLE, ETX, crc & 0xFF, crc >> 8))


class Frame(msgspec.Struct, frozen=True):
    """What arrived on the serial line: a good data frame (the unstuffed APDU) or an ACK / NAK byte."""

    kind: Literal["data", "ack", "nak"]
    apdu: bytes = b""


class FrameError(msgspec.Struct, frozen=True):
    """A frame that arrived damaged; the receiver answers it with NAK so the sender repeats it."""

    reason: str


_IDLE, _IDLE_DLE, _BODY, _BODY_DLE, _CRC_LO, _CRC_HI = range(6)
MAX_FRAME = 5 + MAX_DATA


class SerialFramer:
    """Serial bytes in, frames out, whatever the read boundaries. Bytes between frames that are neither
    ACK, NAK nor the start of a frame are line noise and are counted and skipped; a damaged frame (bad
    CRC, a DLE followed by something other than DLE/ETX, over-long, or cut short by a new DLE STX) comes
    out as a FrameError, and the framer is ready for the next frame at once."""

    def __init__(self) -> None:
        self.noise = 0
        self._state = _IDLE
        self._body = bytearray()
        self._crc_lo = 0

    def feed(self, data: bytes | bytearray) -> list[Frame | FrameError]:
        out: list[Frame | FrameError] = []
        for byte in data:
            self._step(byte, out)
        return out

    def _step(self, byte: int, out: list[Frame | FrameError]) -> None:
        state = self._state
        if state == _IDLE:
            if byte == DLE:
                self._state = _IDLE_DLE
            elif byte == ACK:
                out.append(Frame("ack"))
            elif byte == NAK:
                out.append(Frame("nak"))
            else:
                self.noise += 1
        elif state == _IDLE_DLE:
            if byte == STX:
                self._body.clear()
                self._state = _BODY
            else:
                self.noise += 1
                self._state = _IDLE
                self._step(byte, out)  # the DLE was noise; this byte may still mean something
        elif state == _BODY:
            if byte == DLE:
                self._state = _BODY_DLE
            else:
                self._append(byte, out)
        elif state == _BODY_DLE:
            if byte == DLE:
                self._state = _BODY
                self._append(DLE, out)
            elif byte == ETX:
                self._state = _CRC_LO
            elif byte == STX:
                out.append(FrameError("frame cut short by a new DLE STX"))
                self._body.clear()
                self._state = _BODY
            else:
                out.append(FrameError(f"DLE followed by {byte:02X} inside a frame"))
                self._state = _IDLE
        elif state == _CRC_LO:
            self._crc_lo = byte
            self._state = _CRC_HI
        else:  # _CRC_HI
            self._state = _IDLE
            body = bytes(self._body)
            self._body.clear()
            expected = crc16(body + bytes((ETX,)))
            received = self._crc_lo | byte << 8
            if received != expected:
                out.append(FrameError(f"CRC {received:04X} where {expected:04X} was expected"))
            else:
                out.append(Frame("data", body))

    def _append(self, byte: int, out: list[Frame | FrameError]) -> None:
        if len(self._body) >= MAX_FRAME:
            out.append(FrameError("over-long frame"))
            self._body.clear()
            self._state = _IDLE
            return
        self._body.append(byte)


# -- bitmaps ----------------------------------------------------------------------------------------

LL, LLL, TLV = -2, -3, -1  # variable lengths; a positive number is a fixed length

BITMAPS: dict[int, tuple[int, str]] = {
    0x01: (1, "timeout"),
    0x02: (1, "max status infos"),
    0x03: (1, "service byte"),
    0x04: (6, "amount"),
    0x05: (1, "pump number"),
    0x06: (TLV, "TLV container"),
    0x0B: (3, "trace number"),
    0x0C: (3, "time"),
    0x0D: (2, "date"),
    0x0E: (2, "expiry date"),
    0x17: (2, "card sequence number"),
    0x19: (1, "payment type"),
    0x22: (LL, "PAN"),
    0x23: (LL, "track 2"),
    0x24: (LLL, "track 3"),
    0x27: (1, "result code"),
    0x29: (4, "terminal id"),
    0x2A: (15, "VU number"),
    0x2D: (LL, "track 1"),
    0x37: (3, "original trace number"),
    0x3A: (2, "CVV"),
    0x3B: (8, "AID / authorisation attribute"),
    0x3C: (LLL, "additional text"),
    0x3D: (3, "password"),
    0x49: (2, "currency code"),
    0x60: (LLL, "individual totals"),
    0x87: (2, "receipt number"),
    0x88: (3, "turnover record number"),
    0x8A: (1, "card type"),
    0x8B: (LL, "card name"),
    0x8C: (1, "card type id"),
    0x9A: (LLL, "Geldkarte record"),
    0xA0: (1, "result code AS"),
    0xA7: (LL, "chip data"),
    0xAA: (3, "date YYMMDD"),
    0xAF: (LLL, "EF info"),
    0xBA: (5, "AID parameter"),
    0xD0: (1, "algorithm key"),
    0xD1: (LL, "card offset / PIN data"),
    0xD2: (1, "card output direction"),
    0xD3: (1, "DUKPT key identifier"),
    0xE0: (1, "min input length"),
    **{0xE1 + i: (LL, f"text2 line {i + 1}") for i in range(8)},
    0xE9: (1, "max input length"),
    0xEA: (1, "echo input"),
    0xEB: (8, "MAC"),
    0xF0: (1, "display duration"),
    **{0xF1 + i: (LL, f"text1 line {i + 1}") for i in range(8)},
    0xF9: (1, "beep tones"),
    0xFA: (1, "card reader activation"),
    0xFB: (1, "confirm input"),
    0xFC: (1, "dialog control"),
    0xFD: (1, "display device"),
}


def iter_bitmaps(data: bytes, start: int = 0) -> Iterator[tuple[int, bytes]]:
    """(bitmap number, value) for each bitmap in `data` from `start`; LL/LLL/TLV length fields removed
    (a TLV container's value is its content). An unknown number or a value running past the end raises
    BitmapError: nothing after it can be located."""
    pos = start
    while pos < len(data):
        bmp = data[pos]
        spec = BITMAPS.get(bmp)
        if spec is None:
            raise BitmapError(f"unknown bitmap {bmp:02X} at offset {pos}: its length is not known")
        length = spec[0]
        pos += 1
        if length == TLV:
            length, pos = _ber_length(data, pos)
        elif length in (LL, LLL):
            digits = -length
            if pos + digits > len(data):
                raise BitmapError(f"bitmap {bmp:02X}: length field cut short")
            length = _llvar_length(data[pos : pos + digits])
            pos += digits
        if pos + length > len(data):
            raise BitmapError(f"bitmap {bmp:02X} ({spec[1]}) needs {length} bytes, {len(data) - pos} left")
        yield bmp, data[pos : pos + length]
        pos += length


def tlv_items(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(tag, value) of the BER-TLV objects in `data`, descending into constructed ones (which are not
    yielded themselves). Tags are returned as integers, multi-byte tags big-endian (1F07 -> 0x1F07)."""
    pos = 0
    while pos < len(data):
        first = data[pos]
        tag = first
        pos += 1
        if first & 0x1F == 0x1F:
            while True:
                if pos >= len(data):
                    raise BitmapError("TLV tag cut short")
                tag = tag << 8 | data[pos]
                pos += 1
                if not data[pos - 1] & 0x80:
                    break
        length, pos = _ber_length(data, pos)
        if pos + length > len(data):
            raise BitmapError(f"TLV tag {tag:X} runs past the end")
        value = data[pos : pos + length]
        pos += length
        if first & 0x20:
            yield from tlv_items(value)
        else:
            yield tag, value


def _text(data: bytes) -> str:
    return data.decode(TEXT_ENCODING).rstrip("\x00").rstrip()


# -- card numbers -----------------------------------------------------------------------------------


def _visible(n: int) -> tuple[int, int]:
    """How many leading and trailing digits of an n-digit card number may be shown (PCI DSS: at most
    the first six and the last four), keeping at least three hidden."""
    tail = 4 if n - 4 >= 3 else 0
    head = 6 if n - tail - 6 >= 3 else 0
    return head, tail


def mask_pan(pan: str) -> str:
    """Mask a card number: digits outside the visible head and tail become '*'. Already masked digits
    ('*') stay masked; anything that is not a digit is treated as masked."""
    n = len(pan)
    head, tail = _visible(n)
    return "".join(c if (i < head or i >= n - tail) and c.isdigit() else "*" for i, c in enumerate(pan))


def decode_pan(value: bytes) -> str:
    """BMP 22's value (BCD nibbles, 'E' = a digit the terminal masked, 'F' = padding) as a masked card
    number. The unmasked digits are looked at one at a time and never assembled."""
    nibbles = [n for byte in value for n in (byte >> 4, byte & 0xF)]
    while nibbles and nibbles[-1] == 0xF:
        nibbles.pop()
    if any(n in (0xA, 0xB, 0xC, 0xD, 0xF) for n in nibbles):
        raise BitmapError("card number with nibbles that are neither digits nor masks")
    n = len(nibbles)
    head, tail = _visible(n)
    masked = "".join(str(x) if x <= 9 and (i < head or i >= n - tail) else "*" for i, x in enumerate(nibbles))
    nibbles.clear()
    return masked


def encode_pan(pan: str) -> bytes:
    """The BMP 22 value for `pan` ('*' encoded as E, odd length padded with F). For simulators."""
    hexed = "".join("E" if c == "*" else c for c in pan)
    if not all(c.isdigit() or c == "E" for c in hexed):
        raise ZvtError("a card number is digits and '*'")
    if len(hexed) % 2:
        hexed += "F"
    return bytes.fromhex(hexed)


# -- card types -------------------------------------------------------------------------------------

CARD_TYPES: dict[int, str] = {
    5: "girocard", 6: "Mastercard", 8: "American Express", 10: "Visa", 11: "Visa Electron",
    12: "Diners", 13: "V PAY", 14: "JCB", 46: "Maestro", 196: "Dankort", 232: "Discover",
}  # fmt: skip

RESULT_TEXTS: dict[int, str] = {
    0x00: "no error",
    0x64: "card not readable",
    0x65: "card data not present",
    0x66: "processing error",
    0x6A: "turnover file full",
    0x6B: "function deactivated (PT not registered)",
    0x6C: "abort via timeout or abort key",
    0x6E: "card in blocked list",
    0x6F: "wrong currency",
    0x71: "credit not sufficient",
    0x72: "chip error",
    0x73: "card data incorrect",
    0x77: "end-of-day batch not possible",
    0x78: "card expired",
    0x79: "card not yet valid",
    0x7A: "card unknown",
    0x7D: "communication error",
    0x83: "function not possible",
    0x9A: "ZVT protocol error",
    0x9B: "error from dial-up / communication fault",
    0x9C: "please wait",
    0xA0: "receiver not ready",
    0xA1: "remote station does not respond",
    0xA3: "no connection",
    0xB1: "memory full",
    0xB2: "merchant journal full",
    0xB4: "already reversed",
    0xB5: "reversal not possible",
    0xC3: "maximum amount exceeded",
    0xC5: "payment method not supported",
    0xC6: "currency not applicable",
    0xC8: "amount too small",
    0xCC: "printer not ready",
    0xF0: "open end-of-day batch present",
    0xFF: "system error",
}

ABORTED_BY_USER = 0x6C  # "abort via timeout or abort-key": the customer or cashier gave up
FUNCTION_NOT_POSSIBLE = 0x83
PROTOCOL_ERROR = 0x9A


def result_text(code: int | None) -> str:
    if code is None:
        return "no result code"
    return RESULT_TEXTS.get(code, f"result code {code:02X}")


INTERMEDIATE_TEXTS: dict[int, str] = {
    0x00: "waiting for amount confirmation",
    0x01: "please watch PIN pad",
    0x04: "waiting for response from the host",
    0x05: "sending auto-reversal",
    0x0A: "insert card",
    0x0B: "please remove card",
    0x0E: "please wait",
    0x15: "incorrect PIN",
    0x17: "please wait",
    0x1D: "declined",
}

# -- messages: ECR -> PT ----------------------------------------------------------------------------

# Config byte bits (see the module docstring).
CFG_ECR_PRINTS_PAYMENT = 0x02
CFG_ECR_PRINTS_ADMIN = 0x04
CFG_INTERMEDIATE_STATUS = 0x08
CFG_ECR_CONTROLS_PAYMENT = 0x10
CFG_ECR_CONTROLS_ADMIN = 0x20
CFG_PRINT_TEXT_BLOCKS = 0x80
DEFAULT_CONFIG = (
    CFG_ECR_PRINTS_PAYMENT
    | CFG_ECR_PRINTS_ADMIN
    | CFG_INTERMEDIATE_STATUS
    | CFG_ECR_CONTROLS_PAYMENT
    | CFG_ECR_CONTROLS_ADMIN
)


class Registration(msgspec.Struct, frozen=True, kw_only=True):
    password: str = "000000"
    config_byte: int = DEFAULT_CONFIG
    currency: str | None = "EUR"
    service_byte: int | None = None

    def encode(self) -> bytes:
        data = encode_password(self.password) + bytes((self.config_byte,))
        if self.currency is not None:
            data += currency_code(self.currency)
            if self.service_byte is not None:
                data += bytes((0x03, self.service_byte))
        return encode_apdu(0x06, 0x00, data)


class Authorization(msgspec.Struct, frozen=True):
    amount: int
    currency: str | None = None

    def encode(self) -> bytes:
        data = b"\x04" + encode_amount(self.amount)
        if self.currency is not None:
            data += b"\x49" + currency_code(self.currency)
        return encode_apdu(0x06, 0x01, data)


class Reversal(msgspec.Struct, frozen=True):
    receipt_no: int
    password: str = "000000"

    def encode(self) -> bytes:
        return encode_apdu(0x06, 0x30, encode_password(self.password) + b"\x87" + bcd_encode(self.receipt_no, 2))


class Refund(msgspec.Struct, frozen=True):
    amount: int
    currency: str | None = None
    password: str = "000000"

    def encode(self) -> bytes:
        data = encode_password(self.password) + b"\x04" + encode_amount(self.amount)
        if self.currency is not None:
            data += b"\x49" + currency_code(self.currency)
        return encode_apdu(0x06, 0x31, data)


class EndOfDay(msgspec.Struct, frozen=True):
    password: str = "000000"

    def encode(self) -> bytes:
        return encode_apdu(0x06, 0x50, encode_password(self.password))


class RepeatReceipt(msgspec.Struct, frozen=True):
    """06 20: the PT repeats its last stored receipt, sending the Status-Information of the last
    transaction first; the driver's way of asking "what was your last transaction?"."""

    password: str = "000000"

    def encode(self) -> bytes:
        return encode_apdu(0x06, 0x20, encode_password(self.password))


class StatusEnquiry(msgspec.Struct, frozen=True):
    password: str | None = None

    def encode(self) -> bytes:
        return encode_apdu(0x05, 0x01, b"" if self.password is None else encode_password(self.password))


class Ack(msgspec.Struct, frozen=True):
    def encode(self) -> bytes:
        return encode_apdu(0x80, 0x00)


class Nack(msgspec.Struct, frozen=True):
    code: int

    def encode(self) -> bytes:
        return encode_apdu(0x84, self.code)


ACK_APDU = Ack().encode()

# -- messages: PT -> ECR ----------------------------------------------------------------------------


class CardTotal(msgspec.Struct, frozen=True):
    card: str
    count: int
    amount: int


TOTAL_GROUPS = ("girocard", "JCB", "Eurocard", "American Express", "Visa", "Diners", "remaining")


def decode_totals(value: bytes) -> tuple[int | None, int | None, tuple[CardTotal, ...]]:
    """BMP 60 (individual totals): (first receipt no, last receipt no, per-group totals)."""
    if len(value) < 4 or (len(value) - 4) % 7:
        raise BitmapError(f"individual totals of {len(value)} bytes")
    first, last = bcd_decode(value[0:2]), bcd_decode(value[2:4])
    groups: list[CardTotal] = []
    for i, pos in enumerate(range(4, len(value), 7)):
        name = TOTAL_GROUPS[i] if i < len(TOTAL_GROUPS) else f"group {i + 1}"
        groups.append(CardTotal(name, value[pos], bcd_decode(value[pos + 1 : pos + 7])))
    return first, last, tuple(groups)


def encode_totals(first: int, last: int, groups: list[tuple[int, int]]) -> bytes:
    """BMP 60 value from (count, amount) per group in TOTAL_GROUPS order. For simulators."""
    out = bcd_encode(first, 2) + bcd_encode(last, 2)
    for count, amount in groups:
        out += bytes((count,)) + encode_amount(amount)
    return out


class StatusInformation(msgspec.Struct, frozen=True, kw_only=True):
    """04 0F: a transaction's result. Only masked card data is ever kept (see the module docstring)."""

    result_code: int | None = None
    amount: int | None = None
    currency: str | None = None
    trace: str | None = None  # 6 digits: the PT's transaction number
    receipt_no: int | None = None
    turnover_no: int | None = None
    time: str | None = None  # HHMMSS
    date: str | None = None  # MMDD
    masked_pan: str = ""
    auth_code: str = ""  # BMP 3B
    card_type: int | None = None  # BMP 8A
    card_name: str = ""  # BMP 8B
    payment_type: int | None = None
    terminal_id: str = ""
    vu_number: str = ""
    additional_text: str = ""
    totals: tuple[CardTotal, ...] = ()  # BMP 60 (end-of-day)

    @property
    def card(self) -> str:
        if self.card_name:
            return self.card_name
        if self.card_type is not None:
            return CARD_TYPES.get(self.card_type, f"card type {self.card_type}")
        return ""

    def encode(self, *, pan: str | None = None) -> bytes:
        """The APDU. For simulators: `pan` overrides the card number sent in BMP 22 (a terminal may
        send it in full; ours never keeps one)."""
        out = bytearray()
        if self.result_code is not None:
            out += bytes((0x27, self.result_code))
        if self.amount is not None:
            out += b"\x04" + encode_amount(self.amount)
        if self.trace is not None:
            out += b"\x0b" + bcd_encode(int(self.trace), 3)
        if self.time is not None:
            out += b"\x0c" + bcd_encode(int(self.time), 3)
        if self.date is not None:
            out += b"\x0d" + bcd_encode(int(self.date), 2)
        number = self.masked_pan if pan is None else pan
        if number:
            value = encode_pan(number)
            out += b"\x22" + _llvar(len(value), 2) + value
        if self.payment_type is not None:
            out += bytes((0x19, self.payment_type))
        if self.terminal_id:
            out += b"\x29" + bcd_encode(int(self.terminal_id), 4)
        if self.vu_number:
            out += b"\x2a" + self.vu_number.encode(TEXT_ENCODING).ljust(15)[:15]
        if self.auth_code:
            out += b"\x3b" + self.auth_code.encode(TEXT_ENCODING).ljust(8, b"\x00")[:8]
        if self.currency is not None:
            out += b"\x49" + currency_code(self.currency)
        if self.receipt_no is not None:
            out += b"\x87" + bcd_encode(self.receipt_no, 2)
        if self.turnover_no is not None:
            out += b"\x88" + bcd_encode(self.turnover_no, 3)
        if self.card_type is not None:
            out += bytes((0x8A, self.card_type))
        if self.card_name:
            name = self.card_name.encode(TEXT_ENCODING)
            out += b"\x8b" + _llvar(len(name), 2) + name
        if self.additional_text:
            text = self.additional_text.encode(TEXT_ENCODING)
            out += b"\x3c" + _llvar(len(text), 3) + text
        if self.totals:
            groups = [(t.count, t.amount) for t in self.totals]
            value = encode_totals(self.receipt_no or 0, self.receipt_no or 0, groups)
            out += b"\x60" + _llvar(len(value), 3) + value
        return encode_apdu(0x04, 0x0F, bytes(out))

    @classmethod
    def decode(cls, data: bytes) -> StatusInformation:
        fields: dict[str, object] = {}
        for bmp, value in iter_bitmaps(data):
            known = _STATUS_FIELDS.get(bmp)
            if known is not None:  # everything else (track data, expiry date, TLV ...) is skipped unread
                name, read = known
                fields[name] = read(value)
        return cls(**fields)  # type: ignore[arg-type]


def _first_byte(value: bytes) -> int:
    return value[0]


# The Status-Information bitmaps we read: bitmap -> (field, how its value reads).
_STATUS_FIELDS: dict[int, tuple[str, Callable[[bytes], object]]] = {
    0x27: ("result_code", _first_byte),
    0x04: ("amount", bcd_decode),
    0x49: ("currency", currency_alpha),
    0x0B: ("trace", bcd_digits),
    0x87: ("receipt_no", bcd_decode),
    0x88: ("turnover_no", bcd_decode),
    0x0C: ("time", bcd_digits),
    0x0D: ("date", bcd_digits),
    0x22: ("masked_pan", decode_pan),
    0x3B: ("auth_code", _text),
    0x8A: ("card_type", _first_byte),
    0x8B: ("card_name", _text),
    0x19: ("payment_type", _first_byte),
    0x29: ("terminal_id", bcd_digits),
    0x2A: ("vu_number", _text),
    0x3C: ("additional_text", _text),
    0x60: ("totals", lambda value: decode_totals(value)[2]),
}


class IntermediateStatus(msgspec.Struct, frozen=True):
    code: int
    timeout: int | None = None  # seconds the PT may stay silent now, if it says

    @property
    def text(self) -> str:
        return INTERMEDIATE_TEXTS.get(self.code, f"status {self.code:02X}")

    def encode(self) -> bytes:
        return encode_apdu(0x04, 0xFF, bytes((self.code,)) + (b"" if self.timeout is None else bytes((self.timeout,))))


class Completion(msgspec.Struct, frozen=True, kw_only=True):
    status_byte: int | None = None
    terminal_id: str = ""
    currency: str | None = None
    sw_version: str | None = None  # only in the answer to a Status-Enquiry
    terminal_status: int | None = None  # idem; 0 = ready

    def encode(self) -> bytes:
        if self.sw_version is not None:
            text = self.sw_version.encode(TEXT_ENCODING)
            data = _llvar(len(text), 3) + text + bytes((self.terminal_status or 0,))
            return encode_apdu(0x06, 0x0F, data)
        out = bytearray()
        if self.status_byte is not None:
            out += bytes((0x19, self.status_byte))
        if self.terminal_id:
            out += b"\x29" + bcd_encode(int(self.terminal_id), 4)
        if self.currency is not None:
            out += b"\x49" + currency_code(self.currency)
        return encode_apdu(0x06, 0x0F, bytes(out))

    @classmethod
    def decode(cls, data: bytes) -> Completion:
        if data and data[0] >> 4 == 0xF:  # Status-Enquiry form: <sw-version LLL-var> <status>
            if len(data) < 3:
                raise BitmapError("completion cut short")
            n = _llvar_length(data[:3])
            if len(data) < 3 + n + 1:
                raise BitmapError("completion cut short")
            return cls(sw_version=_text(data[3 : 3 + n]), terminal_status=data[3 + n])
        fields: dict[str, object] = {}
        for bmp, value in iter_bitmaps(data):
            if bmp == 0x19:
                fields["status_byte"] = value[0]
            elif bmp == 0x29:
                fields["terminal_id"] = bcd_digits(value)
            elif bmp == 0x49:
                fields["currency"] = currency_alpha(value)
        return cls(**fields)  # type: ignore[arg-type]


class Abort(msgspec.Struct, frozen=True):
    result_code: int | None = None

    def encode(self) -> bytes:
        return encode_apdu(0x06, 0x1E, b"" if self.result_code is None else bytes((self.result_code,)))


class PrintLine(msgspec.Struct, frozen=True):
    text: str
    attribute: int = 0

    def encode(self) -> bytes:
        return encode_apdu(0x06, 0xD1, bytes((self.attribute,)) + self.text.encode(TEXT_ENCODING))


class PrintTextBlock(msgspec.Struct, frozen=True):
    lines: tuple[str, ...]

    def encode(self) -> bytes:
        inner = b"".join(
            b"\x07" + _ber_encode_length(len(b)) + b for b in (s.encode(TEXT_ENCODING) for s in self.lines)
        )
        tlv = b"\x25" + _ber_encode_length(len(inner)) + inner
        return encode_apdu(0x06, 0xD3, b"\x06" + _ber_encode_length(len(tlv)) + tlv)

    @classmethod
    def decode(cls, data: bytes) -> PrintTextBlock:
        lines: list[str] = []
        for bmp, value in iter_bitmaps(data):
            if bmp == 0x06:
                lines += [_text(v) for tag, v in tlv_items(value) if tag == 0x07]
        return cls(tuple(lines))


class Unsupported(msgspec.Struct, frozen=True):
    """A command the other side may send that we do not implement; answered with 84 83 00."""

    cls: int
    ins: int


TerminalMessage = (
    Ack | Nack | StatusInformation | IntermediateStatus | Completion | Abort | PrintLine | PrintTextBlock | Unsupported
)
EcrCommand = (
    Registration
    | Authorization
    | Reversal
    | Refund
    | EndOfDay
    | RepeatReceipt
    | StatusEnquiry
    | Ack
    | Nack
    | Unsupported
)


def decode_message(apdu: Apdu) -> TerminalMessage:
    """A message from the PT. Raises ZvtError when its content cannot be decoded."""
    cls, ins, data = apdu.cls, apdu.ins, apdu.data
    if cls == 0x80:
        return Ack()
    if cls == 0x84:
        return Ack() if ins == 0 else Nack(ins)
    if (cls, ins) == (0x04, 0x0F):
        return StatusInformation.decode(data)
    if (cls, ins) == (0x04, 0xFF):
        if not data:
            raise ZvtError("intermediate status without a status byte")
        return IntermediateStatus(data[0], data[1] if len(data) > 1 and data[1] != 0x06 else None)
    if (cls, ins) == (0x06, 0x0F):
        return Completion.decode(data)
    if (cls, ins) == (0x06, 0x1E):
        return Abort(data[0] if data else None)
    if (cls, ins) == (0x06, 0xD1):
        if not data:
            raise ZvtError("print line without an attribute byte")
        return PrintLine(_text(data[1:]), data[0])
    if (cls, ins) == (0x06, 0xD3):
        return PrintTextBlock.decode(data)
    return Unsupported(cls, ins)


def _amount_and_currency(data: bytes, start: int) -> tuple[int | None, str | None]:
    amount: int | None = None
    currency: str | None = None
    for bmp, value in iter_bitmaps(data, start):
        if bmp == 0x04:
            amount = bcd_decode(value)
        elif bmp == 0x49:
            currency = currency_alpha(value)
    return amount, currency


def _password(data: bytes) -> str:
    if len(data) < 3:
        raise ZvtError("password missing")
    return bcd_digits(data[:3])


def decode_command(apdu: Apdu) -> EcrCommand:
    """A command from the ECR (what a simulated PT needs). Raises ZvtError when it cannot be decoded."""
    cls, ins, data = apdu.cls, apdu.ins, apdu.data
    if cls == 0x80:
        return Ack()
    if cls == 0x84:
        return Ack() if ins == 0 else Nack(ins)
    if (cls, ins) == (0x06, 0x00):
        if len(data) < 4:
            raise ZvtError("registration without password and config byte")
        currency = currency_alpha(data[4:6]) if len(data) >= 6 else None
        service = data[7] if len(data) >= 8 and data[6] == 0x03 else None
        return Registration(password=_password(data), config_byte=data[3], currency=currency, service_byte=service)
    if (cls, ins) == (0x06, 0x01):
        amount, currency = _amount_and_currency(data, 0)
        if amount is None:
            raise ZvtError("authorization without an amount")
        return Authorization(amount, currency)
    if (cls, ins) == (0x06, 0x30):
        receipt = next((bcd_decode(v) for b, v in iter_bitmaps(data, 3) if b == 0x87), None)
        if receipt is None:
            raise ZvtError("reversal without a receipt number")
        return Reversal(receipt, _password(data))
    if (cls, ins) == (0x06, 0x31):
        amount, currency = _amount_and_currency(data, 3)
        if amount is None:
            raise ZvtError("refund without an amount")
        return Refund(amount, currency, _password(data))
    if (cls, ins) == (0x06, 0x50):
        return EndOfDay(_password(data))
    if (cls, ins) == (0x06, 0x20):
        return RepeatReceipt(_password(data))
    if (cls, ins) == (0x05, 0x01):
        return StatusEnquiry(_password(data) if data else None)
    return Unsupported(cls, ins)


def describe(apdu: Apdu) -> str:
    """A log-safe description: the control field and the length, never the content."""
    return f"{apdu.cls:02X} {apdu.ins:02X} ({len(apdu.data)} bytes)"
