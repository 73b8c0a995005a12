"""One lane actor per till lane: all sale logic, one command at a time.

Each command computes the new lane state as a pure function, persists it in the same database job
(so a `kill -9` at any instant leaves either the old or the new basket on disk), and only then adopts
it and pushes it to the attached tills. A completed sale is appended to the journal and queued for
central in one durable transaction before the till hears "done" (storenode.lanes.closing). A change
that is not a refund and needs nothing else written with it (a scan, a login, a total: `_save`) is
persisted to the lane's state file instead (statefile.py: the same promise against `kill -9`, without
the hop to the database thread that would cost half of a scan's round trip).

The lane owns its sale: this module is the only one that reads or replaces a lane's state and acts on
it. The basket's changes, payments, refunds to tenders and the terminal's administration are decisions
(storenode.lanes.basket, payments, terminal_admin): plain functions of the state and what the lane read
or heard for them, answering with the next state and the effects to carry out (storenode.lanes.effects),
which `_apply` carries out in one place. What must wait on the world beside the lane (a card call, the
terminal's end of day) runs as a task here and comes back through the mailbox (MoneyDone, TerminalDone).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sqlite3
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import msgspec
import trio

from devices import display
from devices.escpos import ReceiptLayout, cash_slip_text, encode_cash_slip, receipt_text
from devices.terminal import PaymentResult, PaymentTerminal
from protocol import discounting, gs1, link, pins
from protocol.frames import (
    CancelSale,
    CardTender,
    CashCount,
    CashDeposit,
    CashDone,
    CashDrop,
    CashTender,
    Command,
    CopyReceipt,
    EndOfDay,
    Error,
    FloatMove,
    GiftCardTender,
    GiveDiscount,
    InvoiceTender,
    Login,
    Logout,
    NoSale,
    OverridePrice,
    Park,
    ParkedList,
    ParkedQuery,
    ParkedSale,
    Payout,
    QuickKey,
    Receipt,
    ReceiptList,
    ReceiptQuery,
    RecordApproval,
    RecordPayment,
    RefundOf,
    ResolvePayment,
    Resume,
    ReturnItem,
    SaleState,
    Scan,
    SetAside,
    SetSalesperson,
    StartSale,
    StockCount,
    StockInfo,
    StockLine,
    StockMove,
    StockMovement,
    TenderLine,
    TerminalReport,
    TillFrame,
    Total,
    Training,
    VoidLine,
    Welcome,
)
from protocol.money import format_money, round_half_up
from protocol.text import plain
from runtime.clock import Clock
from runtime.database import Database
from runtime.health import HealthBoard
from runtime.mailbox import Mailbox, Rejected, serve
from storenode import operators, stock
from storenode.config import StoreConfig
from storenode.journal.chain import Signer
from storenode.lanes import (
    approval,
    basket,
    cash,
    closing,
    discounts,
    foreign,
    lookup,
    parking,
    payments,
    refunds,
    salesperson,
    statefile,
    terminal_admin,
    training,
)
from storenode.lanes.basket import CLOSED, OPEN, PAYING, READY, TENDER, LaneState
from storenode.lanes.effects import (
    Close,
    ContinueCancel,
    Effect,
    Publish,
    Refuse,
    Save,
    SetAsideAtTerminal,
    StartCard,
    StartEndOfDay,
)
from storenode.lanes.saved import load_saved, save_state, saved_seq
from storenode.peripherals import LaneDevices, receipt_layout
from storenode.sync import replica
from storenode.sync.outbox import OutboxSignal

log = logging.getLogger(__name__)

SCALE_TIMEOUT = 3.0

_T = TypeVar("_T")


class Subscriber(Protocol):
    """A till connection as a lane sees it: frames are pushed, never awaited (a slow till cannot
    stall a lane; the gateway drops it and it reattaches)."""

    till: str

    def push(self, frame: TillFrame) -> None: ...

    def drop(self, notice: Error) -> None:
        """Tell the till why and close its connection (another till took its lane over)."""


@dataclass
class Attach:
    """A till asks to hold the lane. A lane has one till: another is refused unless it logs in with the
    attach (`takeover`), which moves the lane, the basket and the session to it and drops the first."""

    conn: Subscriber
    takeover: Login | None = None


@dataclass
class Detach:
    conn: Subscriber


@dataclass(eq=False)
class Session:
    """An operator logged in at one till connection. It is the connection's, not the lane's: it ends when
    that till detaches, at logout, or after `tills.idle_logout` seconds without a command, and no other
    connection acts in it. A sale it leaves open stays saved on the lane for the operator's next login."""

    conn: Subscriber
    operator: str
    last: float  # trio time of the session's last command
    watch: trio.CancelScope = field(default_factory=trio.CancelScope)  # the idle watch, cancelled at the end


@dataclass
class IdleCheck:
    """The idle watch saw `session` go quiet for the configured time."""

    session: Session


@dataclass
class Do:
    command: Command
    conn: Subscriber | None  # None: a device bound to the lane (a scanner); refusals go to every till


@dataclass
class Republish:
    """Something outside the sale changed (the central link): show the tills the lane again."""


@dataclass
class MoneyDone:
    """The outcome of a card call that ran beside the lane."""

    result: PaymentResult


@dataclass
class TerminalDone:
    """The end of day ran beside the lane: its report (or why there is none) for the till that asked."""

    frame: TerminalReport | Error
    conn: Subscriber | None


LaneRequest = Attach | Detach | Do | Republish | MoneyDone | TerminalDone | IdleCheck
Ask = link.Ask


@dataclass
class StoreContext:
    """What every lane of a store shares; all of it outlives lane restarts."""

    config: StoreConfig
    db: Database
    health: HealthBoard
    clock: Clock
    signal: OutboxSignal
    link_state: Callable[[], str]  # "online" / "offline", or "" for a store without central
    ask: Ask  # a question to central over the sync link (gift cards, rates, customers); Offline without one
    signer: Signer  # the store key, signing each journal record as it is appended
    devices: dict[int, LaneDevices] = field(default_factory=dict)


class Lane:
    def __init__(self, number: int, ctx: StoreContext, *, capacity: int = 128) -> None:
        self.number = number
        self.name = f"lane-{number}"
        self.mailbox: Mailbox[LaneRequest] = Mailbox(capacity)
        self.ctx = ctx
        self.state = LaneState(lane=number)
        self.holder: Subscriber | None = None  # the one till attached
        self._session: Session | None = None  # who is logged in, and at which till
        self._asker: Subscriber | None = None  # the till whose request is being handled: it alone gets its ref
        self.devices = ctx.devices.get(number) or LaneDevices()
        self.layout = receipt_layout(ctx.config)
        self._nursery: trio.Nursery | None = None
        self._money_running = False  # a card call or the terminal's end of day is running beside the lane
        self._reader: sqlite3.Connection | None = None  # scans look up here, on the event loop (see _read)
        self._file: statefile.StateFile | None = None  # plain saves are kept here (see _persist)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            self.state = await self._load()
            async with trio.open_nursery() as nursery:  # card calls run here, beside the mailbox
                self._nursery = nursery
                self._money_running = False
                if self._session is not None:  # a restart keeps its till and session: watch it again
                    self._watch_idle(self._session)
                await self._recover()
                self._publish(message="lane restarted" if self.holder else "")
                task_status.started()
                await serve(self.mailbox, self._guarded)
        finally:
            self._drop_reader()
            self._drop_file()

    async def _load(self) -> LaneState:
        """The lane as it was: the database's row, or the state file's newest record if that was built on the
        row's latest save (a scan acknowledged after it; see statefile.py).

        A record that wins is saved to the row at once and only then is the file emptied: a crash in
        between loads the same state again (the row's counter now outranks the file). From here on the
        file holds only what comes after the row, which is what `_persist` relies on."""
        seq, state = await self.ctx.db.read(lambda c: load_saved(c, self.number))
        kept: statefile.Kept | None = None
        try:
            self._file = statefile.StateFile(statefile.path_for(self.ctx.db.path, self.number))
            kept = self._file.read_last()
        except OSError:  # a broken data folder: the lane still sells, saving every scan through the database
            log.exception("lane %d: cannot read its state file; scans save through the database", self.number)
            self._drop_file()
        if kept is not None and kept.base >= seq and kept.state.lane == self.number:
            # base > seq only if the database lost saves the file had seen (a power cut): still the newest
            state = kept.state
            await self.ctx.db.write(lambda c: save_state(c, state))
        try:
            if self._file is not None:
                self._file.reset()
            self._reader = self.ctx.db.reader()
        except (OSError, sqlite3.Error):
            log.exception("lane %d: no state file or read connection; scans save through the database", self.number)
            self._drop_file()
            self._drop_reader()
        if self._session is None and state.status == READY:  # saved while logged in; nobody is, at a till
            state = LaneState(lane=self.number, status=CLOSED, training=state.training)  # a mode of the lane
        return state

    def _drop_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _drop_file(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    async def _read(self, job: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run a read-only job on the lane's own read connection, in one read transaction (one snapshot:
        a catalogue change commits wholly before or after it, as for a job on the database thread), with
        no hop to the database thread; on the database thread if the lane has no reader."""
        reader = self._reader
        if reader is not None:
            try:
                reader.execute("BEGIN")
                try:
                    return job(reader)
                finally:
                    reader.execute("COMMIT")
            except sqlite3.Error:
                log.exception("lane %d: the read connection failed; reading through the database", self.number)
                self._drop_reader()
        return await self.ctx.db.read(job)

    async def _persist(self, new: LaneState) -> None:
        """Make the lane's new state (a scan, a login, a total...) survive `kill -9` before anyone hears of it,
        without a database hop.

        Appended to the lane's state file with the row's save counter it builds on (read here on the
        lane's reader: only this lane's actor saves its row, and no save of it is in flight while the actor
        is in a command, so the counter cannot move before the append). A refund is saved through the
        database instead: other lanes' refund checks read it from the row. So is a state the file cannot
        take (too large, a failed write): that save outranks the whole file."""
        file, reader = self._file, self._reader
        if file is not None and reader is not None and not new.refund_of:
            try:
                if file.append(saved_seq(reader, self.number), new):
                    return
            except (OSError, sqlite3.Error):
                log.exception("lane %d: the state file failed; scans save through the database", self.number)
                self._drop_file()
        await self.ctx.db.write(lambda c: save_state(c, new))

    def _start_money(self, call: Callable[[], Awaitable[LaneRequest | None]]) -> None:
        """Run a money call beside the lane; what it comes back with goes through the mailbox."""
        assert self._nursery is not None

        async def running() -> None:
            self._money_running = True
            try:
                done = await call()
                if done is not None:
                    await self.mailbox.tell(done)
            finally:
                self._money_running = False

        self._nursery.start_soon(running)

    @property
    def currency(self) -> str:
        return self.ctx.config.currency

    def _frame(self, *, ref: int = 0, message: str = "", popup: str = "") -> SaleState:
        frame = basket.to_frame(self.state, self.currency, ref=ref, message=message)
        if self._session is None and frame.status == READY:  # a sale settled by itself: nobody is logged in
            frame.status, frame.operator = CLOSED, ""
        frame.popup = popup
        frame.training = self.state.training
        frame.link = self.ctx.link_state()
        frame.backlog = self.ctx.signal.backlog
        frame.devices = {name: self.ctx.health.get(name).state for name in self.devices.names}
        return frame

    def _publish(self, *, ref: int = 0, message: str = "", popup: str = "") -> None:
        self._broadcast(self._frame(ref=ref, message=message, popup=popup))

    def _lookup(self, c: sqlite3.Connection, code: str) -> basket.Item | None:
        config = self.ctx.config
        return replica.lookup(c, code, config.store, config.currency, self.ctx.clock.now_ms())

    def _broadcast(self, frame: TillFrame) -> None:
        """To the lane's till; a `ref` it did not ask with (a device's, an earlier till's) goes as 0."""
        holder = self.holder
        if holder is None:
            return
        if getattr(frame, "ref", 0) and holder is not self._asker:
            frame = msgspec.structs.replace(frame, ref=0)
        holder.push(frame)

    def _answer(self, frame: TillFrame, conn: Subscriber | None) -> None:
        """To the till that asked; to the lane's till when nobody did (the lane's own scanner, a retry)."""
        if conn is not None:
            conn.push(frame)
        else:
            self._broadcast(frame)

    def _show(self, lines: Callable[[], tuple[str, str]]) -> None:
        """Lines are computed only when the lane has a customer display (they cost a scan's budget)."""
        if self.devices.display is not None:
            self.devices.display.show(*lines())

    def _money(self, amount: int) -> str:
        return format_money(amount, self.currency)

    async def _save(self, new: LaneState, *, ref: int, message: str = "") -> None:
        await self._persist(new)
        self.state = new
        self._publish(ref=ref, message=message)

    async def _guarded(self, request: LaneRequest) -> None:
        """One request, and no bug in one command takes the lane (and every till on it) down.

        An unexpected exception is logged with a short reference; the lane then goes on from what it had
        saved (the database row and the state file, as a restart would load them) without dropping its
        tills, and the asker gets an `internal` refusal naming the reference. Only when even that reload
        fails is the lane broken, and then it fails to its supervisor."""
        try:
            await self._handle(request)
        except Rejected:
            raise
        except Exception as exc:
            reference = uuid.uuid4().hex[:8]
            what = type(request.command).__name__ if isinstance(request, Do) else type(request).__name__
            log.exception(
                "lane %d: %s failed (log reference %s); going on from its saved state", self.number, what, reference
            )
            self._drop_reader()
            self._drop_file()
            self.state = await self._load()
            self._publish(message=f"the last command failed (log reference {reference})")
            raise Rejected(
                "internal",
                f"lane {self.number} could not do {what}: an internal error (log reference {reference}); "
                "the sale is as last saved",
            ) from exc

    async def _handle(self, request: LaneRequest) -> None:
        self._asker = request.conn if isinstance(request, Attach | Do | TerminalDone) else None
        try:
            await self._handle_for(request)
        finally:
            self._asker = None

    async def _handle_for(self, request: LaneRequest) -> None:
        match request:
            case Attach(conn, takeover):
                holder = self.holder
                if holder is not None and holder is not conn:
                    if takeover is None:
                        raise Rejected(
                            "lane_in_use",
                            f"lane {self.number} is in use by till {plain(holder.till)}; "
                            "an operator logging in here can take it over",
                        )
                    await self._take_over(holder, conn, takeover)
                elif takeover is not None:  # a free lane, or this till's own: taking it over is logging in
                    self.holder = conn
                    await self._login(takeover.operator, takeover.pin, 0, conn, take_sale=takeover.take_sale)
                self.holder = conn
                look = await self.ctx.db.read(lambda c: replica.till_look(c, self.ctx.config.store))
                conn.push(
                    Welcome(
                        store=self.ctx.config.store,
                        lane=self.number,
                        till=conn.till,
                        state=self._frame(message=self._waiting_sale()),
                        quick_keys=[QuickKey(label=a, code=c) for a, c in look.quick_keys] if look else [],
                        timezone=self.ctx.config.timezone,
                    )
                )
            case Detach(conn):
                if conn is self.holder:
                    self.holder = None
                    session = self._session
                    if session is not None and session.conn is conn:
                        await self._end_session(f"till {plain(conn.till)} left: operator {session.operator} logged out")
            case IdleCheck(session):
                idle = self.ctx.config.tills.idle_logout
                if session is self._session and trio.current_time() >= session.last + idle:  # the watch's deadline
                    await self._end_session(
                        f"operator {session.operator} logged out after {idle:g} s without a command"
                    )
                elif session is self._session:  # a command came in while this waited in the mailbox
                    self._watch_idle(session)
            case Republish():
                self._publish()
            case MoneyDone(result):
                await self._apply(payments.settle(self.state, result, self.currency), None)
            case TerminalDone(frame, conn):  # to the till that asked (the lane's till, if it is gone)
                if conn is not None and conn is self.holder:
                    conn.push(frame)
                else:
                    self._broadcast(frame)
                self._publish(message=terminal_admin.end_of_day_message(frame, self.currency))
            case Do(command, None):
                try:
                    await self._command(command, None)
                except Rejected as refusal:  # nobody asked but the device: tell the tills
                    self._broadcast(Error(code=refusal.code, message=refusal.message))
                    raise
            case Do(command, conn) if conn is not None:
                if conn is not self.holder:  # taken over, or detached, while this command waited
                    raise Rejected("not_attached", f"this till does not hold lane {self.number} (any more)")
                await self._command(command, conn)

    # -- the till's session -----------------------------------------------------------------------------

    def _waiting_sale(self) -> str:
        """What a till attaching to a lane nobody is logged in at should say about a sale left open."""
        state = self.state
        if self._session is None and state.status in (OPEN, TENDER, PAYING) and state.operator:
            return f"sale {state.sale_id} of operator {state.operator} is waiting: log in to go on"
        return ""

    def _require_session(self, conn: Subscriber | None) -> None:
        """Nothing is done on a lane without an operator logged in at that till (a device: at the lane's
        till), so a new connection never acts as whoever logged in before it."""
        session = self._session
        if session is None or (conn is not None and session.conn is not conn):
            raise Rejected("not_logged_in", f"no operator is logged in at this till on lane {self.number}")
        session.last = trio.current_time()
        if self.ctx.config.tills.idle_logout:
            session.watch.deadline = session.last + self.ctx.config.tills.idle_logout

    def _start_session(self, conn: Subscriber | None, operator: str) -> None:
        if conn is None:
            return
        if self._session is not None:
            self._session.watch.cancel()
        self._session = Session(conn, operator, trio.current_time())
        self._watch_idle(self._session)

    def _watch_idle(self, session: Session) -> None:
        """Log the session out once it has had no command for `tills.idle_logout` seconds (0: never)."""
        idle = self.ctx.config.tills.idle_logout
        if not idle or self._nursery is None:
            return

        session.watch = trio.CancelScope(deadline=session.last + idle)  # each command moves it on

        async def watch() -> None:
            with session.watch:
                await trio.sleep_forever()
            if session is self._session:  # the deadline passed, not the session's end
                await self.mailbox.tell(IdleCheck(session))

        self._nursery.start_soon(watch)

    async def _end_session(self, why: str) -> None:
        """The operator is logged out. A lane with no sale closes; a sale in progress stays as saved (money
        taken, a card call in doubt and all) for its operator's next login at this lane's till.

        Nothing is saved: a session lives in memory only (a restart ends it), and a lane loads a row saved
        "ready" without a session as closed (`_load`)."""
        session, self._session = self._session, None
        if session is None:
            return
        session.watch.cancel()
        if self.state.status == READY:
            self.state = LaneState(lane=self.number, status=CLOSED, training=self.state.training)
            self._publish(message=why)
        else:
            self._publish(message=f"{why}; {self._waiting_sale()}" if self._waiting_sale() else why)

    async def _take_over(self, holder: Subscriber, conn: Subscriber, login: Login) -> None:
        """`conn` takes the lane from `holder` by logging an operator in (the login's rules, PIN lockout
        included, are the login command's): on any refusal `holder` keeps the lane, untold; on success it
        is told who took it over and dropped, and its session ends."""
        self.holder = conn  # the login's state goes to the till taking over, never to the one it replaces
        try:
            await self._login(login.operator, login.pin, 0, conn, take_sale=login.take_sale)
        except BaseException:
            self.holder = holder
            raise
        log.warning("lane %d: till %s took over from till %s", self.number, conn.till, holder.till)
        holder.drop(
            Error(
                code="taken_over",
                message=f"till {plain(conn.till)} took lane {self.number} over "
                f"(operator {login.operator} logged in there); this till is detached",
            )
        )

    async def _command(self, command: Command, conn: Subscriber | None) -> None:
        state, ref = self.state, command.ref
        if not isinstance(command, Login | SetAside):  # SetAside carries a supervisor's own PIN
            self._require_session(conn)
        if state.status == PAYING and not isinstance(command, ResolvePayment | SetAside | Login):
            raise Rejected("payment_in_progress", "a payment is in progress or in doubt; wait or resolve it first")
        if isinstance(command, Total | CashTender | CardTender | GiftCardTender | InvoiceTender):
            salesperson.require(state, self.ctx.config.sales.salesperson)
        training.check_real(state, command)  # card, gift card, invoice, stock: not in training
        match command:
            case Login(operator=number, pin=pin, take_sale=take_sale):
                await self._login(number, pin, ref, conn, take_sale=take_sale)
            case Logout():
                if state.status in (OPEN, TENDER):  # PAYING was refused above
                    raise Rejected("sale_open", f"finish or cancel sale {state.sale_id} before logging out")
                closed = LaneState(lane=self.number, status=CLOSED, training=state.training)  # training stays on
                await self._save(closed, ref=ref, message="logged out")
                session, self._session = self._session, None
                if session is not None:
                    session.watch.cancel()
            case StartSale():
                new = basket.open_sale(state, uuid.uuid4().hex, self.ctx.clock.now_ms())
                await self._save(new, ref=ref, message="sale started")
            case Scan(code=code, qty=qty):
                await self._scan(code.strip(), qty, ref, asker=command)
            case ReturnItem(code=code, qty=qty):
                await self._scan(code.strip(), qty, ref, returned=True, asker=command)
            case StockMove(code=code, qty=qty, reason=reason, note=note):
                if reason not in stock.MANUAL_REASONS:
                    raise Rejected("bad_reason", f"reason must be one of {', '.join(stock.MANUAL_REASONS)}")
                if not qty or abs(qty) > 1_000_000:
                    raise Rejected("bad_quantity", f"a stock movement needs a quantity, not {qty}")
                await self._stock(code, reason, qty, note, conn, ref, command)
            case StockCount(code=code, counted=counted):
                if not 0 <= counted <= 10_000_000:
                    raise Rejected("bad_quantity", f"a count must be 0 or more, not {counted}")
                await self._stock(code, "count", counted, "", conn, ref, command)
            case VoidLine(line=no):
                new = basket.void_line(state, no)
                given = await self._approval(approval.void(state, no), command)
                await self._save(_with(new, given), ref=ref, message=f"voided line {no}")
            case Total():
                new = basket.to_total(state)
                cash_due = basket.cash_due(new, self.currency)
                due, what = self._money(abs(cash_due)), "to refund" if cash_due < 0 else "to pay"
                await self._save(new, ref=ref, message=f"{what} {self.currency} {due}")
                label = "REFUND" if cash_due < 0 else "TOTAL"
                self._show(lambda: display.total_lines(f"{self.currency} {due}", label=label))
            case CashTender():
                await self._cash(command, conn)
            case CardTender():
                await self._card(command)
            case GiftCardTender():
                await self._giftcard(command)
            case InvoiceTender():
                await self._invoice(command)
            case ResolvePayment():
                pending = payments.card_in_doubt(state, self._money_running)
                result = await payments.ask_terminal(self._terminal(), pending)
                await self._apply(payments.settle(self.state, result, self.currency, ref), None)
            case SetAside():
                await self._set_aside(command)
            case EndOfDay():
                terminal = self.devices.terminal
                name = terminal.name if terminal is not None else None
                effects = terminal_admin.end_of_day(state, name, self._money_running, ref)  # refusals first
                given = await self._approval(approval.end_of_day(name or "the terminal"), command)
                if given is not None:
                    await self._record_approval(given)
                await self._apply(effects, conn)
            case RefundOf(receipt=receipt):
                await self._refund_of(receipt, ref)
            case SetSalesperson(salesperson=number):
                await self._salesperson(number, ref)
            case GiveDiscount() | OverridePrice():  # issue 14, manual discounts
                await self._discount(command)
            case CancelSale():
                if state.status not in (OPEN, TENDER):
                    raise Rejected("no_sale", "no sale is open")
                given = await self._approval(approval.cancel(state), command)
                if state.tenders:
                    self.state = _with(state, given)  # saved with the cancel's first step; journaled with it
                    try:
                        await self._cancel(ref, conn)
                    except Rejected:
                        if self.state.sale_id == state.sale_id and not self.state.cancelling:
                            self.state = msgspec.structs.replace(self.state, approvals=state.approvals)
                        raise
                elif state.lines:
                    await self._close(Close(_with(state, given), "cancel", ref), conn)
                    if state.refund_of:  # issue 14: what central held for this refund is free again
                        await foreign.release(self.ctx.ask, state.sale_id)
                else:
                    await self._save(basket.cleared(state), ref=ref, message="sale cancelled")
            # issue 14, receipts
            case ReceiptQuery():
                await self._receipts(command, conn)
            case CopyReceipt(receipt=receipt):
                await self._copy(receipt, ref, conn)
            # cash management (issue 14, cash): storenode.lanes.cash
            case NoSale() | Payout() | FloatMove() | CashDrop() | CashDeposit() | CashCount():
                await self._cash_event(command, conn)
            # issue 14, park and resume, training mode
            case Park():
                await self._park(ref)
            case Resume(id=typed):
                await self._resume(typed, ref)
            case ParkedQuery():
                listed = await self._parked()
                more = len(listed) > parking.LISTED
                self._answer(ParkedList(sales=listed[: parking.LISTED], more=more, ref=ref), conn)
            case Training(on=on):
                await self._training(on, command, ref)
            case _:
                raise Rejected("unsupported", f"{type(command).__name__} is not a lane command")

    async def _salesperson(self, text: str, ref: int) -> None:
        """The sale's salesperson, checked against the operator register (storenode.lanes.salesperson)."""
        number, store = salesperson.number_of(text), self.ctx.config.store
        found = await self._read(lambda c: operators.find(c, number, store)) if number else None
        mode = self.ctx.config.sales.salesperson
        new = salesperson.enter(self.state, number, mode, found, uuid.uuid4().hex, self.ctx.clock.now_ms())
        message = f"salesperson {found.number} ({found.name})" if found is not None else "no salesperson"
        await self._save(new, ref=ref, message=message)

    async def _discount(self, command: GiveDiscount | OverridePrice) -> None:
        """A manual discount or price override (storenode.lanes.discounts decides; a supervisor approves
        beyond the cashier's limit, and always a price), kept in the lane's saved state until the sale is
        journaled with it."""
        state = self.state
        basket.require_operator(state)
        reasons = await self._read(replica.discount_reasons)
        if isinstance(command, GiveDiscount):
            limit = self.ctx.config.sales.cashier_discount_percent
            new, needed = discounts.discount(state, command, reasons, limit, self.currency)
        else:
            new, needed = discounts.override(state, command, reasons, self.currency)
        given = await self._approval(needed, command)
        if given is not None:
            new = discounts.approved(_with(new, given), given.approver)
        what = discounting.label(new.discounts[-1], self.currency)
        total = self._money(basket.total(new))
        await self._save(new, ref=command.ref, message=f"{what}: total {self.currency} {total}")
        self._show(lambda: display.item_lines(what, f"{self.currency} {total}"))

    async def _check_pin(self, number: str, pin: str) -> operators.Operator:
        """The operator, if the PIN is theirs. Wrong PINs count towards that operator's lockout in the
        store's database (every lane, across restarts; storenode.operators), whether typed to log in or to
        approve; an unknown number is checked against the dummy hash and counted the same way, so it
        costs what a wrong PIN costs and locks out alike. The hash runs in a thread, off the event loop."""
        config, store = self.ctx.config.operators, self.ctx.config.store
        now = self.ctx.clock.now_ms()

        def look(c: sqlite3.Connection) -> tuple[operators.Operator | None, int, int]:
            return operators.find(c, number, store), operators.locked_until(c, number), operators.failures(c, number)

        found, until, failures = await self.ctx.db.read(look)
        if until > now:
            raise Rejected(
                "locked",
                f"operator {number} is locked after {config.pin_failures} wrong PINs until "
                f"{operators.clock_text(until)}; a supervisor sees the store's alarm",
            )
        ok = await trio.to_thread.run_sync(pins.verify, pin, found.pin_hash if found is not None else "")
        if not ok or found is None:
            lockout_ms = round(config.lockout_minutes * 60_000)
            limit = config.pin_failures
            locked = await self.ctx.db.write(lambda c: operators.failed(c, number, now, limit, lockout_ms))
            if locked:
                log.warning("lane %d: operator %r locked after %d wrong PINs", self.number, number, limit)
                await self._report_lockouts()
            raise Rejected("wrong_pin", "wrong operator number or PIN")
        if failures or until:
            await self.ctx.db.write(lambda c: operators.succeeded(c, number))
            if until:
                await self._report_lockouts()
        return found

    async def _report_lockouts(self) -> None:
        now = self.ctx.clock.now_ms()
        operators.report(self.ctx.health, await self.ctx.db.read(lambda c: operators.locked(c, now)))

    async def _approval(self, needed: approval.Needed | None, command: Command | None) -> RecordApproval | None:
        """A supervisor's approval of `needed` (None when nothing needs one): the logged-in operator's own
        when they are a supervisor or manager, else the number and PIN the command carries."""
        if needed is None:
            return None
        logged_in = self.state.operator
        if logged_in:
            store = self.ctx.config.store
            me = await self.ctx.db.read(lambda c: operators.find(c, logged_in, store))
            if me is not None and me.approves:
                return RecordApproval(action=needed.action, approver=me.number, detail=needed.detail)
        number, pin = getattr(command, "approver", ""), getattr(command, "approver_pin", "")
        if not number:
            raise Rejected(
                "approval_needed",
                f"{needed.what} needs a supervisor's approval: {needed.why}; "
                "send it again with a supervisor's number and PIN",
            )
        approver = await self._check_pin(number, pin)
        if not approver.approves:
            raise Rejected(
                "approval_needed",
                f"{needed.what} needs a supervisor's approval ({needed.why}); operator {number} is a {approver.role}",
            )
        log.info("lane %d: %s approved by operator %s", self.number, needed.what, number)
        return RecordApproval(action=needed.action, approver=approver.number, detail=needed.detail)

    async def _record_approval(self, given: RecordApproval) -> None:
        """An approval outside a sale's journal record (the terminal's end of day): kept in `approvals`."""
        at, lane, operator = self.ctx.clock.now_ms(), self.number, self.state.operator
        await self.ctx.db.write(
            lambda c: operators.record_approval(c, at, lane, operator, given.approver, given.action, given.detail)
        )

    async def _login(
        self, number: str, pin: str, ref: int, conn: Subscriber | None, *, take_sale: bool = False
    ) -> None:
        """The session starts before the login's state is published, or the till's answer to its own
        login would show the lane closed (a ready lane without a session shows as closed: `_frame`).

        A sale open on the lane belongs to its operator: anyone else's login is refused, so nobody walks
        up and voids or cancels it. A supervisor who means to finish or clear it (its cashier has gone)
        says so on the login (`take_sale`): the sale becomes theirs, journaled with it as a `takeover`
        approval naming whose it was."""
        operator = await self._check_pin(number, pin)
        state = self.state
        taken = ""
        if state.status in (OPEN, TENDER, PAYING) and state.operator != number:
            if not take_sale:
                raise Rejected(
                    "sale_open",
                    f"operator {state.operator} has sale {state.sale_id} open on this lane"
                    " (a supervisor may take it over)",
                )
            if not operator.approves:
                raise Rejected("not_approver", f"operator {number} is a {operator.role}: only a supervisor takes over")
            taken, given = (
                state.operator,
                RecordApproval(action="takeover", approver=number, detail=f"sale of operator {state.operator}"),
            )
            state = msgspec.structs.replace(state, approvals=[*state.approvals, given])
        status = state.status if state.status in (OPEN, TENDER, PAYING) else READY
        new = msgspec.structs.replace(state, operator=number, status=status)
        await self._persist(new)
        self.state = new
        self._start_session(conn, number)
        mode = " (lane in training mode: nothing here is real)" if new.training else ""
        took = f"; took over sale {new.sale_id} of operator {taken}" if taken else ""
        self._publish(ref=ref, message=f"operator {number} ({operator.name}) logged in{mode}{took}")

    async def _stock(
        self, code: str, reason: str, qty: int, note: str, conn: Subscriber | None, ref: int, command: Command
    ) -> None:
        """A stock move (or count) here; one that changes the level by more than store.toml's
        approval.stock_moves needs a supervisor, who is kept with it in `approvals`."""
        basket.require_operator(self.state)
        movement_at = self.ctx.clock.now_ms()
        store_id, lane, operator = self.ctx.config.store, self.number, self.state.operator

        def look(c: sqlite3.Connection) -> tuple[basket.Item, int]:
            item = self._lookup(c, code)
            if item is None:
                raise Rejected("unknown_barcode", f"no item has barcode {code}")
            return item, stock.level(c, item.item)

        item, level = await self.ctx.db.read(look)
        change = qty - level if reason == "count" else qty
        needed = approval.stock(change, self.ctx.config.approval, f"a {reason} of {change:+d} {item.name}")
        given = await self._approval(needed, command)

        def job(c: sqlite3.Connection) -> tuple[basket.Item, int]:
            ref_text = note or f"{reason} by operator {operator} on lane {lane}"
            movement = StockMovement(
                store=store_id, reason=reason, ref=ref_text, at=movement_at, lines=[StockLine(item=item.item, qty=qty)]
            )
            stock.record(c, movement)
            if given is not None:
                detail = f"{item.item} {reason} {given.detail}"
                operators.record_approval(c, movement_at, lane, operator, given.approver, given.action, detail)
            return item, stock.level(c, item.item)

        item, here = await self.ctx.db.write(job)
        self.ctx.signal.notify(1)
        info = StockInfo(item=item.item, name=item.name, here=here, note=f"{reason} recorded", ref=ref)
        self._answer(info, conn)

    async def _refund_of(self, receipt: str, ref: int) -> None:
        """Open a refund of a receipt: a sale of its own, holding only lines of that receipt."""
        state = self.state
        basket.require_operator(state)
        if state.status in (OPEN, TENDER) and (state.lines or state.tenders):
            raise Rejected("sale_open", f"a refund is a sale of its own: finish or cancel sale {state.sale_id} first")
        config = self.ctx.config
        fresh = basket.open_sale(state, uuid.uuid4().hex, self.ctx.clock.now_ms()) if state.status == READY else state
        heard = await foreign.fetch(self.ctx.ask, receipt, config.store)  # issue 14: central's word on it

        def job(c: sqlite3.Connection) -> tuple[LaneState, refunds.Balance]:
            if heard is not None:
                foreign.keep(c, heard)
            found = refunds.balance(c, receipt, config.store, config.currency, self.number, None)
            training.check_refund(state, found.original)
            if not any(qty > 0 for qty in found.lines.values()):
                raise Rejected("all_returned", f"everything on receipt {found.receipt} was returned already")
            back = refunds.cash_back_of(c, found.receipt, config.store, config.currency)
            new = msgspec.structs.replace(fresh, status=OPEN, refund_of=found.receipt, cash_back=back)
            save_state(c, new)
            return new, found

        new, found = await self.ctx.db.write(job)
        self.state = new
        paid = ", ".join(f"{k} {self._money(v)}" for (k, _), v in found.money.items() if v > 0)
        message = f"refund of receipt {found.receipt} (left to pay back: {paid}): scan the returns"
        self._publish(ref=ref, message=message)

    # -- park and resume, training mode (issue 14; the decisions: storenode.lanes.parking, training) ------
    # -- issue 14, receipts: lookup, copies, a receipt's code scanned ------------------------------------

    async def _park(self, ref: int) -> None:
        state, config, now = self.state, self.ctx.config, self.ctx.clock.now_ms()
        parking.check_parkable(state)  # refused before the database is asked
        parked = await self.ctx.db.write(
            lambda c: parking.park(
                c, state, store=config.store, currency=config.currency, at=now, signer=self.ctx.signer
            ),
            durable=True,
        )
        self.state = basket.cleared(state)
        self.ctx.signal.notify(1)
        total = self._money(basket.total(state))
        self._publish(
            ref=ref, message=f"sale parked as {parked.short_id} ({self.currency} {total}): resume it on any lane"
        )

    async def _resume(self, typed: str, ref: int) -> None:
        state, config, now = self.state, self.ctx.config, self.ctx.clock.now_ms()
        parking.check_resumable(state)
        new, parked = await self.ctx.db.write(
            lambda c: parking.resume(
                c, state, typed, store=config.store, currency=config.currency, at=now, signer=self.ctx.signer
            ),
            durable=True,
        )
        self.state = new
        self.ctx.signal.notify(1)
        where = f"parked on lane {parked.lane}" if parked.lane != self.number else "parked here"
        self._publish(ref=ref, message=f"resumed {parked.short_id} ({where}) at its parked prices")

    async def _parked(self) -> list[ParkedSale]:
        currency = self.currency
        return await self.ctx.db.read(lambda c: parking.left_parked(c, currency, parking.LISTED + 1))

    async def _training(self, on: bool, command: Command, ref: int) -> None:
        state, config, now = self.state, self.ctx.config, self.ctx.clock.now_ms()
        new = training.switched(state, on)
        given = await self._approval(training.needed(self.number, on), command)
        await self.ctx.db.write(
            lambda c: training.record(
                c, new, given, store=config.store, currency=config.currency, at=now, signer=self.ctx.signer
            ),
            durable=True,
        )
        self.state = new
        self.ctx.signal.notify(1)
        self._publish(ref=ref, message=f"training mode {'on: nothing here is real' if on else 'off'}")

    async def _receipts(self, query: ReceiptQuery, conn: Subscriber | None) -> None:
        """Receipts found by id, period, total or card (storenode.lanes.lookup), on the lane's reader; one
        asked for by id comes with its text as printed."""
        config = self.ctx.config
        where = lookup.where_of(query, config.store, config.timezone)
        looked = await self._read(lambda c: lookup.look_up(c, where, query.limit))
        if where.lane and not looked.records:
            raise Rejected("unknown_receipt", f"receipt {query.receipt.strip()} is not in this store's journal")
        text = ""
        if where.lane:
            look = await self._read(lambda c: replica.till_look(c, config.store))
            text = receipt_text(_dressed(self.layout, look), looked.records[0])
        self._answer(ReceiptList(receipts=looked.listed, more=looked.more, text=text, ref=query.ref), conn)

    async def _copy(self, receipt: str, ref: int, conn: Subscriber | None) -> None:
        """One more copy of a receipt: counted and journaled in one durable commit, then printed (see
        storenode.lanes.lookup for why in that order)."""
        basket.require_operator(self.state)
        config, state = self.ctx.config, self.state

        def job(c: sqlite3.Connection) -> tuple[lookup.Copy, replica.TillLook | None]:
            made = lookup.copy_receipt(
                c,
                receipt,
                store=config.store,
                limit=config.sales.copies,
                lane=self.number,
                operator=state.operator,
                currency=config.currency,
                at=self.ctx.clock.now_ms(),
                signer=self.ctx.signer,
                training=state.training,
            )
            return made, replica.till_look(c, config.store)

        made, look = await self.ctx.db.write(job, durable=True)
        self.ctx.signal.notify(1)
        record, number = made.record, made.number
        printer = self.devices.printer
        if printer is not None:
            printer.print_receipt(
                record, copy=number, job_id=f"{made.event.sale_id}", layout=_dressed(printer.layout, look)
            )
        text = receipt_text(_dressed(self.layout, look), record, copy=number)
        listed = [lookup.found(record, number)]
        self._answer(ReceiptList(receipts=listed, text=text, ref=ref), conn)
        self._publish(message=f"copy {number} of receipt {listed[0].receipt} printed")

    async def _receipt_scanned(self, code: str) -> bool:
        """Whether `code` is a receipt's id rather than an item's barcode (an item's always wins)."""
        if not lookup.scanned_receipt(code, is_item=False):
            return False
        return lookup.scanned_receipt(code, is_item=await self._read(lambda c: self._lookup(c, code) is not None))

    async def _return_of_receipt(self, code: str, qty: int, ref: int) -> None:
        state = self.state
        if not 1 <= qty <= basket.MAX_QTY:
            raise Rejected("bad_quantity", f"quantity must be 1 to {basket.MAX_QTY}, not {qty}")
        config = self.ctx.config

        def decide(c: sqlite3.Connection) -> LaneState:
            item = self._lookup(c, code)
            lines = refunds.return_lines(c, state, code, qty, item.item if item else "", config.store, self.currency)
            new = basket.add_returned(state, lines)
            back = refunds.cash_back_of(c, state.refund_of, config.store, config.currency)  # refunds closed meanwhile
            return msgspec.structs.replace(new, cash_back=back)

        def job(c: sqlite3.Connection) -> LaneState:
            new = decide(c)
            save_state(c, new)
            return new

        # issue 14: central holds the refund's lines before one goes in (storenode.lanes.foreign)
        would = await self.ctx.db.read(decide)
        held = foreign.claimed_lines([(line.origin, line.qty, line.voided) for line in would.lines])
        await foreign.claim(self.ctx.ask, state.refund_of, state.sale_id, held, config.store)
        new = await self.ctx.db.write(job)
        self.state = new
        back = sum(line.amount for line in new.lines[len(state.lines) :])
        name = new.lines[-1].name
        self._publish(ref=ref, message=f"returned: {qty} x {name} {self._money(back)} (receipt {state.refund_of})")
        self._show(lambda: display.item_lines(f"returned: {qty} x {name}", self._money(back)))

    async def _scan(
        self, code: str, qty: int, ref: int, *, returned: bool = False, asker: Command | None = None
    ) -> None:
        state = self.state
        basket.require_operator(state)
        problem = gs1.code_problem(code)
        if problem is not None:
            raise Rejected("bad_barcode", problem)
        if not returned and await self._receipt_scanned(code):  # issue 14: a receipt's code opens its refund
            await self._refund_of(code, ref)
            return
        if state.refund_of and state.status in (OPEN, TENDER):
            if not returned:
                raise Rejected("refund_sale", f"this sale refunds receipt {state.refund_of}: sell in a new sale")
            await self._return_of_receipt(code, qty, ref)
            return
        sale_id = uuid.uuid4().hex if state.status == READY else ""
        now = self.ctx.clock.now_ms()

        measured = gs1.decode(code, self.ctx.config.gs1)  # a label printed by a scale elsewhere

        def decide(c: sqlite3.Connection, weight_g: int = 0) -> tuple[LaneState | None, basket.Item]:
            item = self._lookup(c, measured.key if measured else code)
            if item is None:
                raise Rejected("unknown_barcode", f"no item has barcode {code}")
            if not item.active and not returned:
                raise Rejected("not_sold", f"{item.name} ({item.item}) is no longer sold")
            if item.price < 0 and not (measured and measured.price):
                raise Rejected("no_price", f"{item.name} ({item.item}) has no price in this store now")
            price = None
            if measured is not None:
                if measured.weight_g and not item.weighed:
                    raise Rejected("bad_barcode", f"{code} carries a weight but {item.name} is sold by the piece")
                weight_g = measured.weight_g
                price = None if measured.weight_g else measured.price
                if price and item.weighed and item.price > 0:  # a scale's price label: stock still moves in grams
                    weight_g = round_half_up(price * 1000, item.price)
                if weight_g <= 0 and not price:
                    raise Rejected("bad_barcode", f"{code} carries no weight or price")
            elif item.weighed and not weight_g:
                return None, item  # weigh first, outside the database job, then come back
            current = basket.open_sale(state, sale_id, now) if sale_id else state
            merge = self.ctx.config.sales.merge_lines
            added = basket.add_line(
                current, item, code, qty, returned=returned, weight_g=weight_g, price=price, merge=merge
            )
            return added, item

        new, item = await self._read(decide)
        if new is None:
            grams = await self._weigh(item)
            new, item = await self._read(lambda c: decide(c, grams))
            assert new is not None
        refunded_on = None
        if returned and not (measured is not None and measured.price):
            since = now - self.ctx.config.approval.refunded_days * 86_400_000
            refunded_on = await self._read(lambda c: refunds.refunded_on_receipt(c, item.item, since))
        needed = self._scan_needs(state, new, item, measured, returned, refunded_on)
        new = _with(new, await self._approval(needed, asker))
        await self._persist(new)
        self.state = new
        line = basket.scanned_line(state, new)
        amount, merged = line.amount, ""
        if len(new.lines) == len(state.lines):  # onto a line of the sale already (store.toml [sales] merge_lines)
            amount -= state.lines[line.no - 1].amount
            merged = f" (line {line.no}: {line.qty})"
        if line.weight_g:
            what = f"{line.weight_g / 1000:.3f} kg {item.name}"
        else:
            what = f"{qty} x {item.name}" if qty != 1 else item.name
        prefix = "returned: " if returned else ""
        self._publish(ref=ref, message=f"{prefix}{what} {self._money(amount)}{merged}", popup=item.popup)
        self._show(lambda: display.item_lines(f"{prefix}{what}", self._money(amount)))

    def _scan_needs(
        self,
        before: LaneState,
        after: LaneState,
        item: basket.Item,
        measured: gs1.Measured | None,
        returned: bool,
        refunded_on: str | None,
    ) -> approval.Needed | None:
        """Whether the line just added needs a supervisor: a price label outside the item's range, or a
        receipt-less return (above the store's amount, of a price label at all, or of an item refunded on a
        receipt lately)."""
        config, currency = self.ctx.config.approval, self.currency
        label_price = measured.price if measured is not None else 0
        if returned:
            return approval.returned(
                before, after, config, currency, price_label=bool(label_price), refunded_on=refunded_on
            )
        if label_price:
            return approval.label(item, label_price, config, currency)
        return None

    async def _weigh(self, item: basket.Item) -> int:
        """A stable, positive, fresh weight from this lane's scale, or a refusal the till shows."""
        scale = self.devices.scale
        if scale is None:
            raise Rejected("no_scale", f"{item.name} is sold by weight and lane {self.number} has no scale")
        try:
            with trio.fail_after(SCALE_TIMEOUT):
                return (await scale.weigh()).grams
        except trio.TooSlowError:
            raise Rejected("no_answer", f"the scale did not give a stable weight within {SCALE_TIMEOUT:g} s") from None

    # -- decisions carried out --------------------------------------------------------------------------

    async def _apply(self, effects: Iterable[Effect], conn: Subscriber | None) -> None:
        """Carry out a decision's effects, in order: the one place where a payment, a refund to a tender or
        the terminal's administration changes the lane, its database row, its tills and its devices.
        A receipt goes to `conn`, the till that asked, or to every till when None."""
        for effect in effects:
            match effect:
                case Save():
                    await self._keep(effect)
                case Close():
                    await self._close(effect, conn)
                case StartCard(pending):
                    self._start_money(functools.partial(self._card_call, self._terminal(), pending))
                case ContinueCancel(ref):
                    await self._cancel(ref, None)
                case Publish(message, ref):
                    self._publish(ref=ref, message=message)
                case Refuse(code, message):
                    raise Rejected(code, message)
                case SetAsideAtTerminal(reason):
                    terminal = self.devices.terminal
                    if terminal is not None and terminal.unresolved is not None:
                        terminal.abandon_unknown(reason)
                case StartEndOfDay(ref):
                    self._start_money(functools.partial(self._end_of_day, self._terminal(), ref, conn))

    async def _keep(self, save: Save) -> None:
        """A state a decision made: through `_save` when nothing else has to go with it, else in one job
        with what has to (a refund's check, gift card moves for central) and durably when money moves."""
        if not (save.durable or save.checked or save.moves or save.quiet):
            await self._save(save.state, ref=save.ref, message=save.message)
            return
        config, new, moves = self.ctx.config, save.state, save.moves

        def job(c: sqlite3.Connection) -> None:
            if save.checked:
                refunds.check(c, new, config.store, config.currency, self.number)
            save_state(c, new)
            payments.queue_moves(c, moves)

        await self.ctx.db.write(job, durable=save.durable)
        self.state = new
        if moves:
            self.ctx.signal.notify(len(moves))
        if not save.quiet:
            self._publish(ref=save.ref, message=save.message)

    def _terminal(self) -> PaymentTerminal:
        return payments.terminal_of(self.devices.terminal, self.number)

    async def _rooms(self) -> dict[refunds.Key, int]:
        """In a refund of a receipt, what may still go back by each tender; nothing to read otherwise."""
        state, config = self.state, self.ctx.config
        if not state.refund_of:
            return {}
        return await self.ctx.db.read(lambda c: refunds.rooms(c, state, config.store, config.currency))

    async def _card_call(self, terminal: PaymentTerminal, pending: RecordPayment) -> MoneyDone:
        return MoneyDone(await payments.card_call(terminal, pending, self.devices.payment_timeout))

    async def _end_of_day(self, terminal: PaymentTerminal, ref: int, conn: Subscriber | None) -> TerminalDone:
        frame = await terminal_admin.run_end_of_day(terminal, self.number, self.devices.payment_timeout, ref)
        return TerminalDone(frame, conn)

    async def _recover(self) -> None:
        """On lane start: a money call saved as pending was cut short by a crash; settle it before anything else."""
        pending = self.state.pending
        if pending is None:
            return
        if pending.method != "card":  # a gift card move whose answer never arrived: void it at central
            message = "the store stopped before central's answer; voided"
            now = self.ctx.clock.now_ms()
            await self._apply(payments.giftcard_unknown(self.state, self.ctx.config.store, now, message), None)
            return
        terminal = self.devices.terminal
        if terminal is None:
            log.error("lane %d: card attempt %s in doubt and no terminal configured", self.number, pending.reference)
            return
        terminal.adopt_unknown(payments.result_of(pending))
        log.warning("lane %d: settling card attempt %s from the terminal", self.number, pending.reference)

        async def settle_in_doubt() -> MoneyDone | None:
            unresolved = terminal.unresolved
            if unresolved is None:
                return None
            return MoneyDone(await payments.settle_unknown(terminal, unresolved))

        self._start_money(settle_in_doubt)

    async def _cash(self, command: CashTender, conn: Subscriber | None) -> None:
        config = self.ctx.config
        foreign = payments.foreign_currency(self.state, command, self.currency, config.payments.foreign_cash)
        rate = await payments.rate(self.ctx.ask, self.ctx.db, self.currency, foreign, self.number) if foreign else None
        await self._apply(payments.cash(self.state, command, self.currency, rate, config.payments.max_change), conn)

    async def _card(self, command: CardTender) -> None:
        terminal = self._terminal()
        rooms = await self._rooms()
        now = payments.TerminalNow.of(terminal)
        pending = payments.card(self.state, command, self.currency, now, rooms)
        if now.baseline is None:  # the terminal's last trace is asked only for an attempt it may start
            pending = msgspec.structs.replace(pending, prior_txn=await payments.last_trace(terminal))
        await self._apply(payments.start_card(self.state, pending, command.ref, self.currency), None)

    async def _giftcard(self, command: GiftCardTender) -> None:
        config = self.ctx.config
        now = self.ctx.clock.now_ms()
        rooms = await self._rooms()
        move, attempt = payments.giftcard(
            self.state, command, self.currency, config.store, now, uuid.uuid4().hex, rooms
        )
        await self._apply(attempt, None)  # saved before central is asked
        heard = await payments.ask_central(self.ctx.ask, move)
        spent = await self.ctx.db.read(lambda c: payments.offline_spent(c, move.card)) if heard.unreachable else 0
        await self._apply(payments.giftcard_heard(self.state, move, command, heard, config.payments, spent), None)

    async def _invoice(self, command: InvoiceTender) -> None:
        if payments.payable(self.state) < 0:
            effects = payments.invoice_credit(self.state, command, self.currency, await self._rooms())
        else:
            name = await payments.customer_name(self.ctx.ask, command.customer.strip())
            effects = payments.invoice(self.state, command, self.currency, name)
        await self._apply(effects, None)

    async def _cancel(self, ref: int, conn: Subscriber | None) -> None:
        terminal = self.devices.terminal
        now = payments.TerminalNow.of(terminal) if terminal is not None else None
        store, at = self.ctx.config.store, self.ctx.clock.now_ms()
        await self._apply(payments.cancel(self.state, ref, now, self.currency, store, at), conn)

    async def _set_aside(self, command: SetAside) -> None:
        reason = terminal_admin.aside_reason(self.state, command, self._money_running)
        checked = await self._check_pin(command.operator, command.pin)  # before the terminal or the state is touched
        if not checked.approves:
            raise Rejected(
                "approval_needed",
                f"setting a card payment aside is a supervisor's; operator {command.operator} is a {checked.role}",
            )
        pending = self.state.pending
        assert pending is not None
        last = await terminal_admin.ask_once_more(self.devices.terminal, pending, self.number)
        if last is not None:  # the terminal knew after all: settled as any answer of it
            await self._apply(payments.settle(self.state, last, self.currency, command.ref), None)
            return
        await self._apply(terminal_admin.set_aside(self.state, command, reason, self.currency), None)

    async def _cash_event(self, command: cash.CashCommand, conn: Subscriber | None) -> None:
        """A cash management action (storenode.lanes.cash): journaled with all it changes in one durable
        commit; only then the drawer opens, the slip prints and the till hears it is done."""
        state, config = self.state, self.ctx.config
        decided = cash.plan(state, command, config)  # every refusal of the input comes first
        if isinstance(command, NoSale):
            await self._check_pin(state.operator, command.pin)
        given = await self._approval(decided.needed, command)
        now = self.ctx.clock.now_ms()
        day = cash.day_of(now, config.timezone)

        def job(c: sqlite3.Connection) -> cash.Done:
            return cash.carry_out(
                c,
                decided,
                given,
                store=config.store,
                lane=self.number,
                operator=state.operator,
                currency=config.currency,
                at=now,
                day=day,
                signer=self.ctx.signer,
                training=state.training,
            )

        done = await self.ctx.db.write(job, durable=True)
        record = done.record
        if not done.again:
            self.ctx.signal.notify(1)
        devices = self.devices
        if decided.slip and devices.printer is not None:
            printer = devices.printer
            try:
                slip = encode_cash_slip(printer.layout, record, profile=printer.profile)
                printer.submit(f"cash-{record.sale_id}", slip)
            except Exception:  # the event is journaled whatever the printer's profile makes of the slip
                log.exception("lane %d: cannot encode the %s slip %s", self.number, decided.code, record.sale_id)
        if decided.kick and devices.drawer is not None:
            devices.drawer.open(job_id=f"kick-{record.sale_id}")  # the event's id: a retry kicks once
        event = record.event
        assert event is not None
        answer = CashDone(
            lane=self.number,
            code=event.code,
            receipt_no=record.receipt_no,
            event=record.sale_id,
            currency=record.currency,
            amounts=[
                TenderLine(kind=t.kind, amount=t.amount, currency=t.currency, value=t.sale_value) for t in event.amounts
            ],
            counts=cash.count_lines(record, done.uncounted),
            message=cash.message(done, self.currency),
            text=cash_slip_text(self.layout, record) if decided.slip else "",
            ref=command.ref,
        )
        self._answer(answer, conn)
        self._publish(ref=command.ref, message=answer.message)

    async def _close(self, close: Close, conn: Subscriber | None) -> None:
        """Journal the sale (or cancelled sale), queue it for central, clear the lane: one durable commit;
        then the receipt, the drawer and the customer display."""
        config = self.ctx.config
        now = self.ctx.clock.now_ms()
        moves = close.moves

        def job(c: sqlite3.Connection) -> tuple[closing.Closed, replica.TillLook | None]:
            closed = closing.close_sale(
                c,
                close.state,
                store=config.store,
                currency=config.currency,
                kind=close.kind,
                closed_at=now,
                signer=self.ctx.signer,
                tendered=close.tendered,
                cash=close.cash,
                extra=(lambda c: payments.queue_moves(c, moves)) if moves else None,
            )
            return closed, replica.till_look(c, config.store)

        closed, look = await self.ctx.db.write(job, durable=True)
        record, kind, ref = closed.record, close.kind, close.ref
        self.state = closed.cleared
        self.ctx.signal.notify(closed.queued)
        text = receipt_text(_dressed(self.layout, look), record)
        devices = self.devices
        if devices.printer is not None:
            devices.printer.print_receipt(record, layout=_dressed(devices.printer.layout, look))
        cash_taken = any(t.kind == "cash" for t in record.tenders)
        if devices.drawer is not None and kind == "sale" and cash_taken:
            devices.drawer.open(job_id=f"kick-{record.sale_id}")  # the sale id: a retry kicks once
        tendered = sum(t.sale_value for t in record.tenders)
        back = -(record.total + record.rounding)
        if kind == "sale" and back > 0:
            self._show(lambda: display.total_lines(self._money(back), label="PAID BACK"))
        elif kind == "sale":
            self._show(lambda: display.change_lines(self._money(tendered), self._money(record.change)))
        answer = Receipt(
            lane=self.number,
            receipt_no=record.receipt_no,
            sale_id=record.sale_id,
            total=record.total,
            cash_due=record.total + record.rounding,
            tendered=tendered,
            change=record.change,
            currency=record.currency,
            text=text,
            ref=ref,
        )
        self._answer(answer, conn)
        if kind == "cancel":
            message = "sale cancelled"
        elif back > 0:  # a refund (or returns worth more than what was bought): money went back
            message = f"paid back {config.currency} {format_money(back, config.currency)}"
        else:
            message = f"change {format_money(record.change, config.currency)}"
        self._publish(ref=ref, message=message)


def _with(state: LaneState, given: RecordApproval | None) -> LaneState:
    """The lane's state with an approval just given, to be journaled with the sale."""
    if given is None:
        return state
    return msgspec.structs.replace(state, approvals=[*state.approvals, given])


def _dressed(layout: ReceiptLayout, look: replica.TillLook | None) -> ReceiptLayout:
    """A receipt layout with central's till configuration (as the replica holds it now) over store.toml's texts."""
    return layout if look is None else msgspec.structs.replace(layout, header=look.header, footer=look.footer)
