"""Customer display (2 x 20 characters, Epson DM-D / ESC/POS display command set) and its actor.

Commands used (Epson DM-D110/DM-D210 command reference; the same subset is emulated by most VFD pole
displays in "Epson mode"): ESC @ initialise, ESC t n character code table, US MD1 overwrite mode,
US C n cursor on/off, CLR clear, US $ x y move the cursor (1-based column and line).

Characters: we select code page PC850 (ESC t 2), which holds the Nordic and Western European letters
(å ä ö æ ø ü é ...). Anything PC850 lacks is transliterated (accents stripped, € -> EUR, typographic
quotes and dashes to ASCII) or shown as "?". Text is made displayable *before* it is fitted into 20
columns, so a transliteration that lengthens a name can never push an amount off the screen. Control
characters in item names become spaces: a name must never be able to send the display a command.

Every frame rewrites both whole lines at fixed positions (no clear), so the customer never sees a blank
flash between items, and a frame is correct whatever the display showed before.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Awaitable, Callable

import trio

from devices.serialport import PortLost, SerialSession, SerialSettings, serial_session
from protocol.text import plain
from runtime.health import HealthBoard

log = logging.getLogger(__name__)

WIDTH = 20
ESC, US, CLR = b"\x1b", b"\x1f", b"\x0c"
CODEPAGE = "cp850"
CODEPAGE_TABLE = 2  # ESC t 2 selects PC850 on Epson DM-D displays

_TRANSLITERATE = {
    "\u20ac": "EUR",  # euro sign: PC850 predates it
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\u2018": "'",  # single quotation marks
    "\u2019": "'",
    "\u201a": ",",
    "\u201c": '"',  # double quotation marks
    "\u201d": '"',
    "\u201e": '"',
    "\u2026": "...",  # ellipsis
    "\u2022": "*",  # bullet
    "\u00a0": " ",  # no-break space
    "\u0152": "OE",
    "\u0153": "oe",
}


def _encodable(ch: str) -> bool:
    try:
        ch.encode(CODEPAGE)
    except UnicodeEncodeError:
        return False
    return True


def displayable(text: str) -> str:
    """`text` using only characters the display can show, one byte per character in PC850."""
    out: list[str] = []
    for ch in plain(text):
        if ch < " " or "\x7f" <= ch < "\xa0":
            out.append(" ")
        elif _encodable(ch):
            out.append(ch)
        elif ch in _TRANSLITERATE:
            out.append(_TRANSLITERATE[ch])
        else:
            base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
            out.append(base if base and all(_encodable(c) and c >= " " for c in base) else "?")
    return "".join(out)


def fit(text: str, width: int = WIDTH) -> str:
    """Left-aligned in exactly `width` columns; a long name is cut, since its start identifies it."""
    return displayable(text)[:width].ljust(width)


def right(amount: str, width: int = WIDTH) -> str:
    """Right-aligned in exactly `width` columns. An amount is never cut (a cut amount is a wrong amount):
    one that does not fit shows as asterisks, like a calculator's overflow."""
    text = displayable(amount).strip()
    return "*" * width if len(text) > width else text.rjust(width)


def pair(label: str, amount: str, width: int = WIDTH) -> str:
    """Label left, amount right on one line; the label gives way to the amount."""
    value = displayable(amount).strip()
    if len(value) > width:
        return "*" * width
    room = width - len(value) - 1
    head = displayable(label)[:room] if room > 0 else ""
    return head.ljust(width - len(value)) + value


def item_lines(name: str, price_text: str) -> tuple[str, str]:
    """The article just scanned: its name above, its price right-aligned below."""
    return fit(name), right(price_text)


def total_lines(total_text: str, *, label: str = "TOTAL") -> tuple[str, str]:
    return fit(label), right(total_text)


def change_lines(
    paid_text: str, change_text: str, *, paid_label: str = "PAID", change_label: str = "CHANGE"
) -> tuple[str, str]:
    return pair(paid_label, paid_text), pair(change_label, change_text)


def initialise() -> bytes:
    """Sent on every (re)connection: a display that was power-cycled has forgotten its code page."""
    return ESC + b"@" + ESC + b"t" + bytes([CODEPAGE_TABLE]) + US + b"\x01" + US + b"C\x00" + CLR


def render(line1: str, line2: str = "") -> bytes:
    """Both lines, each written whole from its first column."""
    top = fit(line1).encode(CODEPAGE)
    bottom = fit(line2).encode(CODEPAGE)
    return US + b"$\x01\x01" + top + US + b"$\x01\x02" + bottom


class CustomerDisplay:
    """Owns the display's port and shows the latest lines asked for.

    `show` never waits: it replaces what is to be shown next, so a slow or absent display never stalls a
    lane, and the customer always ends up seeing the newest state rather than a backlog of old ones. A
    reconnected display is initialised and shown the current lines at once.
    """

    def __init__(self, name: str, serial: SerialSettings, health: HealthBoard) -> None:
        self.name = name
        self.serial = serial.usually()  # 8N1, as Epson DM-D displays ship
        self._health = health
        self._wanted: tuple[str, str] = ("", "")
        self._wake = trio.Event()
        self._lost: PortLost | None = None
        self.frames = 0  # frames written over the actor's lifetime

    @property
    def lines(self) -> tuple[str, str]:
        """What the display shows, or will show as soon as it can."""
        return self._wanted

    def show(self, line1: str, line2: str = "") -> None:
        self._wanted = (line1, line2)
        self._wake.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with serial_session(self.name, self.serial, self._health) as port:
            self._lost = None
            try:
                await port.send(initialise())
            except PortLost as exc:
                self._lost = exc
            else:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._until_lost, self._watch, port, nursery.cancel_scope)
                    task_status.started()
                    port.online()
                    await self._until_lost(self._refresh, port, nursery.cancel_scope)
            raise self._lost or PortLost(f"{self.serial.port}: closed")

    async def _until_lost(
        self,
        part: Callable[[SerialSession], Awaitable[None]],
        port: SerialSession,
        scope: trio.CancelScope,
    ) -> None:
        """Run one half of the actor until the port is lost, then stop the other half too. Losing the port
        is recorded rather than raised, so it leaves the nursery as itself, not in an exception group."""
        try:
            await part(port)
        except PortLost as exc:
            if self._lost is None:
                self._lost = exc
            scope.cancel()

    async def _refresh(self, port: SerialSession) -> None:
        shown: tuple[str, str] | None = None
        while True:
            if self._wanted != shown:
                lines = self._wanted
                await port.send(render(*lines))
                shown = lines
                self.frames += 1
                continue
            self._wake = trio.Event()
            await self._wake.wait()

    async def _watch(self, port: SerialSession) -> None:
        """A display rarely speaks, but reading is how an idle actor notices that it was unplugged."""
        while True:
            await port.receive()  # anything a display sends back is of no use to us
