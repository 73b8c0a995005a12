"""A simulated ZVT payment terminal: TCP on 127.0.0.1 (port 0 by default), or a serial line on a
VirtualPort with the ZVT framing (DLE STX ... CRC, ACK/NAK), for tests, the demo and benchmarks.

It answers what devices/terminal.py sends, the way a terminal does: Registration, Authorization,
Reversal, Refund, End-of-Day, Repeat Receipt (the last transaction's Status-Information, then the receipt
copy) and Status-Enquiry; each command is acknowledged (80 00 00), followed by intermediate status, the
Status-Information, receipt lines (06 D1, or one text block 06 D3 with `text_blocks`) and Completion or
Abort, and the simulator waits for the ECR's acknowledgement of each.

`journal` is what it really did: every booked transaction with its trace and receipt numbers (approved
or declined; a customer abort books nothing). A fault injected with `fail_next` happens at one precise
point of the next money command:

    drop_before_ack             read the command, close the connection, book nothing
    drop_after_ack              acknowledge, send one intermediate status, close; nothing booked
    timeout_after_intermediate  acknowledge, send one intermediate status, then never answer that command
                                again (the next command is served normally); nothing booked
    drop_after_approval         book the approval, close before sending its Status-Information
    drop_after_status           book, send the Status-Information, close before the receipt/Completion

Serial faults: `nak_frames` answers the ECR's next frames with NAK (the ECR must repeat them);
`corrupt_frames` sends its next frames with a wrong CRC (the ECR must NAK them, and it repeats them).
Not simulated: auto-reversal of an unacknowledged Status-Information (a real terminal reverses a booking
whose Status-Information the ECR never acknowledged; this one keeps it, which is the harder case).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Literal

import msgspec
import trio

from devices.sim.pty import VirtualPort
from devices.zvt import (
    ABORTED_BY_USER,
    ACK,
    FUNCTION_NOT_POSSIBLE,
    NAK,
    PROTOCOL_ERROR,
    TOTAL_GROUPS,
    Abort,
    Ack,
    Apdu,
    ApduReader,
    Authorization,
    CardTotal,
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
    ZvtError,
    decode_apdu,
    decode_command,
    frame,
    mask_pan,
)

log = logging.getLogger(__name__)

Fault = Literal[
    "drop_before_ack", "drop_after_ack", "timeout_after_intermediate", "drop_after_approval", "drop_after_status"
]
TxnKind = Literal["payment", "reversal", "refund", "end_of_day"]


class SimTxn(msgspec.Struct, kw_only=True):
    """One transaction the simulator booked."""

    trace: str
    kind: TxnKind
    amount: int
    currency: str
    result_code: int
    receipt_no: int | None = None
    turnover_no: int | None = None
    auth_code: str = ""
    masked_pan: str = ""
    card_type: int | None = None
    card_name: str = ""
    reverses: int | None = None  # a reversal: the receipt number it cancelled
    reversed: bool = False  # a payment: cancelled by a later reversal
    totals: tuple[CardTotal, ...] = ()
    time: str = "000000"
    date: str = "0101"

    @property
    def approved(self) -> bool:
        return self.result_code == 0


class _Gone(Exception):
    """The ECR closed the connection."""


class _Drop(Exception):
    """A fault: the simulator closes the connection now."""


class _Channel:
    async def send(self, apdu: bytes) -> None:
        raise NotImplementedError

    async def receive(self) -> Apdu:
        raise NotImplementedError


class _TcpChannel(_Channel):
    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self._reader = ApduReader()
        self._ready: deque[Apdu] = deque()

    async def send(self, apdu: bytes) -> None:
        try:
            await self.stream.send_all(apdu)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise _Gone(str(exc)) from exc

    async def receive(self) -> Apdu:
        while not self._ready:
            try:
                data = await self.stream.receive_some(4096)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise _Gone(str(exc)) from exc
            if not data:
                raise _Gone("closed by the ECR")
            self._ready.extend(self._reader.feed(data))
        return self._ready.popleft()


class _SerialChannel(_Channel):
    """The terminal's side of the serial framing: ACK/NAK for what arrives, repeat on NAK for what goes."""

    def __init__(self, sim: ZvtSimulator, stream: trio.abc.Stream) -> None:
        self.sim = sim
        self.stream = stream
        self._framer = SerialFramer()
        self._items: deque[Frame | FrameError] = deque()

    async def _more(self) -> None:
        try:
            data = await self.stream.receive_some(4096)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise _Gone(str(exc)) from exc
        if not data:
            raise _Gone("closed")
        self._items.extend(self._framer.feed(data))

    async def _write(self, data: bytes) -> None:
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise _Gone(str(exc)) from exc

    async def send(self, apdu: bytes) -> None:
        for _ in range(4):
            data = frame(apdu)
            if self.sim.corrupt_frames > 0:
                self.sim.corrupt_frames -= 1
                data = data[:-1] + bytes(((data[-1] + 1) & 0xFF,))
            await self._write(data)
            while True:
                while not self._items:
                    await self._more()
                item = self._items.popleft()
                if isinstance(item, Frame) and item.kind in ("ack", "nak"):
                    break
                raise _Drop("the ECR sent a frame while one of ours was unacknowledged")
            if item.kind == "ack":
                return
            self.sim.naks_received += 1
        raise _Drop("the ECR refused a frame four times")

    async def receive(self) -> Apdu:
        while True:
            while not self._items:
                await self._more()
            item = self._items.popleft()
            if isinstance(item, FrameError):
                self.sim.naks_sent += 1
                await self._write(bytes((NAK,)))
                continue
            if not isinstance(item, Frame) or item.kind != "data":
                continue  # a stray ACK/NAK byte
            if self.sim.nak_frames > 0:
                self.sim.nak_frames -= 1
                self.sim.naks_sent += 1
                await self._write(bytes((NAK,)))
                continue
            await self._write(bytes((ACK,)))
            try:
                return decode_apdu(item.apdu)
            except ZvtError:
                continue


class ZvtSimulator:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        password: str = "000000",
        currency: str = "EUR",
        terminal_id: str = "52500001",
        history: bool = True,
        clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        self.host = host
        self.port = port  # 0 until `run` binds; then kept, so a restart comes back on the same port
        self.password = password
        self.currency = currency
        self.terminal_id = terminal_id
        self.clock = clock
        # the card the "customer" presents
        self.card_pan = "4761739001010119"  # a well-known test card number
        self.card_type = 10  # Visa
        self.card_name = "Visa"
        self.send_full_pan = False  # send BMP 22 unmasked (some terminals do); the ECR must mask it
        # behaviour
        self.decline_code: int | None = None  # decline payments with this result code while set
        self.abort_next = False  # the customer presses abort on the next payment (result 6C, nothing booked)
        self.hold: trio.Event | None = None  # while set and not yet fired, a payment waits before deciding
        self.intermediate: tuple[int, ...] = (0x0A, 0x01, 0x04)  # insert card, watch PIN pad, host
        self.print_receipts = True
        self.repeats_receipts = True  # False: Repeat Receipt is refused (a replaced terminal, a lost journal)
        self.text_blocks = False  # receipts as one Print Text-Block (06 D3) instead of Print Lines
        self.extra_bitmaps = b""  # appended to every Status-Information (decoder tests)
        self.nak_frames = 0
        self.corrupt_frames = 0
        # what happened
        self.journal: list[SimTxn] = []
        self.commands: list[str] = []
        self.connections = 0
        self.acks_received = 0
        self.naks_sent = 0
        self.naks_received = 0
        self.registered = False
        self.holding = False  # a payment is waiting for `hold`
        self._faults: deque[Fault] = deque()
        self._trace = 0
        self._receipt = 0
        self._turnover = 0
        self._day_start = 0  # index into the journal where the current day begins
        self._changed = trio.lowlevel.ParkingLot()
        self._scope: trio.CancelScope | None = None
        if history:  # a terminal that has been in service: yesterday's end-of-day is its last transaction
            empty = tuple(CardTotal(name, 0, 0) for name in TOTAL_GROUPS)
            self.journal.append(self._book("end_of_day", 0, 0, totals=empty))
            self._day_start = len(self.journal)

    # -- what the terminal did ----------------------------------------------------------------------

    def fail_next(self, fault: Fault) -> None:
        self._faults.append(fault)

    @property
    def payments(self) -> list[SimTxn]:
        return [t for t in self.journal if t.kind == "payment" and t.approved]

    @property
    def charged(self) -> int:
        """Money actually moved from the card: approved payments not reversed, minus approved refunds."""
        paid = sum(t.amount for t in self.payments if not t.reversed)
        return paid - sum(t.amount for t in self.journal if t.kind == "refund" and t.approved)

    @property
    def last(self) -> SimTxn | None:
        return self.journal[-1] if self.journal else None

    def _book(self, kind: TxnKind, amount: int, code: int, **fields: object) -> SimTxn:
        self._trace += 1
        now = self.clock()
        receipt = None
        if kind != "end_of_day":
            self._receipt += 1
            self._turnover += 1
            receipt = self._receipt
        txn = SimTxn(
            trace=f"{self._trace:06d}",
            kind=kind,
            amount=amount,
            currency=self.currency,
            result_code=code,
            receipt_no=receipt,
            turnover_no=self._turnover if receipt else None,
            time=now.strftime("%H%M%S"),
            date=now.strftime("%m%d"),
            **fields,  # type: ignore[arg-type]
        )
        return txn

    def _record(self, txn: SimTxn) -> None:
        self.journal.append(txn)
        self._notify()

    def status_of(self, txn: SimTxn) -> StatusInformation:
        card = txn.kind in ("payment", "refund", "reversal")
        return StatusInformation(
            result_code=txn.result_code,
            amount=txn.amount,
            currency=txn.currency,
            trace=txn.trace,
            receipt_no=txn.receipt_no,
            turnover_no=txn.turnover_no,
            time=txn.time,
            date=txn.date,
            masked_pan=txn.masked_pan if card else "",
            auth_code=txn.auth_code,
            card_type=txn.card_type if card else None,
            card_name=txn.card_name if card else "",
            terminal_id=self.terminal_id,
            vu_number="SIMVU0000000001",
            totals=txn.totals,
        )

    def receipt_lines(self, txn: SimTxn, *, copy: bool = False) -> list[str]:
        title = {
            "payment": "Kartenzahlung",
            "reversal": "Storno",
            "refund": "Gutschrift",
            "end_of_day": "Kassenschnitt",
        }
        major, minor = divmod(txn.amount, 100)
        lines = ["STOREPOS ZVT SIMULATOR"] + (["*** KOPIE ***"] if copy else [])
        lines += [title[txn.kind], f"Terminal-ID {self.terminal_id}", f"Trace {txn.trace}"]
        if txn.receipt_no is not None:
            lines.append(f"Beleg {txn.receipt_no:04d}")
        if txn.masked_pan:
            lines.append(f"{txn.card_name} {txn.masked_pan}")
        lines.append(f"Betrag {txn.currency} {major}.{minor:02d}")
        if txn.kind != "end_of_day":
            lines.append(f"Genehmigung {txn.auth_code}" if txn.approved else "Vorgang nicht erfolgt")
        return lines

    # -- serving --------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve TCP until cancelled or `stop`ped; reports the port (the same one again on a restart)."""
        listeners = await trio.open_tcp_listeners(self.port, host=self.host)
        self.port = listeners[0].socket.getsockname()[1]
        with trio.CancelScope() as self._scope:
            task_status.started(self.port)
            await trio.serve_listeners(self._serve_tcp, listeners)
        for listener in listeners:
            await trio.aclose_forcefully(listener)

    def stop(self) -> None:
        """Stop listening (new connections are refused); open connections end with their tasks."""
        if self._scope is not None:
            self._scope.cancel()

    async def _serve_tcp(self, stream: trio.abc.Stream) -> None:
        self.connections += 1
        self._notify()
        async with stream:
            await self._session(_TcpChannel(stream))

    async def run_serial(
        self, port: VirtualPort, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve a serial line on `port` (plugged by the caller) across unplug/plug cycles. A drop fault
        pulls the cable and plugs it back in: the ECR's open port reaches end of file, as with a
        terminal that restarts."""
        task_status.started()
        while True:
            stream = await port.wait_plugged()
            self.connections += 1
            dropped = await self._session(_SerialChannel(self, stream))
            if dropped and port.plugged and port.stream is stream:
                port.unplug()
                port.plug()

    async def _session(self, channel: _Channel) -> bool:
        """Serve commands until the ECR goes away (False) or a fault drops the connection (True)."""
        try:
            command: Apdu | None = None
            while True:
                apdu = command if command is not None else await channel.receive()
                command = await self._serve(channel, apdu)
        except _Gone as exc:
            log.info("zvt sim: session ended: %s", exc)
            return False
        except _Drop as exc:
            log.info("zvt sim: dropping the connection: %s", exc)
            return True
        finally:
            self._notify()

    # -- one command ----------------------------------------------------------------------------------

    async def _expect_ack(self, channel: _Channel) -> None:
        apdu = await channel.receive()
        if (apdu.cls, apdu.ins) != (0x80, 0x00):
            raise _Drop(f"expected the ECR's acknowledgement, got {apdu.cls:02X} {apdu.ins:02X}")
        self.acks_received += 1
        self._notify()

    async def _tell(self, channel: _Channel, apdu: bytes) -> None:
        await channel.send(apdu)
        await self._expect_ack(channel)

    async def _serve(self, channel: _Channel, apdu: Apdu) -> Apdu | None:
        """Serve one command; returns a command that arrived while ignoring one (the timeout fault)."""
        try:
            command = decode_command(apdu)
        except ZvtError as exc:
            log.info("zvt sim: undecodable command: %s", exc)
            await channel.send(Nack(PROTOCOL_ERROR).encode())
            return None
        self.commands.append(type(command).__name__)
        self._notify()
        if isinstance(command, Ack | Nack):
            return None
        if isinstance(command, Registration):
            if command.password != self.password:
                await channel.send(Nack(FUNCTION_NOT_POSSIBLE).encode())
                return None
            await channel.send(Ack().encode())
            self.registered = True
            await self._tell(channel, Completion(status_byte=0, terminal_id=self.terminal_id).encode())
            return None
        if isinstance(command, StatusEnquiry):
            await channel.send(Ack().encode())
            await self._tell(channel, Completion(sw_version="storepos-zvt-sim 1.0", terminal_status=0).encode())
            return None
        if isinstance(command, RepeatReceipt):
            await channel.send(Ack().encode())
            last = self.last
            if last is None or not self.repeats_receipts:
                await self._tell(channel, Abort(FUNCTION_NOT_POSSIBLE).encode())
                return None
            await self._tell(channel, self._status_apdu(last))
            await self._print(channel, self.receipt_lines(last, copy=True))
            await self._tell(channel, Completion().encode())
            return None
        if isinstance(command, EndOfDay):
            await channel.send(Ack().encode())
            await self._end_of_day(channel)
            return None
        if isinstance(command, Authorization | Refund | Reversal):
            if getattr(command, "password", self.password) != self.password:
                await channel.send(Nack(FUNCTION_NOT_POSSIBLE).encode())
                return None
            return await self._money(channel, command)
        await channel.send(Nack(FUNCTION_NOT_POSSIBLE).encode())
        return None

    def _status_apdu(self, txn: SimTxn) -> bytes:
        status = self.status_of(txn)
        pan = self.card_pan if self.send_full_pan and txn.masked_pan else None
        raw = status.encode(pan=pan)
        if self.extra_bitmaps:
            data = decode_apdu(raw).data + self.extra_bitmaps
            raw = Apdu(0x04, 0x0F, data).encode()
        return raw

    async def _print(self, channel: _Channel, lines: list[str]) -> None:
        if not self.print_receipts:
            return
        if self.text_blocks:
            await self._tell(channel, PrintTextBlock(tuple(lines)).encode())
            return
        for i, line in enumerate(lines):
            await self._tell(channel, PrintLine(line, 0xFF if i == len(lines) - 1 else 0).encode())

    async def _money(self, channel: _Channel, command: Authorization | Refund | Reversal) -> Apdu | None:
        fault = self._faults.popleft() if self._faults else None
        if fault == "drop_before_ack":
            raise _Drop("fault: drop before the acknowledgement")
        await channel.send(Ack().encode())
        for i, code in enumerate(self.intermediate):
            await self._tell(channel, IntermediateStatus(code).encode())
            if i == 0 and fault == "drop_after_ack":
                raise _Drop("fault: drop after the acknowledgement")
            if i == 0 and fault == "timeout_after_intermediate":
                return await self._ignore(channel)
        if not self.intermediate and fault in ("drop_after_ack", "timeout_after_intermediate"):
            if fault == "drop_after_ack":
                raise _Drop("fault: drop after the acknowledgement")
            return await self._ignore(channel)
        if self.hold is not None:
            self.holding = True
            self._notify()
            await self.hold.wait()
            self.holding = False
        txn = self._decide(command)
        if txn is None:  # the customer aborted: nothing booked
            await self._tell(channel, Abort(ABORTED_BY_USER).encode())
            return None
        self._record(txn)
        if fault == "drop_after_approval":
            raise _Drop("fault: drop after booking, before the Status-Information")
        await self._tell(channel, self._status_apdu(txn))
        if fault == "drop_after_status":
            raise _Drop("fault: drop after the Status-Information")
        await self._print(channel, self.receipt_lines(txn))
        await self._tell(channel, (Completion() if txn.approved else Abort(txn.result_code)).encode())
        return None

    async def _ignore(self, channel: _Channel) -> Apdu | None:
        """The timeout fault: never answer this transaction again; a new command is served normally."""
        while True:
            apdu = await channel.receive()
            if apdu.cls not in (0x80, 0x84):
                return apdu

    def _decide(self, command: Authorization | Refund | Reversal) -> SimTxn | None:
        card = {
            "masked_pan": mask_pan(self.card_pan),
            "card_type": self.card_type,
            "card_name": self.card_name,
        }
        if isinstance(command, Reversal):
            original = next(
                (t for t in self.journal if t.kind == "payment" and t.receipt_no == command.receipt_no and t.approved),
                None,
            )
            if original is None or original.reversed:
                code = 0xB4 if original is not None else 0xB5  # already reversed / reversal not possible
                return self._book("reversal", original.amount if original else 0, code, reverses=command.receipt_no)
            original.reversed = True
            txn = self._book("reversal", original.amount, 0, reverses=command.receipt_no, **card)
            txn.auth_code = f"{500000 + int(txn.trace) % 500000:06d}"
            return txn
        kind: TxnKind = "refund" if isinstance(command, Refund) else "payment"
        if kind == "payment" and self.abort_next:
            self.abort_next = False
            return None
        code = self.decline_code if kind == "payment" and self.decline_code is not None else 0
        txn = self._book(kind, command.amount, code, **card)
        if code == 0:
            txn.auth_code = f"{500000 + int(txn.trace) % 500000:06d}"
        return txn

    async def _end_of_day(self, channel: _Channel) -> None:
        today = self.journal[self._day_start :]
        groups = {name: [0, 0] for name in TOTAL_GROUPS}
        for t in today:
            if t.kind == "payment" and t.approved and not t.reversed:
                name = {10: "Visa", 6: "Eurocard", 8: "American Express", 5: "girocard"}.get(
                    t.card_type or 0, "remaining"
                )
                groups[name][0] += 1
                groups[name][1] += t.amount
        totals = tuple(CardTotal(name, n, amount) for name, (n, amount) in groups.items())
        txn = self._book("end_of_day", sum(t.amount for t in totals), 0, totals=totals)
        self._record(txn)
        self._day_start = len(self.journal)
        await self._tell(channel, self._status_apdu(txn))
        await self._print(channel, self.receipt_lines(txn))
        await self._tell(channel, Completion().encode())

    # -- waiting in tests -----------------------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.unpark_all()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once `predicate()` holds; checked after every change. Bound it with trio.fail_after."""
        while not predicate():
            await self._changed.park()


__all__ = ["Fault", "SimTxn", "ZvtSimulator"]
