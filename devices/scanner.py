"""Serial barcode scanner: a line decoder (sans-IO) and the actor that feeds a lane from the port.

A scanner in serial mode sends each barcode as one line of ASCII: optionally an AIM symbology identifier
(ISO/IEC 15424: "]" + code character + modifier, e.g. "]E0" for EAN-13), the data, and a terminator the
scanner is programmed with (CR, LF or CRLF). A line is only trusted whole: a barcode that lost or gained
a byte is a different article, so anything suspicious drops the line rather than repairing it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from devices.serialport import PortLost, SerialSettings, serial_session
from runtime.health import HealthBoard

log = logging.getLogger(__name__)

MAX_LINE = 128  # longer than any 1-D barcode and most retail QR codes; more is a runaway or a noise burst
CR, LF, GS = 0x0D, 0x0A, 0x1D
TERMINATORS = ("auto", "CR", "LF", "CRLF")

# AIM code characters (ISO/IEC 15424) and the modifiers worth naming; other modifiers keep the family name.
_AIM_FAMILY = {
    "A": "Code 39",
    "C": "Code 128",
    "d": "Data Matrix",
    "E": "EAN/UPC",
    "e": "GS1 DataBar",
    "F": "Codabar",
    "G": "Code 93",
    "H": "Code 11",
    "I": "Interleaved 2 of 5",
    "L": "PDF417",
    "M": "MSI",
    "Q": "QR Code",
    "R": "Straight 2 of 5",
    "S": "Industrial 2 of 5",
    "U": "MaxiCode",
    "X": "Other",
    "z": "Aztec",
}
_AIM_EXACT = {
    "E0": "EAN-13",  # also UPC-A and UPC-E, which scanners send expanded to 13 digits
    "E1": "EAN-2 add-on",
    "E2": "EAN-5 add-on",
    "E3": "EAN-13 with add-on",
    "E4": "EAN-8",
    "C1": "GS1-128",
    "d2": "GS1 DataMatrix",
    "Q3": "GS1 QR Code",
}


def aim_symbology(identifier: str) -> str:
    """A readable name for an AIM identifier without its "]" ("E0" -> "EAN-13"); unknown ones as sent."""
    exact = _AIM_EXACT.get(identifier)
    if exact is not None:
        return exact
    family = _AIM_FAMILY.get(identifier[:1])
    return family if family is not None else f"]{identifier}"


@dataclass(frozen=True, slots=True)
class ScanEvent:
    code: str
    symbology: str | None = None  # None when the scanner sends no AIM identifier


def _printable(byte: int) -> bool:
    # GS is FNC1 in GS1-128 and GS1 DataMatrix: the separator after variable-length element strings.
    return 0x20 <= byte <= 0x7E or byte == GS


class ScannerDecoder:
    """Bytes from a scanner in, complete scans out; keeps partial lines across reads.

    Rules, each chosen so a damaged line is never delivered as a different barcode:
    - a line ends at the configured terminator; "auto" accepts CR, LF and CRLF (and LFCR): empty lines
      are ignored, so the LF of a CRLF never becomes a second, empty scan. CR or LF bytes that are not the
      terminator in a fixed mode are ignored (a scanner sending CRLF to a host expecting CR still works);
    - non-printable bytes before a line's first character are idle-line noise and skipped; inside a line
      they mean the line itself was damaged, and it is dropped with a warning;
    - a line longer than `max_line` without a terminator is dropped, and so is everything up to the next
      terminator;
    - if `max_gap` is set and `feed` is given the time, a partial line that waited longer than `max_gap`
      for its next byte is dropped as truncated: a scanner sends a line in one burst, so a pause inside a
      line means its tail was lost, and glueing the next scan onto it would make a wrong code.
    """

    def __init__(
        self,
        terminator: str = "auto",
        aim: bool = False,
        *,
        max_line: int = MAX_LINE,
        max_gap: float | None = 0.25,
    ) -> None:
        if terminator not in TERMINATORS:
            raise ValueError(f"terminator must be one of {TERMINATORS}, not {terminator!r}")
        self.terminator = terminator
        self.aim = aim
        self.max_line = max_line
        self.max_gap = max_gap
        self.dropped = 0  # lines dropped as damaged, over-long or truncated: for health details and tests
        self._buf = bytearray()
        self._tainted = False  # noise inside the current line
        self._overflow = False  # discarding up to the next terminator
        self._pending_cr = False  # CRLF mode: a CR waiting for its LF
        self._last_at: float | None = None

    def reset(self) -> None:
        """Forget any partial line (a new connection starts clean)."""
        self._buf.clear()
        self._tainted = self._overflow = self._pending_cr = False
        self._last_at = None

    def feed(self, data: bytes, now: float | None = None) -> list[ScanEvent]:
        events: list[ScanEvent] = []
        if now is not None:
            if self._midline() and self._last_at is not None and self.max_gap is not None:
                if now - self._last_at > self.max_gap:
                    self._drop("truncated line (no terminator before a pause)")
            self._last_at = now
        for byte in data:
            if self._is_terminator(byte):
                event = self._end_line()
                if event is not None:
                    events.append(event)
            elif byte in (CR, LF):
                continue
            elif self._overflow:
                continue
            elif _printable(byte):
                self._buf.append(byte)
                if len(self._buf) > self.max_line:
                    log.warning("scanner line longer than %d characters without terminator: dropped", self.max_line)
                    self.dropped += 1
                    self._buf.clear()
                    self._tainted = False
                    self._overflow = True
            elif self._buf:
                self._tainted = True
            # else: noise on an idle line, skipped
        return events

    def _midline(self) -> bool:
        return bool(self._buf) or self._tainted or self._overflow or self._pending_cr

    def _is_terminator(self, byte: int) -> bool:
        mode = self.terminator
        if mode == "auto":
            return byte in (CR, LF)
        if mode == "CR":
            return byte == CR
        if mode == "LF":
            return byte == LF
        # CRLF: the CR only arms, the LF completes; anything else after a CR disarms it
        if byte == CR:
            self._pending_cr = True
            return False
        if byte == LF and self._pending_cr:
            self._pending_cr = False
            return True
        self._pending_cr = False
        return False

    def _drop(self, why: str) -> None:
        if self._buf or self._tainted:
            log.warning("scanner %s: %r dropped", why, bytes(self._buf))
            self.dropped += 1
        self._buf.clear()
        self._tainted = self._overflow = self._pending_cr = False

    def _end_line(self) -> ScanEvent | None:
        if self._overflow:
            self._overflow = False
            self._buf.clear()
            return None
        if self._tainted:
            self._drop("line with non-printable bytes")
            return None
        text = self._buf.decode("ascii")
        self._buf.clear()
        if not text:
            return None
        if not self.aim:
            return ScanEvent(text)
        if text.startswith("]"):
            if len(text) <= 3:
                log.warning("scanner line %r: AIM identifier without data, dropped", text)
                self.dropped += 1
                return None
            return ScanEvent(text[3:], aim_symbology(text[1:3]))
        log.debug("scanner line %r has no AIM identifier", text)
        return ScanEvent(text)


class Scanner:
    """Owns one scanner's port and hands each scan to `on_scan`, in order.

    `on_scan` is what a scan means (the integrator sends the lane the same Scan command a till sends);
    it runs in its own task so a slow lane never holds up reading (which would make the decoder's pause
    rule mistake a delay of ours for a truncated line) and its failures never kill the scanner: a lane
    refusing a scan is the lane's business, and restarting the scanner would not change its mind.
    On port loss the actor publishes "offline" and raises PortLost for its supervisor to retry.
    """

    def __init__(
        self,
        name: str,
        serial: SerialSettings,
        health: HealthBoard,
        on_scan: Callable[[ScanEvent], Awaitable[None]],
        *,
        terminator: str = "auto",
        aim: bool = False,
        max_gap: float | None = 0.25,
        backlog: int = 64,
    ) -> None:
        if terminator not in TERMINATORS:
            raise ValueError(f"terminator must be one of {TERMINATORS}, not {terminator!r}")
        self.name = name
        self.serial = serial.usually()  # scanners in serial mode ship 8N1
        self._health = health
        self._on_scan = on_scan
        self._terminator = terminator
        self._aim = aim
        self._max_gap = max_gap
        self._backlog = backlog
        self.scans = 0  # delivered to on_scan over the actor's lifetime

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        decoder = ScannerDecoder(self._terminator, self._aim, max_gap=self._max_gap)
        async with serial_session(self.name, self.serial, self._health) as port:
            lost: PortLost | None = None
            send, receive = trio.open_memory_channel[ScanEvent](self._backlog)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._deliver, receive)
                task_status.started()
                port.online()
                async with send:
                    try:
                        while True:
                            data = await port.receive()
                            for event in decoder.feed(data, trio.current_time()):
                                await send.send(event)
                    except PortLost as exc:
                        lost = exc
            # Raised out here, after the deliverer has handed over every scan read before the loss (they
            # are real scans), and as itself rather than inside the nursery's exception group.
            if lost is not None:
                raise lost

    async def _deliver(self, receive: trio.MemoryReceiveChannel[ScanEvent]) -> None:
        async with receive:
            async for event in receive:
                try:
                    await self._on_scan(event)
                except Exception:
                    log.exception("scanner %s: delivering %r failed", self.name, event.code)
                self.scans += 1
