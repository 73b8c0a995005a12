"""Card payment terminals: one interface for the lanes (`PaymentTerminal`) and the ZVT driver behind it.

A payment is money, so the driver is built around three rules:

1. Never recorded as paid without an approval. "approved" is returned only when the terminal sent a
   Status-Information with result code 00 for the requested amount (and currency) *and* then ended the
   exchange with Completion. Everything else that ends cleanly is "declined" (the terminal said no) or
   "aborted" (nothing was booked: the customer or cashier cancelled, the terminal refused the command,
   or the command never left the till).

2. Never taken twice. Once the authorization command has started to leave the till, any failure (the
   connection drops, the terminal goes silent, the caller's own deadline fires) makes the outcome
   "unknown", never "declined": the customer may have been charged. The terminal object then refuses
   authorize/refund/reverse/end_of_day with Rejected("payment_unknown") until `last_transaction()` has
   asked the terminal and settled it. An approved result is also remembered by its `reference`: asking
   again for a reference that was approved returns that approval instead of charging again.

3. The terminal is the authority. `last_transaction()` sends ZVT "Repeat Receipt" (06 20), to which the
   terminal answers with the Status-Information of its last transaction. (05 01 Status-Enquiry reports
   the terminal's state, not a transaction's, so it cannot settle anything.) Whether that last
   transaction is the one in doubt is decided against the trace number of the terminal's last transaction
   *before* the attempt (`prior_txn`, learnt with the same command just before a payment when not already
   known): the same trace means the attempt left nothing on the terminal ("aborted"); a newer one with the
   same amount is the attempt (approved or declined by its result code). Anything less clear stays
   "unknown", for a person to decide with the terminal's printed journal (`abandon_unknown`), because a
   guess either way is a double charge or an unpaid sale. The reasoning needs the terminal to be driven by
   this till alone: the default config byte forbids starting payments or administration on the
   terminal's keypad.

Calls are served one at a time; a call while another runs is refused at once with Rejected
("terminal_busy"), never queued (a queued second authorization is exactly how a double click charges
twice). Callers bound every call with trio.fail_after; the driver's own time limits (acknowledgement,
silence between the terminal's messages) are constructor settings.

The actor: `run` owns one connection (TCP to the terminal's ECR port, or a serial line with ZVT framing),
publishes online/busy/offline on the health board, and raises TerminalOffline when the connection is lost
or abandoned, so the devices supervisor reconnects with backoff. A transaction that ended abnormally
always abandons its connection: whatever the terminal still sends about it must not be read as the
answer to the next command.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import ClassVar, Literal, Protocol

import msgspec
import trio

from devices.serialport import SerialSettings
from devices.zvt import (
    ABORTED_BY_USER,
    ACK,
    ACK_APDU,
    DEFAULT_CONFIG,
    FUNCTION_NOT_POSSIBLE,
    NAK,
    TCP_PORT,
    Abort,
    Ack,
    Apdu,
    ApduReader,
    Authorization,
    CardTotal,
    Completion,
    EndOfDay,
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
    currency_code,
    decode_apdu,
    decode_message,
    frame,
    result_text,
)
from runtime.health import HealthBoard
from runtime.mailbox import Rejected

log = logging.getLogger(__name__)

Outcome = Literal["approved", "declined", "aborted", "unknown"]
Kind = Literal["payment", "reversal", "refund", "end_of_day"]


class PaymentResult(msgspec.Struct, frozen=True, kw_only=True):
    """One payment attempt's outcome, as the journal records it. Never holds a full card number."""

    outcome: Outcome
    amount: int  # minor units
    currency: str
    kind: Kind = "payment"
    reference: str = ""  # the till's own reference for the attempt
    terminal_txn: str = ""  # the terminal's trace number for this transaction ("" if none was seen)
    receipt_no: int | None = None  # the terminal's receipt number (what a reversal names)
    prior_txn: str | None = None  # for "unknown": the terminal's last trace before the attempt, if known
    masked_pan: str = ""
    auth_code: str = ""
    card_type: str = ""
    terminal_id: str = ""
    result_code: int | None = None
    message: str = ""
    print_lines: tuple[str, ...] = ()

    @property
    def settled(self) -> bool:
        return self.outcome != "unknown"


class Report(msgspec.Struct, frozen=True, kw_only=True):
    """The terminal's end-of-day: what it submitted to the acquirer."""

    ok: bool
    currency: str
    total: int = 0
    count: int = 0
    totals: tuple[CardTotal, ...] = ()
    terminal_id: str = ""
    terminal_txn: str = ""
    result_code: int | None = None
    message: str = ""
    print_lines: tuple[str, ...] = ()


class TerminalStatus(msgspec.Struct, frozen=True):
    ready: bool
    code: int | None
    sw_version: str = ""


class TerminalOffline(ConnectionError):
    """The connection to the terminal could not be made or was lost: `run` raises it, the supervisor
    backs off and reconnects."""


class TerminalUnavailable(Rejected):
    """A call that moves no money could not be done because the terminal is unreachable right now."""

    def __init__(self, message: str) -> None:
        super().__init__("terminal_offline", message)


class PaymentTerminal(Protocol):
    """What a lane needs from a card terminal, whatever protocol it speaks (ZVT here; nexo could follow).

    Money calls return a PaymentResult and never raise for a terminal problem; they raise Rejected for
    requests refused before anything was sent ("payment_unknown", "terminal_busy", "bad_request").
    """

    name: str

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None: ...

    async def register(self) -> None: ...

    async def authorize(self, amount: int, currency: str, *, reference: str) -> PaymentResult: ...

    async def reverse(self, result: PaymentResult) -> PaymentResult: ...

    async def refund(self, amount: int, currency: str, *, reference: str) -> PaymentResult: ...

    async def last_transaction(self) -> PaymentResult | None: ...

    async def end_of_day(self) -> Report: ...

    @property
    def unresolved(self) -> PaymentResult | None: ...

    @property
    def baseline(self) -> str | None: ...

    def adopt_unknown(self, result: PaymentResult) -> None: ...

    def abandon_unknown(self, reason: str) -> PaymentResult: ...


# -- transports -------------------------------------------------------------------------------------


class ZvtTransport(Protocol):
    serial: ClassVar[bool]

    def describe(self) -> str: ...

    async def connect(self) -> trio.abc.Stream: ...


@dataclass(frozen=True)
class ZvtTcp:
    """A terminal on the network: bare APDUs over TCP, port 20007 unless configured otherwise."""

    host: str
    port: int = TCP_PORT
    serial: ClassVar[bool] = False

    def describe(self) -> str:
        return f"tcp {self.host}:{self.port}"

    async def connect(self) -> trio.abc.Stream:
        return await trio.open_tcp_stream(self.host, self.port)


@dataclass(frozen=True)
class ZvtSerial:
    """A terminal on a serial line: DLE STX framing with CRC and ACK/NAK (9600 8N2 unless configured)."""

    line: SerialSettings
    serial: ClassVar[bool] = True

    def describe(self) -> str:
        return self.line.describe()

    async def connect(self) -> trio.abc.Stream:
        return await self.line.usually(stopbits=2).open()


# -- one connection ---------------------------------------------------------------------------------


class _LinkLost(Exception):
    pass


class _NotDelivered(Exception):
    """Serial only: the terminal answered every attempt to send a frame with NAK, so it has not got it."""


class _Silence(Exception):
    pass


class _ProtocolError(Exception):
    pass


class _Undecodable(msgspec.Struct, frozen=True):
    cls: int
    ins: int
    reason: str


class _Link:
    """One connection. A pump task reads everything the terminal sends: on a serial line it answers each
    frame with ACK or NAK at once and keeps the ACK/NAK bytes that answer ours; the APDUs go to an inbox."""

    def __init__(self, stream: trio.abc.Stream, *, serial: bool, frame_timeout: float, retries: int) -> None:
        self.stream = stream
        self.serial = serial
        self.frame_timeout = frame_timeout
        self.retries = retries
        self.lost: str | None = None
        self.lost_event = trio.Event()
        self.bad_frames = 0
        self.resent = 0
        self._send_lock = trio.Lock()
        self._inbox_send, self._inbox = trio.open_memory_channel[Apdu](math.inf)
        self._replies: deque[str] = deque()
        self._replied = trio.Event()

    def lose(self, reason: str) -> None:
        if self.lost is None:
            self.lost = reason
            self.lost_event.set()
            self._inbox_send.close()
            self._replied.set()

    def check(self) -> None:
        if self.lost is not None:
            raise _LinkLost(self.lost)

    async def pump(self) -> None:
        framer = SerialFramer() if self.serial else None
        reader = ApduReader()
        try:
            while True:
                data = await self.stream.receive_some(4096)
                if not data:
                    self.lose("connection closed by the terminal")
                    return
                if framer is None:
                    for apdu in reader.feed(data):
                        self._deliver(apdu)
                    continue
                for item in framer.feed(data):
                    if isinstance(item, FrameError):
                        self.bad_frames += 1
                        log.warning("zvt: damaged frame (%s), answered with NAK", item.reason)
                        await self._write(bytes((NAK,)))
                    elif item.kind == "data":
                        await self._write(bytes((ACK,)))
                        try:
                            self._deliver(decode_apdu(item.apdu))
                        except ZvtError as exc:
                            log.warning("zvt: frame without a valid APDU: %s", exc)
                    else:
                        self._replies.append(item.kind)
                        self._replied.set()
        except _LinkLost:
            pass
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self.lose(f"{type(exc).__name__}: {exc}")

    def _deliver(self, apdu: Apdu) -> None:
        try:
            self._inbox_send.send_nowait(apdu)
        except trio.ClosedResourceError:
            pass  # lost meanwhile; nobody will read it

    def drain(self) -> int:
        count = 0
        while True:
            try:
                self._inbox.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                return count
            count += 1

    async def receive(self) -> Apdu:
        try:
            return await self._inbox.receive()
        except trio.EndOfChannel:
            raise _LinkLost(self.lost or "connection lost") from None

    async def _write(self, data: bytes) -> None:
        async with self._send_lock:
            self.check()
            try:
                await self.stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                self.lose(f"{type(exc).__name__}: {exc}")
                raise _LinkLost(self.lost) from exc

    async def send(self, apdu: bytes) -> None:
        """Send one APDU; on a serial line, until the terminal ACKs its frame (repeated on NAK or silence,
        at most `retries` times)."""
        if not self.serial:
            await self._write(apdu)
            return
        data = frame(apdu)
        naks = 0
        attempts = 1 + self.retries
        for attempt in range(attempts):
            if attempt:
                self.resent += 1
            self._replies.clear()
            await self._write(data)
            reply = await self._reply()
            if reply == "ack":
                return
            if reply == "nak":
                naks += 1
            log.warning("zvt: frame %s (attempt %d of %d)", reply or "not answered", attempt + 1, attempts)
        if naks == attempts:
            raise _NotDelivered(f"the terminal refused the frame {attempts} times (NAK)")
        self.lose(f"no ACK for a frame after {attempts} attempts")
        raise _LinkLost(self.lost)

    async def _reply(self) -> str | None:
        with trio.move_on_after(self.frame_timeout):
            while not self._replies:
                self.check()
                self._replied = trio.Event()
                await self._replied.wait()
            self.check()
            return self._replies.popleft()
        self.check()
        return None


@dataclass
class _Exchange:
    """What the terminal said during one command, filled in as it arrives."""

    sent: bool = False  # bytes of the command may have reached the terminal
    nack: int | None = None
    status: StatusInformation | None = None
    status_error: str = ""
    statuses: list[int] = field(default_factory=list)  # intermediate status codes
    lines: list[str] = field(default_factory=list)
    completion: Completion | None = None
    abort: Abort | None = None
    broken: str = ""  # why it did not end normally


# -- the resolution of an unknown outcome (pure) ----------------------------------------------------


def _by_code(code: int) -> Outcome:
    return "approved" if code == 0 else "aborted" if code == ABORTED_BY_USER else "declined"


def resolve(pending: PaymentResult, last: StatusInformation | None) -> tuple[Outcome | None, str]:
    """Settle an unknown attempt from the terminal's report of its last transaction: the outcome, or
    None when the report does not prove it either way, with the reason in words."""
    if last is None:
        return None, "the terminal did not report a last transaction"
    trace = last.trace
    if trace is None:
        return None, "the terminal's last transaction has no trace number"
    if pending.terminal_txn:  # the attempt's own Status-Information arrived before the failure
        if trace != pending.terminal_txn:
            return None, f"the terminal's last transaction is {trace}, not this attempt's {pending.terminal_txn}"
    elif pending.prior_txn is None:
        return None, (
            f"the terminal's last transaction before this attempt is not known, so its last transaction "
            f"{trace} cannot be told apart from an older one"
        )
    elif trace == pending.prior_txn:
        return (
            "aborted",
            f"the terminal's last transaction is still {trace}, from before this attempt: nothing was booked",
        )
    if last.totals:
        return None, f"the terminal's last transaction {trace} is an end-of-day"
    if last.amount != pending.amount or (last.currency is not None and last.currency != pending.currency):
        return None, f"the terminal's last transaction {trace} is over a different amount"
    if last.result_code is None:
        return None, f"the terminal's last transaction {trace} has no result code"
    outcome = _by_code(last.result_code)
    return outcome, f"the terminal's last transaction {trace} is this attempt: {result_text(last.result_code)}"


def _details(status: StatusInformation) -> dict[str, object]:
    return {
        "terminal_txn": status.trace or "",
        "receipt_no": status.receipt_no,
        "masked_pan": status.masked_pan,
        "auth_code": status.auth_code,
        "card_type": status.card,
        "terminal_id": status.terminal_id,
        "result_code": status.result_code,
    }


# -- the driver -------------------------------------------------------------------------------------


def _approval_key(unresolved: PaymentResult) -> tuple[str, str]:
    """Where an attempt in doubt is remembered once it settles approved, so a retry of it (same kind and
    reference) gets that approval back; a reversal is never retried that way, so it has no key."""
    return ("", "") if unresolved.kind == "reversal" else (unresolved.kind, unresolved.reference)


class ZvtTerminal:
    """A ZVT payment terminal (the ECR side). See the module docstring for the rules it keeps.

    Health entry `name`: online | busy | offline; `detail` says what it is doing and whether a payment
    is in doubt. `status_listener` hears the terminal's intermediate status texts ("insert card") during
    a transaction, for the till to show. `unresolved` restores an attempt that was still unknown when the
    process stopped (from the journal), so it is settled before anything else happens.
    """

    def __init__(
        self,
        name: str,
        transport: ZvtTransport,
        health: HealthBoard,
        *,
        password: str = "000000",
        currency: str = "EUR",
        config_byte: int = DEFAULT_CONFIG,
        connect_timeout: float = 5.0,
        connect_wait: float = 5.0,  # how long a call waits for the connection to come (back)
        ack_timeout: float = 5.0,  # the terminal's 80 00 00 / 84 xx to a command
        message_timeout: float = 120.0,  # silence between the terminal's messages during a transaction
        frame_timeout: float = 2.0,  # serial: the ACK/NAK byte after a frame
        frame_retries: int = 3,
        remember: int = 1000,  # approvals kept by reference for duplicate detection
        status_listener: Callable[[str], None] | None = None,
        unresolved: PaymentResult | None = None,
    ) -> None:
        currency_code(currency)  # fails early for a currency without an ISO number
        self.name = name
        self.password = password
        self.currency = currency
        self.config_byte = config_byte
        self.connect_timeout = connect_timeout
        self.connect_wait = connect_wait
        self.ack_timeout = ack_timeout
        self.message_timeout = message_timeout
        self.frame_timeout = frame_timeout
        self.frame_retries = frame_retries
        self.terminal_id = ""
        self._transport = transport
        self._health = health
        self._listener = status_listener
        self._remember_max = remember
        self._approved: OrderedDict[tuple[str, str], PaymentResult] = OrderedDict()
        self._unresolved = unresolved if unresolved is not None and unresolved.outcome == "unknown" else None
        self._unresolved_key = ("", "") if self._unresolved is None else _approval_key(self._unresolved)
        self._baseline: str | None = None  # the terminal's last trace, when known for sure
        self._link: _Link | None = None
        self._link_lot = trio.lowlevel.ParkingLot()
        self._lock = trio.Lock()
        self._doing = ""

    # -- state --------------------------------------------------------------------------------------

    @property
    def unresolved(self) -> PaymentResult | None:
        """The attempt whose outcome is unknown; while set, money calls are refused."""
        return self._unresolved

    @property
    def baseline(self) -> str | None:
        """The terminal's last trace number when known for sure (None: `last_transaction()` learns it).
        A till that saves its attempt before authorizing saves this with it, so a restart can settle it."""
        return self._baseline

    def adopt_unknown(self, result: PaymentResult) -> None:
        """Take over an attempt that was in flight when the process stopped (from the till's saved state):
        money calls are refused until `last_transaction()` settles it. Ignored while one is already held."""
        if self._unresolved is None and result.outcome == "unknown":
            self._unresolved = result
            self._unresolved_key = _approval_key(result)
            self._publish()

    @property
    def online(self) -> bool:
        return self._link is not None and self._link.lost is None

    @property
    def link_stats(self) -> dict[str, int]:
        link = self._link
        return {"bad_frames": link.bad_frames, "resent": link.resent} if link is not None else {}

    # -- the actor ----------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """One connection's life: ready once connected; raises TerminalOffline when it is lost."""
        where = self._transport.describe()
        try:
            with trio.fail_after(self.connect_timeout):
                stream = await self._transport.connect()
        except (OSError, trio.TooSlowError) as exc:
            error = TerminalOffline(f"cannot connect to {where}: {type(exc).__name__}: {exc}")
            self._offline(error)
            raise error from exc
        link = _Link(
            stream, serial=self._transport.serial, frame_timeout=self.frame_timeout, retries=self.frame_retries
        )
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(link.pump)
                self._link = link
                self._link_lot.unpark_all()
                log.info("terminal %s: connected (%s)", self.name, where)
                task_status.started()
                self._publish()
                await link.lost_event.wait()
                nursery.cancel_scope.cancel()
        finally:
            link.lose("connection closed")  # for a cancelled run too: a transaction in flight sees it
            if self._link is link:
                self._link = None
            await trio.aclose_forcefully(stream)
        error = TerminalOffline(f"{where}: {link.lost}")
        self._offline(error)
        raise error

    def _offline(self, error: TerminalOffline) -> None:
        log.warning("terminal %s: offline: %s", self.name, error)
        self._health.set(
            self.name, "offline", error=f"TerminalOffline: {error}", detail=self._detail(f"offline: {error}")
        )

    def _detail(self, head: str) -> str:
        if self._unresolved is not None:
            p = self._unresolved
            return f"{head}; payment {p.reference or '?'} over {p.amount} {p.currency} is unknown: resolve it"
        return head

    def _publish(self) -> None:
        if not self.online:
            state, head = "offline", "offline"
        elif self._doing:
            state, head = "busy", f"busy: {self._doing}"
        else:
            state, head = "online", f"online at {self._transport.describe()}"
        self._health.set(self.name, state, detail=self._detail(head))

    async def _wait_link(self) -> _Link | None:
        with trio.move_on_after(self.connect_wait):
            while self._link is None or self._link.lost is not None:
                await self._link_lot.park()
        link = self._link
        return link if link is not None and link.lost is None else None

    @asynccontextmanager
    async def _operation(self, what: str) -> AsyncIterator[None]:
        try:
            self._lock.acquire_nowait()
        except trio.WouldBlock:
            raise Rejected("terminal_busy", f"terminal {self.name} is busy: {self._doing}") from None
        try:
            self._doing = what
            self._publish()
            yield
        finally:
            self._doing = ""
            self._lock.release()
            self._publish()

    def _refuse_while_unknown(self) -> None:
        p = self._unresolved
        if p is not None:
            raise Rejected(
                "payment_unknown",
                f"the outcome of payment {p.reference or '?'} over {p.amount} {p.currency} is unknown: "
                "ask the terminal for its last transaction first",
            )

    # -- one command --------------------------------------------------------------------------------

    async def _next(self, link: _Link, wait: float) -> object:
        with trio.move_on_after(wait):
            apdu = await link.receive()
            try:
                return decode_message(apdu)
            except ZvtError as exc:
                return _Undecodable(apdu.cls, apdu.ins, str(exc))
        raise _Silence(f"the terminal said nothing for {wait:g} s")

    async def _exchange(self, link: _Link, command: bytes, ex: _Exchange) -> None:
        """Send a command and follow the terminal's messages to Completion or Abort, acknowledging each.
        Expected failures end up in `ex.broken` and abandon the connection; _NotDelivered propagates
        with the connection intact; anything else (cancellation) abandons the connection and propagates."""
        try:
            await self._converse(link, command, ex)
        except _NotDelivered:
            raise
        except (_LinkLost, _Silence, _ProtocolError) as exc:
            ex.broken = str(exc) or type(exc).__name__
            link.lose(f"abandoned: {ex.broken}")
        except BaseException:
            ex.broken = "cancelled by the caller"
            link.lose("abandoned: the caller gave up on the transaction")
            raise

    async def _converse(self, link: _Link, command: bytes, ex: _Exchange) -> None:
        stale = link.drain()
        if stale:
            log.warning("terminal %s: discarded %d stale messages", self.name, stale)
        link.check()
        ex.sent = True
        await link.send(command)
        reply = await self._next(link, self.ack_timeout)
        if isinstance(reply, Nack):
            ex.nack = reply.code
            return
        if not isinstance(reply, Ack):
            raise _ProtocolError(f"expected an acknowledgement, got {type(reply).__name__}")
        wait = self.message_timeout
        while True:
            message = await self._next(link, wait)
            wait = self.message_timeout
            answer = ACK_APDU
            if isinstance(message, StatusInformation):
                ex.status = message
            elif isinstance(message, IntermediateStatus):
                ex.statuses.append(message.code)
                if message.timeout:
                    wait = max(wait, float(message.timeout))
                self._heard(message.text)
            elif isinstance(message, PrintLine):
                ex.lines.append(message.text)
            elif isinstance(message, PrintTextBlock):
                ex.lines.extend(message.lines)
            elif isinstance(message, Completion):
                ex.completion = message
            elif isinstance(message, Abort):
                ex.abort = message
            elif isinstance(message, _Undecodable):
                log.warning(
                    "terminal %s: %02X %02X undecodable: %s", self.name, message.cls, message.ins, message.reason
                )
                if (message.cls, message.ins) == (0x04, 0x0F):
                    ex.status_error = message.reason
                elif (message.cls, message.ins) == (0x06, 0x0F):
                    ex.completion = Completion()
            elif isinstance(message, Unsupported):
                log.info("terminal %s: unsupported %02X %02X refused", self.name, message.cls, message.ins)
                answer = Nack(FUNCTION_NOT_POSSIBLE).encode()
            else:  # a stray acknowledgement: nothing to answer
                continue
            try:
                await link.send(answer)
            except _NotDelivered as exc:  # the command itself was delivered: this is no "nothing was sent"
                raise _ProtocolError(f"cannot acknowledge the terminal's message: {exc}") from exc
            if ex.completion is not None or ex.abort is not None:
                return

    def _heard(self, text: str) -> None:
        self._health.set(self.name, "busy", detail=self._detail(f"busy: {self._doing}: {text}"))
        if self._listener is not None:
            try:
                self._listener(text)
            except Exception:
                log.exception("terminal %s: status listener failed", self.name)

    async def _query_last(self, link: _Link) -> tuple[StatusInformation | None, _Exchange]:
        ex = _Exchange()
        try:
            await self._exchange(link, RepeatReceipt(self.password).encode(), ex)
        except _NotDelivered as exc:
            ex.broken = str(exc)
        status = ex.status if ex.completion is not None and not ex.status_error and not ex.broken else None
        return status, ex

    # -- money --------------------------------------------------------------------------------------

    def _check(self, amount: int, currency: str) -> None:
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise Rejected("bad_request", f"amount must be a positive number of minor units, not {amount!r}")
        try:
            currency_code(currency)
        except ZvtError as exc:
            raise Rejected("bad_request", str(exc)) from None

    def _remembered(self, key: tuple[str, str]) -> PaymentResult | None:
        if not key[1]:
            return None
        result = self._approved.get(key)
        if result is not None:
            log.warning("terminal %s: %s %s was already approved; not charging again", self.name, *key)
        return result

    def _remember(self, key: tuple[str, str], result: PaymentResult) -> None:
        if not key[1] or result.outcome != "approved":
            return
        self._approved[key] = result
        while len(self._approved) > self._remember_max:
            self._approved.popitem(last=False)

    async def authorize(self, amount: int, currency: str, *, reference: str) -> PaymentResult:
        """Take a card payment of `amount` minor units. Bound it with trio.fail_after (the customer needs
        time for the card and the PIN): a deadline that fires after the command left leaves the
        payment "unknown" (see `unresolved`)."""
        self._check(amount, currency)
        command = Authorization(amount, currency).encode()
        return await self._money("payment", ("payment", reference), command, amount, currency, reference)

    async def refund(self, amount: int, currency: str, *, reference: str) -> PaymentResult:
        """Pay `amount` back to a card (ZVT Refund, 06 31). Same rules as authorize."""
        self._check(amount, currency)
        command = Refund(amount, currency, self.password).encode()
        return await self._money("refund", ("refund", reference), command, amount, currency, reference)

    async def reverse(self, result: PaymentResult) -> PaymentResult:
        """Cancel an approved payment of this terminal (ZVT Reversal, 06 30, by its receipt number);
        approved means the money went back."""
        if result.kind != "payment" or result.outcome != "approved" or result.receipt_no is None:
            raise Rejected("not_reversible", "only an approved payment with a receipt number can be reversed")
        key = ("reversal", f"{result.terminal_id}:{result.receipt_no}")
        command = Reversal(result.receipt_no, self.password).encode()
        return await self._money("reversal", key, command, result.amount, result.currency, result.reference)

    async def _money(
        self, kind: Kind, key: tuple[str, str], command: bytes, amount: int, currency: str, reference: str
    ) -> PaymentResult:
        """Every money command's one path: refused while a payment is in doubt, answered from memory
        when `key` was approved already (a retry never charges twice), else sent and concluded."""
        self._refuse_while_unknown()
        done = self._remembered(key)
        if done is not None:
            return done
        async with self._operation(f"{kind} {reference}".strip()):
            base = PaymentResult(outcome="aborted", kind=kind, amount=amount, currency=currency, reference=reference)
            link = await self._wait_link()
            if link is None:
                return msgspec.structs.replace(base, message=f"terminal {self.name} is offline; nothing was sent")
            prior = self._baseline
            if prior is None:
                last, _ = await self._query_last(link)
                prior = last.trace if last is not None else None
                if link.lost is not None:
                    return msgspec.structs.replace(base, message=f"terminal {self.name} went offline; nothing was sent")
            pending = msgspec.structs.replace(base, outcome="unknown", prior_txn=prior)
            self._baseline = None  # from here on the terminal's last transaction may change
            ex = _Exchange()
            try:
                await self._exchange(link, command, ex)
            except _NotDelivered as exc:
                return msgspec.structs.replace(base, message=f"{exc}; nothing was started")
            except BaseException:
                if ex.sent:
                    self._set_unresolved(self._unknown(pending, ex, "the caller gave up during the transaction"), key)
                raise
            result = self._conclude(pending, ex)
            if result.outcome == "unknown":
                self._set_unresolved(result, key)
            else:
                if result.outcome == "approved" and result.terminal_txn:
                    self._baseline = result.terminal_txn
                log.info("terminal %s: %s %s %d %s: %s", self.name, kind, reference, amount, currency, result.outcome)
            self._remember(key, result)
            return result

    def _unknown(self, pending: PaymentResult, ex: _Exchange, why: str) -> PaymentResult:
        details = _details(ex.status) if ex.status is not None else {}
        return msgspec.structs.replace(
            pending,
            message=f"outcome unknown: {why}; ask the terminal for its last transaction before anything else",
            print_lines=tuple(ex.lines),
            **details,
        )

    def _conclude(self, pending: PaymentResult, ex: _Exchange) -> PaymentResult:
        lines = tuple(ex.lines)
        if ex.nack is not None:
            return msgspec.structs.replace(
                pending,
                outcome="aborted",
                prior_txn=None,
                result_code=ex.nack,
                message=f"the terminal refused the command: {result_text(ex.nack)}",
            )
        if ex.broken:
            return self._unknown(pending, ex, ex.broken)
        if ex.status_error:
            return self._unknown(pending, ex, f"its result could not be read ({ex.status_error})")
        status = ex.status
        if ex.abort is not None:
            if status is not None and status.result_code == 0:
                return self._unknown(pending, ex, "the terminal approved and then aborted")
            code = status.result_code if status is not None and status.result_code is not None else ex.abort.result_code
            outcome: Outcome = "aborted" if code == ABORTED_BY_USER else "declined"
            details = _details(status) if status is not None else {}
            details["result_code"] = code
            return msgspec.structs.replace(
                pending,
                outcome=outcome,
                prior_txn=None,
                message=result_text(code),
                print_lines=lines,
                **details,
            )
        assert ex.completion is not None
        if status is None or status.result_code is None:
            return self._unknown(pending, ex, "the terminal completed without a result")
        if status.result_code != 0:
            return msgspec.structs.replace(
                pending,
                outcome=_by_code(status.result_code),
                prior_txn=None,
                message=result_text(status.result_code),
                print_lines=lines,
                **_details(status),
            )
        if status.amount is not None and status.amount != pending.amount:
            return self._unknown(pending, ex, f"the terminal approved {status.amount}, not {pending.amount}")
        if status.currency is not None and status.currency != pending.currency:
            return self._unknown(pending, ex, f"the terminal approved in {status.currency}, not {pending.currency}")
        if status.terminal_id:
            self.terminal_id = status.terminal_id
        return msgspec.structs.replace(
            pending,
            outcome="approved",
            prior_txn=None,
            message="approved",
            print_lines=lines,
            **_details(status),
        )

    def _set_unresolved(self, result: PaymentResult, key: tuple[str, str]) -> None:
        self._unresolved = result
        self._unresolved_key = key
        log.error(
            "terminal %s: %s %s over %d %s: %s", self.name, result.kind, result.reference, result.amount,
            result.currency, result.message,
        )  # fmt: skip
        self._publish()

    # -- settling -----------------------------------------------------------------------------------

    async def last_transaction(self) -> PaymentResult | None:
        """Ask the terminal for its last transaction. While an attempt is unknown, this settles it: the
        attempt's result comes back (still "unknown" if the terminal's answer does not prove the outcome,
        with the reason in `message`). Otherwise the terminal's last transaction as it reports it, or None
        if it reports none. Raises TerminalUnavailable when the terminal cannot be asked."""
        async with self._operation("last transaction"):
            link = await self._wait_link()
            if link is None:
                raise TerminalUnavailable(f"terminal {self.name} is offline")
            status, ex = await self._query_last(link)
            if ex.broken:
                raise TerminalUnavailable(f"terminal {self.name}: {ex.broken}")
            if status is not None and status.trace:
                self._baseline = status.trace
            pending = self._unresolved
            lines = tuple(ex.lines)
            if pending is None:
                return None if status is None else self._reported(status, lines)
            outcome, why = resolve(pending, status)
            if outcome is None:
                self._unresolved = msgspec.structs.replace(pending, message=f"still unknown: {why}")
                log.error("terminal %s: %s", self.name, self._unresolved.message)
                return self._unresolved
            assert status is not None
            details = _details(status) if outcome != "aborted" else {}
            result = msgspec.structs.replace(
                pending,
                outcome=outcome,
                message=f"resolved: {why}",
                print_lines=pending.print_lines + lines if outcome != "aborted" else pending.print_lines,
                **details,
            )
            log.warning("terminal %s: unknown %s %s resolved: %s", self.name, result.kind, result.reference, outcome)
            self._unresolved = None
            self._remember(self._unresolved_key, result)
            return result

    def _reported(self, status: StatusInformation, lines: tuple[str, ...]) -> PaymentResult:
        code = status.result_code
        return PaymentResult(
            outcome="unknown" if code is None else _by_code(code),
            kind="end_of_day" if status.totals else "payment",
            amount=status.amount or 0,
            currency=status.currency or self.currency,
            message=f"the terminal's last transaction: {result_text(code)}",
            print_lines=lines,
            **_details(status),  # type: ignore[arg-type]
        )

    def abandon_unknown(self, reason: str) -> PaymentResult:
        """A person decided to stop waiting for the terminal to settle the unknown attempt (it is broken,
        replaced, or its printed journal was checked by hand). Returns the attempt, still "unknown", with
        the decision in `message`, for the journal; money calls are allowed again."""
        pending = self._unresolved
        if pending is None:
            raise Rejected("nothing_unresolved", "no payment is in doubt")
        if not reason.strip():
            raise Rejected("bad_request", "say why the unknown payment is set aside")
        self._unresolved = None
        self._baseline = None
        log.error("terminal %s: unknown %s %s set aside: %s", self.name, pending.kind, pending.reference, reason)
        self._publish()
        return msgspec.structs.replace(pending, message=f"{pending.message}; set aside by staff: {reason}")

    # -- administration -----------------------------------------------------------------------------

    async def register(self) -> None:
        """Registration (06 00): the password, the config byte (who prints, who controls) and the
        currency. Raises Rejected("registration_refused") if the terminal says no."""
        command = Registration(password=self.password, config_byte=self.config_byte, currency=self.currency).encode()
        async with self._operation("registration"):
            ex = await self._admin(command)
            if ex.nack is not None or ex.abort is not None:
                code = ex.nack if ex.nack is not None else ex.abort.result_code if ex.abort else None
                raise Rejected("registration_refused", f"terminal {self.name}: {result_text(code)}")
            if ex.completion is not None and ex.completion.terminal_id:
                self.terminal_id = ex.completion.terminal_id

    async def status_enquiry(self) -> TerminalStatus:
        """Status-Enquiry (05 01): is the terminal ready (terminal status code 00)?"""
        async with self._operation("status enquiry"):
            ex = await self._admin(StatusEnquiry(self.password).encode())
            done = ex.completion
            if done is None:
                code = ex.nack if ex.nack is not None else ex.abort.result_code if ex.abort else None
                return TerminalStatus(False, code)
            return TerminalStatus(done.terminal_status == 0, done.terminal_status, done.sw_version or "")

    async def end_of_day(self) -> Report:
        """End-of-Day (06 50): the terminal submits its batch to the acquirer and reports the totals.
        Refused while a payment is unknown: it would replace the evidence of that payment."""
        self._refuse_while_unknown()
        async with self._operation("end of day"):
            self._baseline = None
            ex = await self._admin(EndOfDay(self.password).encode())
            status = ex.status
            code = status.result_code if status is not None else ex.nack if ex.nack is not None else None
            if code is None and ex.abort is not None:
                code = ex.abort.result_code
            ok = ex.completion is not None and status is not None and status.result_code == 0
            totals = status.totals if status is not None else ()
            return Report(
                ok=ok,
                currency=(status.currency if status is not None else None) or self.currency,
                total=(status.amount if status is not None else None) or sum(t.amount for t in totals),
                count=sum(t.count for t in totals),
                totals=totals,
                terminal_id=status.terminal_id if status is not None else "",
                terminal_txn=(status.trace if status is not None else None) or "",
                result_code=code,
                message=result_text(code),
                print_lines=tuple(ex.lines),
            )

    async def _admin(self, command: bytes) -> _Exchange:
        link = await self._wait_link()
        if link is None:
            raise TerminalUnavailable(f"terminal {self.name} is offline")
        ex = _Exchange()
        try:
            await self._exchange(link, command, ex)
        except _NotDelivered as exc:
            raise TerminalUnavailable(f"terminal {self.name}: {exc}") from None
        if ex.broken:
            raise TerminalUnavailable(f"terminal {self.name}: {ex.broken}; the outcome is not known")
        return ex
