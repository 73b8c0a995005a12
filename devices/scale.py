"""POS scale on the Mettler Toledo 8217 protocol: a frame decoder (sans-IO) and the actor that weighs.

The 8217 "weight only" protocol (the NCI/ECR family's W command, as in the Mettler Toledo service manuals
for the Viva/Ariva/DIVA scales; Odoo's hw_scale driver and Rice Lake's BenchPro manual document the same
framing), serial 9600 baud, 7 data bits, even parity, 1 stop bit:

    host -> scale   W                                   (0x57, no terminator) request the weight
    scale -> host   STX <weight> CR                     a stable, valid weight, e.g. STX "01.234" CR
                    STX ? <status> CR                   no weight: the status byte says why

<weight> is digits with a decimal point, possibly space-padded, in the scale's unit (kg with three
decimals in Europe; some scales append the unit, "KG" or "LB"). Bare digits, with neither a decimal
point nor a unit, are read in the configured unit with `decimals` implied places.

The status byte: bit 0 in motion, bit 1 over capacity, bit 2 under zero (negative), bit 3 outside zero
capture range (zero error), bit 4 centre of zero, bit 5 net weight (some scales: always 1), bit 6 always
1 (keeps the byte printable, never STX or CR), bit 7 parity. Sources: the Mettler Toledo Viva service
manual's 8217 section as cited by Odoo's hw_scale driver (Toledo8217Protocol: 9600 7E1, 'W', weight
regex STX [0-9.]+ CR, status STX ? byte CR, the same bit meanings), and the Rice Lake BenchPro manual's
8217-compatible status table.

A status reply always means "no weight" (the scale only sends one when it cannot give a legal weight), so
the actor turns it into a ScaleError the till can show: motion, over_capacity, under_zero, zero_error, and
zero_weight when the scale simply has nothing on it.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from dataclasses import dataclass
from fractions import Fraction

import trio

from devices.serialport import PortLost, SerialSession, SerialSettings, serial_session
from runtime.health import HealthBoard
from runtime.mailbox import Rejected

log = logging.getLogger(__name__)

STX, CR = 0x02, 0x0D
REQUEST = b"W"
MAX_FRAME = 16  # between STX and CR; the longest legal answer is about 10

MOTION, OVER_CAPACITY, UNDER_ZERO, OUTSIDE_ZERO, CENTRE_OF_ZERO, NET = (1 << n for n in range(6))

_WEIGHT = re.compile(rb" *(-?)(\d+(?:\.\d*)?|\.\d+) *(KG|LB|G)? *N? *", re.IGNORECASE)
_GRAMS_PER = {"kg": Fraction(1000), "g": Fraction(1), "lb": Fraction(45359237, 100000)}


@dataclass(frozen=True, slots=True)
class Reading:
    """A weight the scale sent: it only sends one when it is stable and legal for trade."""

    grams: int
    text: str  # as sent, for logs


@dataclass(frozen=True, slots=True)
class ScaleStatus:
    """The scale's reason for sending no weight."""

    bits: int

    @property
    def motion(self) -> bool:
        return bool(self.bits & MOTION)

    @property
    def over_capacity(self) -> bool:
        return bool(self.bits & OVER_CAPACITY)

    @property
    def under_zero(self) -> bool:
        return bool(self.bits & UNDER_ZERO)

    @property
    def outside_zero(self) -> bool:
        return bool(self.bits & OUTSIDE_ZERO)

    @property
    def centre_of_zero(self) -> bool:
        return bool(self.bits & CENTRE_OF_ZERO)

    def problem(self) -> tuple[str, str]:
        """(code, message) for the till, the condition the cashier must fix first coming first."""
        if self.over_capacity:
            return "over_capacity", "the scale is over capacity: take the item off"
        if self.under_zero:
            return "under_zero", "the scale reads below zero: empty it and zero it"
        if self.outside_zero:
            return "zero_error", "the scale is outside its zero range: empty it and zero it"
        if self.motion:
            return "motion", "the scale is moving: wait until it is steady"
        return "zero_weight", "there is nothing on the scale"


def _to_grams(value: Fraction, unit: str) -> int:
    exact = value * _GRAMS_PER[unit]
    whole = exact.numerator // exact.denominator
    return whole + (1 if (exact - whole) * 2 >= 1 else 0)  # half up; weights are never negative here


class ScaleDecoder:
    """Bytes from the scale in, frames out. Bytes outside STX..CR are line noise and skipped; a frame cut
    short by a new STX, an over-long one, or one that parses as neither weight nor status is dropped with
    a warning. `unit` is the scale's unit when a weight carries none."""

    def __init__(self, *, unit: str = "kg", decimals: int = 3) -> None:
        if unit not in _GRAMS_PER:
            raise ValueError(f"unit must be one of {sorted(_GRAMS_PER)}, not {unit!r}")
        self.unit = unit
        self.decimals = decimals
        self.dropped = 0
        self._buf = bytearray()
        self._in_frame = False

    def reset(self) -> None:
        self._buf.clear()
        self._in_frame = False

    def feed(self, data: bytes) -> list[Reading | ScaleStatus]:
        frames: list[Reading | ScaleStatus] = []
        for byte in data:
            if byte == STX:
                if self._in_frame:
                    self._drop("truncated frame")
                self._in_frame = True
            elif not self._in_frame:
                continue  # noise between frames (or an LF after the CR)
            elif byte == CR:
                frame = self._parse(bytes(self._buf))
                if frame is None:
                    self._drop("unreadable frame")
                else:
                    frames.append(frame)
                self.reset()
            else:
                self._buf.append(byte)
                if len(self._buf) > MAX_FRAME:
                    self._drop("over-long frame")
        return frames

    def _drop(self, why: str) -> None:
        log.warning("scale: %s %r dropped", why, bytes(self._buf))
        self.dropped += 1
        self.reset()

    def _parse(self, body: bytes) -> Reading | ScaleStatus | None:
        if body.startswith(b"?"):
            return ScaleStatus(body[1]) if len(body) == 2 else None
        match = _WEIGHT.fullmatch(body)
        if match is None:
            return None
        sign, number, unit = match.groups()
        if b"." in number or unit:
            value = Fraction(number.decode())
        else:  # bare digits: the scale's configured unit and implied decimals
            value = Fraction(int(number), 10**self.decimals)
        grams = _to_grams(value, unit.decode().lower() if unit else self.unit)
        return Reading(-grams if sign else grams, body.decode("ascii"))


@dataclass(frozen=True, slots=True)
class Weight:
    grams: int


class ScaleError(Rejected):
    """No weight for the till, with a code it can show: motion, over_capacity, under_zero, zero_error,
    zero_weight, no_answer. A Rejected, so it crosses a mailbox to the asker and nothing restarts."""


class _Pending:
    """One W sent; answered by the scale, or with None if the port went away first."""

    __slots__ = ("answered", "frame", "sent_at")

    def __init__(self, sent_at: float) -> None:
        self.sent_at = sent_at
        self.answered = trio.Event()
        self.frame: Reading | ScaleStatus | None = None

    def answer(self, frame: Reading | ScaleStatus | None) -> None:
        self.frame = frame
        self.answered.set()


class _Link:
    """One connection's requests, to pair the scale's answers with them.

    The protocol has no request ids: the scale answers every W once, in order. An answer can come late
    (after its asker gave up) or never (a garbled W, a truncated answer). So a new W is only sent once
    every earlier one has been answered or has been waiting longer than `forget_after`, the longest a
    scale can take to answer at all; after that, the first answer can only be the answer to the new W.
    A late answer is thus thrown away instead of passing for a fresh one (which would weigh what was on
    the scale before), and a lost one costs one wait of `forget_after`, never the pairing of later ones.
    """

    def __init__(self, port: SerialSession, forget_after: float) -> None:
        self.port = port
        self._forget_after = forget_after
        self._owed: deque[_Pending] = deque()

    async def quiet(self) -> None:
        """Wait until no earlier request can still be answered."""
        while self._owed:
            oldest = self._owed[0]
            left = oldest.sent_at + self._forget_after - trio.current_time()
            if left > 0:
                with trio.move_on_after(left):
                    await oldest.answered.wait()
            if self._owed and self._owed[0] is oldest:
                self._owed.popleft()
                if not oldest.answered.is_set():
                    log.info("scale: an answer never came; presumed lost")
                    oldest.answer(None)

    def request(self) -> _Pending:
        pending = _Pending(trio.current_time())
        self._owed.append(pending)
        return pending

    def deliver(self, frame: Reading | ScaleStatus) -> None:
        horizon = trio.current_time() - self._forget_after
        while self._owed and self._owed[0].sent_at < horizon:
            self._owed.popleft().answer(None)
        if not self._owed:
            log.info("scale: unrequested frame %r ignored", frame)
            return
        self._owed.popleft().answer(frame)

    def close(self) -> None:
        while self._owed:
            self._owed.popleft().answer(None)


class Scale:
    """Owns the scale's port; `weigh` asks it for a weight and returns only a fresh, stable, positive one.

    Fresh: every call sends its own W and takes only the answer to that W (see _Link), never a weight
    read before the call. The scale's silence is bounded by `answer_within` (ScaleError "no_answer");
    after an answer went missing, the next call first waits out `forget_after` from that request. The
    caller bounds the whole call with trio.fail_after as usual. Calls are served one at a time.
    """

    def __init__(
        self,
        name: str,
        serial: SerialSettings,
        health: HealthBoard,
        *,
        unit: str = "kg",
        decimals: int = 3,
        answer_within: float = 1.0,
        forget_after: float = 2.0,
    ) -> None:
        if forget_after <= answer_within:
            raise ValueError("forget_after must exceed answer_within, or late answers could pass for fresh")
        self.name = name
        self.serial = serial.usually(bytesize=7, parity="E", stopbits=1)  # the 8217 protocol's 7E1
        self._health = health
        self._unit = unit
        self._decimals = decimals
        self._answer_within = answer_within
        self._forget_after = forget_after
        self._link: _Link | None = None
        self._lock = trio.Lock()

    @property
    def online(self) -> bool:
        return self._link is not None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        decoder = ScaleDecoder(unit=self._unit, decimals=self._decimals)
        async with serial_session(self.name, self.serial, self._health) as port:
            link = self._link = _Link(port, self._forget_after)
            task_status.started()
            port.online()
            try:
                while True:
                    for frame in decoder.feed(await port.receive()):
                        link.deliver(frame)
            finally:
                self._link = None
                link.close()

    async def weigh(self) -> Weight:
        async with self._lock:
            link = self._link
            if link is None:
                raise ScaleError("no_answer", f"scale {self.name} is offline")
            await link.quiet()
            pending = link.request()
            try:
                await link.port.send(REQUEST)
            except (PortLost, trio.ClosedResourceError) as exc:
                raise ScaleError("no_answer", f"scale {self.name} went offline") from exc
            with trio.move_on_after(self._answer_within):
                await pending.answered.wait()
            answered, frame = pending.answered.is_set(), pending.frame
        if not answered:
            raise ScaleError("no_answer", f"scale {self.name} did not answer within {self._answer_within:g} s")
        if frame is None:
            raise ScaleError("no_answer", f"scale {self.name} went offline")
        if isinstance(frame, ScaleStatus):
            raise ScaleError(*frame.problem())
        if frame.grams < 0:
            raise ScaleError("under_zero", "the scale reads below zero: empty it and zero it")
        if frame.grams == 0:
            raise ScaleError("zero_weight", "there is nothing on the scale")
        return Weight(frame.grams)
