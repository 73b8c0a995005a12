"""ESC/POS for receipt printers, sans IO: receipts and commands out as bytes, status bytes in as facts.

python-escpos does the encoding (its printer profiles know each model's code pages, cutter and 2D-code
support) through its `Dummy` printer, which only collects bytes. Everything here is pure, so the printer
actor, the tests and the benchmark all use the same functions and nothing here can block a Trio task.

Status bits follow Epson's "DLE EOT n" (real-time status transmission). Every reply byte has fixed bits
(bit 0 off, bit 1 on, bit 4 on, bit 7 off); a byte without them is not a status reply, whatever else it
is (line noise, a byte of something else), and `parse_status` refuses it with `StatusByteError`.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import msgspec
from escpos.capabilities import CAPABILITIES
from escpos.printer import Dummy

from protocol import discounting
from protocol.frames import RecordLine, SaleRecord
from protocol.money import format_money, format_rate
from protocol.text import plain
from runtime.clock import store_zone

DEFAULT_PROFILE = "TM-T88V"
ESC, DLE = b"\x1b", b"\x10"


class ReceiptLayout(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """How this till's receipts look: part of the till configuration, so unknown keys are refused."""

    store_name: str = ""  # empty: the store id from the record
    header: list[str] = []
    footer: list[str] = msgspec.field(default_factory=lambda: ["Thank you for shopping with us"])
    width: int = 42  # characters per line in font A (42 on 80 mm paper at 512 dots)
    barcode: Literal["qr", "code128", "none"] = "qr"  # carries the receipt id, for returns
    timezone: str = "UTC"  # an IANA zone: receipts show the store's local time


class Discount(msgspec.Struct, frozen=True):
    """A reduction to show on the receipt, each on its own line: the journal record's manual discounts
    (SaleRecord.discounts, mapped by `record_discounts`) unless the caller passes others.

    `amount` is positive (what the customer saved; negative: a price raised by hand) and already included
    in the record's total; line amounts are before discount. `line` is the RecordLine.no it belongs to, or
    None for the whole receipt.
    """

    label: str
    amount: int
    line: int | None = None


def record_discounts(record: SaleRecord) -> list[Discount]:
    """The record's discounts as receipt lines, worded by protocol.discounting (a sale's under its TOTAL's
    lines, a line's under that line), with what each took off as journaled."""
    return [
        Discount(label=plain(discounting.label(d, record.currency)), amount=d.amount, line=d.line or None)
        for d in record.discounts
    ]


TRAINING = "TRAINING / ÖVNING"  # the banner of a training sale's receipt (storenode.lanes.training)


def receipt_id(record: SaleRecord) -> str:
    """The id printed in the receipt's code and typed or scanned for a return: unique per store."""
    return f"{record.store}-{record.lane}-{record.receipt_no}"


def profile_names() -> list[str]:
    """Printer models python-escpos knows (e.g. TM-T88V, TM-T20II, TSP600), for configuration checks."""
    return sorted(CAPABILITIES["profiles"])


class _Sheet:
    """python-escpos's Dummy with the few moves a receipt needs, so the layout reads like the receipt."""

    def __init__(self, profile: str, width: int) -> None:
        if profile not in CAPABILITIES["profiles"]:
            raise ValueError(f"unknown printer profile {profile!r}; known: {', '.join(profile_names())}")
        self.p = Dummy(profile=profile)
        self.width = width
        # One code page for the whole receipt, chosen once: python-escpos's per-character code-page
        # search (its "magic" text encoder) costs ~1.3 ms a receipt, paid by every lane's sale close.
        # PC850 has the Nordic and Western European letters; a profile without it falls back to magic.
        pages = self.p.profile.get_code_pages()
        self._codec = "cp850" if "CP850" in pages else ""
        self._page = int(pages.get("CP850", 0))

    def init(self) -> None:
        """Reset the printer (ESC @), which also resets the code page, then choose ours."""
        self.p.hw("INIT")
        if self._codec:
            self.p._raw(b"\x1bt" + bytes([self._page]))

    def style(self, *, align: str = "left", bold: bool = False, tall: bool = False) -> None:
        self.p.set_with_default(align=align, bold=bold, double_height=tall)

    def _text(self, text: str) -> None:
        text = plain(text)  # master data's text: never printer commands (a drawer kick in a name)
        if self._codec:
            self.p._raw(text.encode(self._codec, "replace") + b"\n")
        else:
            self.p.textln(text)

    def line(self, text: str = "") -> None:
        self._text(text[: self.width])

    def row(self, left: str, right: str) -> None:
        self._text(_row(left, right, self.width))

    def rule(self) -> None:
        self._text("-" * self.width)

    def code(self, kind: str, data: str) -> None:
        if kind == "qr":
            self.p.qr(data, native=True, size=6)
        elif kind == "code128":
            # The hardware path of Escpos.barcode(), which would also print a line to stdout on every call.
            self.p._hw_barcode("{B" + data, "CODE128", height=64, width=2, pos="BELOW", function_type="B")


class _TextSheet:
    """The same layout as plain text, for the till's screen: what the customer's paper says, line for line."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.lines: list[str] = []
        self._align = "left"

    def style(self, *, align: str = "left", bold: bool = False, tall: bool = False) -> None:
        self._align = align

    def line(self, text: str = "") -> None:
        text = plain(text)[: self.width]
        self.lines.append(text.center(self.width).rstrip() if self._align == "center" else text)

    def row(self, left: str, right: str) -> None:
        self.lines.append(plain(_row(left, right, self.width)))

    def rule(self) -> None:
        self.lines.append("-" * self.width)

    def code(self, kind: str, data: str) -> None:
        """The code itself is for scanners; the line above it already names the receipt for people."""


def _row(left: str, right: str, width: int) -> str:
    room = max(1, width - len(right) - 1)
    return f"{left[:room]:<{room}} {right}"[:width]


class _Money:
    __slots__ = ("currency",)

    def __init__(self, currency: str) -> None:
        self.currency = currency

    def __call__(self, amount: int) -> str:
        return format_money(amount, self.currency)


def _line_rows(sheet: _Sheet | _TextSheet, line: RecordLine, discounts: Sequence[Discount], money: _Money) -> None:
    if line.weight_g:
        sheet.line(line.name)
        kg = f"{line.qty * line.weight_g / 1000:.3f}"
        sheet.row(f"  {kg} kg x {money(line.unit_price)}/kg", money(line.amount))
    elif line.qty == 1:
        sheet.row(line.name, money(line.amount))
    else:
        sheet.line(line.name)
        sheet.row(f"  {line.qty} x {money(line.unit_price)}", money(line.amount))
    for discount in discounts:
        sheet.row(f"  {discount.label}", money(-discount.amount))


def _void_row(sheet: _Sheet | _TextSheet, line: RecordLine, discounts: Sequence[Discount], money: _Money) -> None:
    """A voided line is printed as scanned (above) and then taken off again here, by what it came to.

    Why both and not neither: the printed rows must add up to TOTAL, and either choice does that, but the
    till showed the cashier and the customer the line and its void, and the journal keeps both; a receipt
    that says the same lets the customer (and an auditor holding the receipt) see that something was scanned
    and taken off, instead of a receipt that silently differs from what the screen showed. The amount is the
    line's own negated (never a minus sign glued before a formatted amount: a returned line's void is
    positive, as it adds back what the return took off)."""
    sheet.row(f"VOID {line.name}", money(-(line.amount - sum(d.amount for d in discounts))))


def encode_receipt(
    layout: ReceiptLayout,
    record: SaleRecord,
    *,
    profile: str = DEFAULT_PROFILE,
    discounts: Sequence[Discount] = (),
    copy: int = 0,
) -> bytes:
    """The whole receipt as ESC/POS, from the journal record alone, so a reprint is identical.

    `copy` (its number, from 1) marks a reprint asked for by staff (a receipt the customer already had);
    the printer actor never sets it, see `devices.receipt_printer` for why a re-send after a fault is not a copy.
    """
    sheet = _Sheet(profile, layout.width)
    sheet.init()
    _lay_out(sheet, layout, record, discounts or record_discounts(record), copy)
    sheet.p.cut(mode="PART")
    return bytes(sheet.p.output)


def receipt_text(
    layout: ReceiptLayout, record: SaleRecord, *, discounts: Sequence[Discount] = (), copy: int = 0
) -> str:
    """The receipt as the till shows it: the printed layout, without the printer."""
    sheet = _TextSheet(layout.width)
    _lay_out(sheet, layout, record, discounts or record_discounts(record), copy)
    return "\n".join(sheet.lines) + "\n"


def _local_time(epoch_ms: int, zone: str) -> str:
    return dt.datetime.fromtimestamp(epoch_ms / 1000, store_zone(zone)).strftime("%Y-%m-%d %H:%M %Z")


def _lay_out(
    s: _Sheet | _TextSheet, layout: ReceiptLayout, record: SaleRecord, discounts: Sequence[Discount], copy: int
) -> None:
    """The one receipt layout, drawn on paper (ESC/POS) or on the till's screen (text)."""
    money = _Money(record.currency)
    if copy:  # issue 14, receipts: a copy says so in both languages a Swedish audit reads, and which copy it is
        s.style(align="center", bold=True, tall=True)
        s.line("COPY / KOPIA")
        s.style(align="center")
        s.line(f"copy {int(copy)} / kopia {int(copy)}")
    if record.training:  # issue 14: a training sale's receipt must never pass for a real one
        s.style(align="center", bold=True, tall=True)
        s.line(TRAINING)
    s.style(align="center", bold=True, tall=True)
    s.line(layout.store_name or record.store)
    s.style(align="center")
    for text in layout.header:
        s.line(text)
    s.style()
    when = _local_time(record.closed_at, layout.timezone)
    s.row(f"Lane {record.lane}", f"Receipt {record.receipt_no}")
    s.row(when, f"Operator {record.operator}")
    if record.salesperson:
        s.row("", f"Salesperson {record.salesperson}")
    if record.kind == "cancel":
        s.style(align="center", bold=True)
        s.line("*** SALE CANCELLED - NOT A RECEIPT ***")
        s.style()
    if record.refund_of:
        s.line(f"Refund of receipt {record.refund_of}")
    s.rule()
    by_line: dict[int | None, list[Discount]] = {}
    for discount in discounts:
        by_line.setdefault(discount.line, []).append(discount)
    for line in record.lines:
        _line_rows(s, line, by_line.get(line.no, []), money)
        if line.voided:
            _void_row(s, line, by_line.get(line.no, []), money)
    for discount in by_line.get(None, []):
        s.row(discount.label, f"-{money(discount.amount)}")
    s.rule()
    s.style(bold=True, tall=True)
    s.row("TOTAL", f"{record.currency} {money(record.total)}")
    s.style()
    if discounts:
        s.row("You saved", money(sum(d.amount for d in discounts)))
    if record.kind == "sale" and record.total < 0:
        _paid_back_rows(s, record, money)
    elif record.kind == "sale":
        if record.rounding:
            s.row("Cash rounding", money(record.rounding))
            s.row("To pay", money(record.total + record.rounding))
        for tender in record.tenders:
            if tender.currency != record.currency:  # foreign cash: what was handed over, and its value here
                foreign = format_money(tender.amount, tender.currency)
                s.row(f"{tender.kind.capitalize()} {tender.currency} {foreign}", money(tender.sale_value))
            else:
                s.row(tender.kind.capitalize(), money(tender.amount))
        _card_slips(s, record)
        s.style(bold=True)
        s.row("Change", money(record.change))
        s.style()
    if record.vat:
        s.line()
        s.row("VAT", f"{'Net':>9} {'VAT':>9} {'Gross':>9}")
        for vat in record.vat:
            amounts = f"{money(vat.gross - vat.vat):>9} {money(vat.vat):>9} {money(vat.gross):>9}"
            s.row(f"  {format_rate(vat.rate)}", amounts)
    s.line()
    if record.training:
        s.style(align="center", bold=True)
        s.line(f"*** {TRAINING} - NOT A RECEIPT ***")
    s.style(align="center")
    for text in layout.footer:
        s.line(text)
    rid = receipt_id(record)
    s.line(f"Receipt {rid}")
    s.code(layout.barcode, rid)
    s.style()


def _card_slips(s: _Sheet | _TextSheet, record: SaleRecord) -> None:
    for paid in record.payments:  # the card slip's essentials; the number is masked by the driver
        if paid.method == "card" and paid.outcome == "approved":
            s.line(f"  {paid.kind} {paid.masked_pan} auth {paid.auth_code or '-'} trace {paid.terminal_txn}")


def _paid_back_rows(s: _Sheet | _TextSheet, record: SaleRecord, money: _Money) -> None:
    """A sale that pays money back (a refund, or returns worth more than what was bought) says what went back
    and how, in positive amounts: "Change 25.00" under a cash tender of 0.00 read as a sale's change."""
    if record.rounding:
        s.row("Cash rounding", money(record.rounding))
    s.row("To pay back", money(-(record.total + record.rounding)))
    for tender in record.tenders:
        if tender.kind == "cash" and tender.amount == 0:
            continue  # the cash paid back is the change, below
        if tender.currency != record.currency:
            foreign = format_money(-tender.amount, tender.currency)
            s.row(f"{tender.kind.capitalize()} {tender.currency} {foreign} paid back", money(-tender.sale_value))
        elif tender.amount < 0:
            s.row(f"{tender.kind.capitalize()} paid back", money(-tender.amount))
        else:
            s.row(tender.kind.capitalize(), money(tender.amount))
    _card_slips(s, record)
    if record.change:
        s.style(bold=True)
        s.row("Cash paid back", money(record.change))
        s.style()


def interrupted_notice(*, profile: str = DEFAULT_PROFILE, width: int = 42) -> bytes:
    """Sent before a job is re-sent after a fault: ends whatever half-printed piece is on the paper with a
    note and a cut, so the torn-off fragment says what it is and the full receipt starts on fresh paper.

    The leading NULs complete a command the printer may have been in the middle of when the connection
    dropped (its parser does not know the connection changed), so our ESC @ is read as a command.
    """
    s = _Sheet(profile, width)
    s.p._raw(b"\x00" * 8)
    s.init()
    s.p.ln()
    s.style(align="center", bold=True)
    s.line("*** PRINT INTERRUPTED ***")
    s.line("receipt reprinted below")
    s.style()
    s.p.cut(mode="PART")
    return bytes(s.p.output)


def drawer_kick(pin: int = 0, *, on_ms: int = 100, off_ms: int = 100) -> bytes:
    """ESC p m t1 t2: a pulse on the drawer kick-out connector, pin 2 (m=0) or pin 5 (m=1), in 2 ms units.

    Buffered like text, so it fires after everything sent before it (the receipt) is processed; a printer
    that is offline (paper end, cover open) holds it, see `drawer_pulse_now` for that case.
    """
    if pin not in (0, 1):
        raise ValueError(f"drawer pin must be 0 (connector pin 2) or 1 (connector pin 5), got {pin}")
    t1, t2 = min(255, max(1, on_ms // 2)), min(255, max(1, off_ms // 2))
    return ESC + b"p" + bytes((pin, t1, t2))


def drawer_pulse_now(pin: int = 0, *, on_ms: int = 100) -> bytes:
    """DLE DC4 1 m t: the real-time drawer pulse, executed even when the printer is offline (out of paper,
    cover open), so a cashier can still give change while the receipt waits for paper."""
    if pin not in (0, 1):
        raise ValueError(f"drawer pin must be 0 (connector pin 2) or 1 (connector pin 5), got {pin}")
    return DLE + b"\x14\x01" + bytes((pin, min(8, max(1, on_ms // 100))))


class StatusKind(enum.IntEnum):
    PRINTER = 1  # online/offline, drawer sensor
    OFFLINE_CAUSE = 2  # cover, feed button, paper-end stop, error
    ERROR_CAUSE = 3  # which error
    PAPER = 4  # roll paper near-end and end sensors


def status_request(n: int) -> bytes:
    """DLE EOT n: ask for one status byte; real-time, so it is answered even while the printer is offline."""
    kind = StatusKind(n)  # ValueError for anything but 1..4
    return DLE + b"\x04" + bytes((kind,))


class StatusByteError(ValueError):
    """A byte where a status reply was expected, but its fixed bits say it is not one (noise)."""


_FIXED_MASK, _FIXED_VALUE = 0b1001_0011, 0b0001_0010


@dataclass(frozen=True, slots=True)
class PrinterStatus:
    """What the printer said about itself. Fields not covered by a query keep their "all well" default,
    so one byte can be read alone and several are merged with `parse_status(..., into=...)`."""

    online: bool = True  # DLE EOT 1 bit 3
    drawer_pin3_high: bool = False  # DLE EOT 1 bit 2: the drawer sensor; which level means open is per drawer
    cover_open: bool = False  # DLE EOT 2 bit 2
    feed_button: bool = False  # DLE EOT 2 bit 3: paper being fed with the feed button
    paper_end_stop: bool = False  # DLE EOT 2 bit 5: printing stopped because the paper ran out
    error: bool = False  # DLE EOT 2 bit 6
    mechanical_error: bool = False  # DLE EOT 3 bit 2 (recoverable)
    cutter_error: bool = False  # DLE EOT 3 bit 3
    unrecoverable_error: bool = False  # DLE EOT 3 bit 5
    auto_recoverable_error: bool = False  # DLE EOT 3 bit 6 (e.g. head too hot)
    paper_near_end: bool = False  # DLE EOT 4 bits 2-3
    paper_end: bool = False  # DLE EOT 4 bits 5-6

    @property
    def ready(self) -> bool:
        """A job sent now would be printed now (near end still prints)."""
        return self.online and not (self.cover_open or self.paper_end or self.paper_end_stop or self.error)

    @property
    def state(self) -> str:
        """One word for the health board; the first that applies, in the order a person fixes them."""
        if self.cover_open:
            return "cover-open"
        if self.paper_end or self.paper_end_stop:
            return "paper-out"
        if self.error:
            return "error"
        if not self.online:
            return "offline"
        if self.paper_near_end:
            return "paper-low"
        return "ok"

    def describe(self) -> str:
        errors = [
            name
            for name, on in (
                ("mechanical", self.mechanical_error),
                ("cutter", self.cutter_error),
                ("unrecoverable", self.unrecoverable_error),
                ("auto-recoverable", self.auto_recoverable_error),
            )
            if on
        ]
        return self.state + (f" ({', '.join(errors)} error)" if errors else "")


def parse_status(n: int, byte: int, *, into: PrinterStatus | None = None) -> PrinterStatus:
    """The status a DLE EOT n reply byte reports, merged over `into` (only the fields this n covers change).

    Raises StatusByteError for a byte whose fixed bits are wrong: it is not a status reply and must not be
    taken for one (a stray 0x00 read as "online, no error" would print into a closed cover).
    """
    kind = StatusKind(n)
    if not 0 <= byte <= 0xFF or byte & _FIXED_MASK != _FIXED_VALUE:
        raise StatusByteError(f"0x{byte:02x} is not a DLE EOT {n} reply (fixed bits 0,1,4,7 must read 0,1,1,0)")
    base = into if into is not None else PrinterStatus()

    def bit(k: int) -> bool:
        return bool(byte >> k & 1)

    if kind is StatusKind.PRINTER:
        return replace(base, drawer_pin3_high=bit(2), online=not bit(3))
    if kind is StatusKind.OFFLINE_CAUSE:
        return replace(base, cover_open=bit(2), feed_button=bit(3), paper_end_stop=bit(5), error=bit(6))
    if kind is StatusKind.ERROR_CAUSE:
        return replace(
            base,
            mechanical_error=bit(2),
            cutter_error=bit(3),
            unrecoverable_error=bit(5),
            auto_recoverable_error=bit(6),
        )
    return replace(base, paper_near_end=bit(2) or bit(3), paper_end=bit(5) or bit(6))


def status_byte(n: int, status: PrinterStatus) -> int:
    """The reply byte a printer in `status` sends to DLE EOT n: the inverse of parse_status, for simulators."""
    kind = StatusKind(n)
    bits = {
        StatusKind.PRINTER: [(2, status.drawer_pin3_high), (3, not status.online)],
        StatusKind.OFFLINE_CAUSE: [(2, status.cover_open), (3, status.feed_button), (5, status.paper_end_stop),
                                   (6, status.error)],
        StatusKind.ERROR_CAUSE: [(2, status.mechanical_error), (3, status.cutter_error),
                                 (5, status.unrecoverable_error), (6, status.auto_recoverable_error)],
        StatusKind.PAPER: [(2, status.paper_near_end), (3, status.paper_near_end), (5, status.paper_end),
                           (6, status.paper_end)],
    }[kind]  # fmt: skip
    return _FIXED_VALUE | sum(1 << k for k, on in bits if on)


# -- Cash management slips (issue 14, cash): the payout voucher and the cash count slip ---------------------

CASH_TITLES = {
    "payout": "PETTY CASH VOUCHER",
    "float_in": "FLOAT IN",
    "float_out": "FLOAT OUT",
    "drop": "CASH DROP TO SAFE",
    "deposit": "CASH DEPOSIT",
    "nosale": "NO SALE",
    "count": "CASH COUNT",
}


def encode_cash_slip(layout: ReceiptLayout, record: SaleRecord, *, profile: str = DEFAULT_PROFILE) -> bytes:
    """A cash event's slip (a payout's voucher, with a line for the receiver's signature; a float, drop or
    deposit slip to go with the money; a count's expected, counted and difference per tender and currency)
    as ESC/POS, from the journal record alone so a reprint is identical."""
    sheet = _Sheet(profile, layout.width)
    sheet.init()
    _lay_out_cash(sheet, layout, record)
    sheet.p.cut(mode="PART")
    return bytes(sheet.p.output)


def cash_slip_text(layout: ReceiptLayout, record: SaleRecord) -> str:
    """A cash event's slip as the till shows it: the printed layout, without the printer."""
    sheet = _TextSheet(layout.width)
    _lay_out_cash(sheet, layout, record)
    return "\n".join(sheet.lines) + "\n"


def _lay_out_cash(s: _Sheet | _TextSheet, layout: ReceiptLayout, record: SaleRecord) -> None:
    """The one cash slip layout. Every text on it (reason, account, detail) went through `plain` in the
    sheet: a cashier's words never reach the printer as commands (a drawer kick typed as a reason)."""
    event = record.event
    code = event.code if event is not None else ""
    s.style(align="center", bold=True)
    s.line(layout.store_name or record.store)
    if record.training:
        s.line("TRAINING / OVNING - NOT VALID")
    s.style(align="center", bold=True, tall=True)
    s.line(CASH_TITLES.get(code, code.upper()))
    s.style()
    s.row(f"Lane {record.lane}", f"No {record.receipt_no}")
    s.row(_local_time(record.closed_at, layout.timezone), f"Operator {record.operator}")
    s.rule()
    if event is None:
        return
    if event.account:
        s.row("Account", event.account)
    if event.reason:
        s.row("Reason", event.reason)
    for tender in event.amounts:
        amount = format_money(tender.amount, tender.currency)
        if tender.currency != record.currency:
            s.row(f"Cash {tender.currency} {amount}", format_money(tender.sale_value, record.currency))
        else:
            s.row(f"{tender.kind.capitalize()} {tender.currency}", amount)
    if event.counts:
        s.row("", f"{'Expected':>10} {'Counted':>10} {'Diff':>9}")
        for count in event.counts:
            money = _Money(count.currency)
            diff = count.counted - count.expected
            s.row(
                f"{count.tender.capitalize()} {count.currency}",
                f"{money(count.expected):>10} {money(count.counted):>10} {money(diff):>9}",
            )
    if event.detail:
        s.line(event.detail)
    if event.approver:
        s.row("Approved by", event.approver)
    if code == "payout":
        s.line()
        s.line("Received by:")
        s.line()
        s.line("_" * min(30, s.width))
    s.rule()
    s.style(align="center")
    s.line(f"Event {receipt_id(record)}")
    s.style()
