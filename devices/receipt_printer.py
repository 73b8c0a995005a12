"""Receipt printer actor: owns the connection to one ESC/POS printer and prints its job queue in order.

Lanes call `submit` / `print_receipt` / `submit_control`, which only put a job in the queue: a sale is in
the journal before anything is printed, and no printer trouble ever reaches a lane. The queue lives on this
object, not in `run`, so it outlives a connection: the devices supervisor restarts `run` with backoff after
the printer went away, and the next life carries on with the same queue.

One job, one life:
  1. real-time status (DLE EOT 1, 2, 4, and 3 when there is an error); while the printer is not ready
     (paper out, cover open, offline, error) the state is on the health board and we poll, job kept;
  2. the job's bytes;
  3. real-time status again; if the printer went offline meanwhile (the roll ran out mid-receipt) we wait
     until it is ready: it holds the rest of the job in its buffer and prints it on recovery;
  4. only then is the job done and removed from the queue.

Exactly once, as far as a printer allows. ESC/POS printers do not acknowledge jobs (Epson's GS ( H process
ID response exists on some models only). What we do know: a status reply comes back through the same
ordered byte stream after the job's bytes, so a reply after step 2 proves the printer *has* the whole job.
Hence: a job whose post-job status arrived is done and never sent again; a job whose connection failed
before that reply is sent again after reconnecting. That is the best available: the printer may or may not
have received (and printed) part or all of it, and we cannot ask. In practice the failure falls in the
middle of sending, so the paper shows a partial receipt followed by the full one. The only way to get two
complete receipts is a connection lost in the instant between the last byte and the status reply.

A re-sent receipt is not marked COPY: usually it is the only complete one, i.e. the original, and a COPY
mark would make the customer's only receipt look like a duplicate. Instead it is preceded by
`interrupted_notice()`, which closes the half-printed piece with "PRINT INTERRUPTED - receipt reprinted
below" and a cut, so the fragment cannot be taken for a receipt. (COPY is for reprints staff ask for:
`print_receipt(record, copy=True)`.)

Control jobs (a drawer kick) are at most once: removed as soon as their write starts, dropped when older
than their time to live, and never resent after a reconnect: a drawer springing open minutes later, or
twice, is worse than a cashier pressing "open drawer" again.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import trio

from devices.escpos import (
    DEFAULT_PROFILE,
    Discount,
    PrinterStatus,
    ReceiptLayout,
    StatusByteError,
    encode_receipt,
    interrupted_notice,
    parse_status,
    receipt_id,
    status_request,
)
from protocol.frames import SaleRecord
from runtime.health import HealthBoard

log = logging.getLogger(__name__)


class PrinterOffline(ConnectionError):
    """The printer cannot be reached or stopped answering: `run` raises it so the supervisor backs off."""


class Transport(Protocol):
    """Where the printer is: something that opens a fresh byte stream to it, once per actor life."""

    def describe(self) -> str: ...

    async def connect(self) -> trio.abc.Stream: ...


@dataclass(frozen=True)
class TcpTransport:
    """A network printer's raw port ("port 9100", JetDirect): ESC/POS bytes in, status bytes out."""

    host: str
    port: int = 9100

    def describe(self) -> str:
        return f"tcp {self.host}:{self.port}"

    async def connect(self) -> trio.abc.Stream:
        return await trio.open_tcp_stream(self.host, self.port)


@dataclass(frozen=True)
class StreamTransport:
    """Any other stream, e.g. a serial printer: `StreamTransport(settings.open, settings.describe())` for a
    devices.serialport.SerialSettings."""

    opener: Callable[[], Awaitable[trio.abc.Stream]]
    label: str = "serial"

    def describe(self) -> str:
        return self.label

    async def connect(self) -> trio.abc.Stream:
        return await self.opener()


@dataclass(eq=False)
class _Job:
    job_id: str
    payload: bytes
    control: bool = False
    when_offline: bytes | None = None  # a control's real-time form, used while the printer is not ready
    expires: float = math.inf
    attempts: int = 0  # how many times sending it has started


class _Link:
    """One connection. A reader task buffers whatever arrives, so stale bytes can be drained before each
    status request (otherwise one unsolicited byte would shift every later reply by one)."""

    def __init__(self, stream: trio.abc.Stream, on_lost: Callable[[], None]) -> None:
        self.stream = stream
        self.lost: str | None = None
        self._inbox = bytearray()
        self._arrived = trio.Event()
        self._on_lost = on_lost

    async def pump(self) -> None:
        try:
            while True:
                data = await self.stream.receive_some(4096)
                if not data:
                    self._lose("connection closed by the printer")
                    return
                self._inbox += data
                self._arrived.set()
        except Exception as exc:  # reported to the actor's task, which raises it as PrinterOffline
            self._lose(f"{type(exc).__name__}: {exc}")

    def _lose(self, reason: str) -> None:
        if self.lost is None:
            self.lost = reason
        self._arrived.set()
        self._on_lost()

    def check(self) -> None:
        if self.lost is not None:
            raise PrinterOffline(self.lost)

    def drain(self) -> bytes:
        data = bytes(self._inbox)
        self._inbox.clear()
        return data

    async def send(self, data: bytes) -> None:
        self.check()
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self._lose(f"{type(exc).__name__}: {exc}")
            raise PrinterOffline(self.lost) from exc

    async def next_byte(self) -> int:
        while not self._inbox:
            self.check()
            self._arrived = trio.Event()
            await self._arrived.wait()
        byte = self._inbox[0]
        del self._inbox[:1]
        return byte


class ReceiptPrinter:
    """The actor. Health entry `name`: running | paper-low | paper-out | cover-open | error | offline (the
    supervisor adds starting/backoff); `detail` says why and how many jobs wait."""

    def __init__(
        self,
        name: str,
        transport: Transport,
        health: HealthBoard,
        *,
        profile: str = DEFAULT_PROFILE,
        layout: ReceiptLayout | None = None,
        connect_timeout: float = 5.0,
        reply_timeout: float = 2.0,  # a status reply when idle
        job_timeout: float = 30.0,  # the status reply after a job: it queues behind the job in the printer
        poll_interval: float = 1.0,  # status polling while waiting for paper, cover, recovery
        idle_poll: float = 2.0,  # status polling when idle: drawer sensor, silent unplug
        capacity: int = 10_000,
        remember: int = 10_000,  # done job ids kept for duplicate detection
    ) -> None:
        self.name = name
        self.profile = profile
        self.layout = layout if layout is not None else ReceiptLayout()
        self.connect_timeout = connect_timeout
        self.reply_timeout = reply_timeout
        self.job_timeout = job_timeout
        self.poll_interval = poll_interval
        self.idle_poll = idle_poll
        self.capacity = capacity
        self.done_count = 0
        self.noise_count = 0
        self._transport = transport
        self._health = health
        self._receipts: dict[str, _Job] = {}  # insertion order is print order
        self._controls: dict[str, _Job] = {}
        self._done_ids: set[str] = set()
        self._done_order: deque[str] = deque()
        self._remember = remember
        self._status: PrinterStatus | None = None
        self._connected = False
        self._word = ""
        self._poll_wanted = False
        self._wakeup = trio.Event()
        self._status_lot = trio.lowlevel.ParkingLot()
        self._done_lot = trio.lowlevel.ParkingLot()

    # -- the API lanes and the drawer use (synchronous: never waits for the printer) ---------------

    def submit(self, job_id: str, payload: bytes) -> None:
        """Queue ESC/POS bytes for printing. A job id already queued or recently printed is ignored, so a
        caller that is unsure whether its submit went through can simply submit again."""
        self._enqueue(_Job(job_id, bytes(payload)))

    def submit_control(
        self, job_id: str, payload: bytes, *, when_offline: bytes | None = None, ttl: float = 30.0
    ) -> None:
        """Queue a command that is not a receipt (a drawer kick). It goes ahead of waiting receipts; while
        the printer is not ready `when_offline` (a real-time command) is sent instead, if given."""
        job = _Job(job_id, bytes(payload), control=True, when_offline=when_offline)
        job.expires = trio.current_time() + ttl
        self._enqueue(job)

    def print_receipt(
        self,
        record: SaleRecord,
        *,
        discounts: Sequence[Discount] = (),
        copy: int = 0,
        job_id: str | None = None,
        layout: ReceiptLayout | None = None,
    ) -> str | None:
        """Encode and queue a receipt; the job id (default: the receipt id) or None if it cannot be encoded.
        An encoding failure is logged and published, never raised into the lane that sold. `layout`
        replaces the printer's own for this receipt (the till configuration changed since it started)."""
        job_id = job_id or receipt_id(record)
        try:
            payload = encode_receipt(
                layout or self.layout, record, profile=self.profile, discounts=discounts, copy=copy
            )
        except Exception as exc:
            log.exception("printer %s: cannot encode receipt %s", self.name, job_id)
            self._health.set(self.name, self._health.get(self.name).state, error=f"encode {job_id}: {exc!r}")
            return None
        self.submit(job_id, payload)
        return job_id

    def poll_now(self) -> None:
        """Ask for a status poll as soon as the printer is idle (e.g. the drawer wants a fresh reading)."""
        self._poll_wanted = True
        self._wakeup.set()

    @property
    def queue_depth(self) -> int:
        return len(self._receipts) + len(self._controls)

    @property
    def pending(self) -> list[str]:
        return [*self._controls, *self._receipts]

    @property
    def status(self) -> PrinterStatus | None:
        """The last status the printer reported (None before the first); see `connected` for its age."""
        return self._status

    @property
    def connected(self) -> bool:
        return self._connected

    async def next_status(self) -> PrinterStatus:
        """Wait for the next status reading (there is one at least every `idle_poll` while connected)."""
        await self._status_lot.park()
        assert self._status is not None
        return self._status

    async def drained(self) -> None:
        """Wait until every queued job is done (bound it with trio.fail_after)."""
        while self.queue_depth:
            await self._done_lot.park()

    def _enqueue(self, job: _Job) -> None:
        if job.job_id in self._receipts or job.job_id in self._controls or job.job_id in self._done_ids:
            log.info("printer %s: duplicate job %s ignored", self.name, job.job_id)
            return
        if self.queue_depth >= self.capacity:
            log.error("printer %s: queue full (%d), job %s dropped", self.name, self.capacity, job.job_id)
            self._health.set(self.name, self._health.get(self.name).state, error=f"queue full, dropped {job.job_id}")
            return
        (self._controls if job.control else self._receipts)[job.job_id] = job
        self._wakeup.set()

    def _dequeue(self, job: _Job) -> None:
        """Out of the queue for good; its id is remembered so a late duplicate is still recognised."""
        (self._controls if job.control else self._receipts).pop(job.job_id, None)
        self._done_ids.add(job.job_id)
        self._done_order.append(job.job_id)
        while len(self._done_order) > self._remember:
            self._done_ids.discard(self._done_order.popleft())

    def _complete(self, job: _Job) -> None:
        self._dequeue(job)
        self.done_count += 1
        self._done_lot.unpark_all()

    # -- the actor ----------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """One connection's life: ready once connected; raises PrinterOffline when the printer goes away."""
        stream = await self._connect()
        failure: Exception | None = None
        try:
            async with trio.open_nursery() as nursery:
                link = _Link(stream, lambda: self._wakeup.set())  # the event is replaced; look it up late
                nursery.start_soon(link.pump)
                try:
                    self._connected = True
                    log.info("printer %s: connected (%s)", self.name, self._transport.describe())
                    task_status.started()
                    await self._serve(link)
                except Exception as exc:  # raised below, outside the nursery, so not as an exception group
                    failure = exc
                finally:
                    self._connected = False
                    nursery.cancel_scope.cancel()
        finally:
            await trio.aclose_forcefully(stream)
        if failure is not None:
            if isinstance(failure, PrinterOffline):
                self._offline(failure)
            raise failure

    async def _connect(self) -> trio.abc.Stream:
        where = self._transport.describe()
        try:
            with trio.fail_after(self.connect_timeout):
                return await self._transport.connect()
        except (OSError, trio.TooSlowError) as exc:
            error = PrinterOffline(f"cannot connect to {where}: {type(exc).__name__}: {exc}")
            self._offline(error)
            raise error from exc

    def _offline(self, error: PrinterOffline) -> None:
        if self._word != "offline":
            log.warning("printer %s: offline: %s (%d jobs wait)", self.name, error, self.queue_depth)
        self._word = "offline"
        self._health.set(
            self.name, "offline", error=f"PrinterOffline: {error}", detail=f"offline: {error}; {self._queued()}"
        )

    def _queued(self) -> str:
        return f"{self.queue_depth} queued"

    async def _serve(self, link: _Link) -> None:
        await self._refresh(link)
        while True:
            link.check()
            await self._send_controls(link, None)
            job = next(iter(self._receipts.values()), None)
            if job is not None:
                await self._print(link, job)
                continue
            self._wakeup = trio.Event()  # no checkpoint since the queues were looked at: no wakeup is lost
            with trio.move_on_after(self.idle_poll) as idle:
                await self._wakeup.wait()
            if idle.cancelled_caught or self._poll_wanted:
                self._poll_wanted = False
                await self._refresh(link)

    async def _print(self, link: _Link, job: _Job) -> None:
        await self._until_ready(link, job)
        job.attempts += 1
        data = job.payload
        if job.attempts > 1:
            log.warning("printer %s: sending %s again after an interruption", self.name, job.job_id)
            data = interrupted_notice(profile=self.profile, width=self.layout.width) + data
        await link.send(data)
        after = await self._query(link, patient=True)
        if not after.ready:  # it has the job; it prints the rest once the paper or cover is fixed
            after = await self._until_ready(link, job)
        self._complete(job)
        self._publish(after)

    async def _until_ready(self, link: _Link, job: _Job) -> PrinterStatus:
        status = await self._query(link)
        while not status.ready:
            self._publish(status, waiting=job)
            await self._send_controls(link, status)  # the drawer still opens while the receipt waits
            self._wakeup = trio.Event()
            with trio.move_on_after(self.poll_interval):
                await self._wakeup.wait()
            link.check()
            status = await self._query(link)
        self._publish(status)
        return status

    async def _send_controls(self, link: _Link, status: PrinterStatus | None) -> None:
        while self._controls:
            job = next(iter(self._controls.values()))
            if trio.current_time() >= job.expires:
                log.warning("printer %s: control job %s expired unsent", self.name, job.job_id)
                self._complete(job)
                continue
            if status is None and job.when_offline is not None:
                status = await self._query(link)
            data = job.payload
            if job.when_offline is not None and status is not None and not status.ready:
                data = job.when_offline
            job.attempts += 1
            self._dequeue(job)  # before the write: at most once, see the module docstring
            try:
                await link.send(data)
            finally:
                self.done_count += 1
                self._done_lot.unpark_all()

    async def _refresh(self, link: _Link) -> None:
        self._publish(await self._query(link))

    async def _query(self, link: _Link, *, patient: bool = False) -> PrinterStatus:
        status = PrinterStatus()
        for i, n in enumerate((1, 2, 4)):
            status = await self._ask(link, n, status, patient=patient and i == 0)
        if status.error:
            status = await self._ask(link, 3, status, patient=False)
        self._status = status
        self._status_lot.unpark_all()
        return status

    async def _ask(self, link: _Link, n: int, into: PrinterStatus, *, patient: bool) -> PrinterStatus:
        """One DLE EOT n round trip. Noise is skipped (logged); a reply that does not come is asked for once
        more, then the printer counts as gone. `patient`: the reply waits behind a job in the printer."""
        stale = link.drain()
        if stale:
            self.noise_count += len(stale)
            log.warning("printer %s: skipped %d unexpected bytes: %s", self.name, len(stale), stale[:32].hex(" "))
        wait = self.job_timeout if patient else self.reply_timeout
        for attempt in (1, 2):
            await link.send(status_request(n))
            with trio.move_on_after(wait):
                while True:
                    byte = await link.next_byte()
                    try:
                        return parse_status(n, byte, into=into)
                    except StatusByteError as exc:
                        self.noise_count += 1
                        log.warning("printer %s: %s; skipped", self.name, exc)
            if attempt == 1:
                log.warning("printer %s: no reply to DLE EOT %d within %g s, asking again", self.name, n, wait)
        raise PrinterOffline(f"no reply to status request DLE EOT {n} within {wait:g} s")

    def _publish(self, status: PrinterStatus, *, waiting: _Job | None = None) -> None:
        word = status.state
        state = "running" if word == "ok" else word
        detail = f"{status.describe()}; {self._queued()}"
        if waiting is not None:
            detail += f"; {waiting.job_id} waits"
        if word != self._word:
            level = logging.INFO if word in ("ok", "paper-low") else logging.WARNING
            log.log(level, "printer %s: %s", self.name, detail)
            self._word = word
        self._health.set(self.name, state, detail=detail)
