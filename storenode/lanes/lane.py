"""One lane actor per till lane: all sale logic, one command at a time.

Each command computes the new lane state as a pure function, persists it in the same database job
(so a `kill -9` at any instant leaves either the old or the new basket on disk), and only then adopts
it and pushes it to the attached tills. A completed sale is appended to the journal and queued for
central in one durable transaction before the till hears "done". A change that is not a refund and
needs nothing else written with it (a scan, a login, a total: `_save`) is persisted to the lane's state
file instead (statefile.py: the same promise against `kill -9`, without the hop to the database
thread that would cost half of a scan's round trip).
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import msgspec
import trio

from devices import display
from devices.escpos import ReceiptLayout, receipt_text
from protocol import gs1, link
from protocol.frames import (
    CancelSale,
    CardTender,
    CashTender,
    Command,
    EndOfDay,
    Error,
    GiftCardTender,
    InvoiceTender,
    Login,
    Logout,
    QuickKey,
    Receipt,
    RecordTender,
    RefundOf,
    ResolvePayment,
    ReturnItem,
    SaleRecord,
    SaleState,
    Scan,
    SetAside,
    StartSale,
    StockCount,
    StockInfo,
    StockLine,
    StockMove,
    StockMovement,
    Stream,
    TillFrame,
    Total,
    VoidLine,
    Welcome,
)
from protocol.money import format_money, round_half_up
from runtime.clock import Clock
from runtime.database import Database
from runtime.health import HealthBoard
from runtime.mailbox import Mailbox, Rejected, serve
from storenode import stock
from storenode.config import StoreConfig
from storenode.journal import chain
from storenode.lanes import basket, payments, refunds, statefile, terminal_admin
from storenode.lanes.basket import CLOSED, OPEN, PAYING, READY, TENDER, LaneState
from storenode.lanes.payments import MoneyDone
from storenode.lanes.saved import load_saved, save_state, saved_seq
from storenode.lanes.terminal_admin import TerminalDone
from storenode.peripherals import LaneDevices, receipt_layout
from storenode.sync import outbox, replica
from storenode.sync.outbox import OutboxSignal

log = logging.getLogger(__name__)

JOURNAL_STREAM = Stream.JOURNAL
SCALE_TIMEOUT = 3.0
MAX_PIN_FAILURES = 5
PIN_LOCKOUT = 60.0  # seconds of trio time

_T = TypeVar("_T")


class Subscriber(Protocol):
    """A till connection as a lane sees it: frames are pushed, never awaited (a slow till cannot
    stall a lane; the gateway drops it and it reattaches)."""

    till: str

    def push(self, frame: TillFrame) -> None: ...


@dataclass
class Attach:
    conn: Subscriber


@dataclass
class Detach:
    conn: Subscriber


@dataclass
class Do:
    command: Command
    conn: Subscriber | None  # None: a device bound to the lane (a scanner); refusals go to every till


@dataclass
class Republish:
    """Something outside the sale changed (the central link): show the tills the lane again."""


LaneRequest = Attach | Detach | Do | Republish | MoneyDone | TerminalDone
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
    devices: dict[int, LaneDevices] = field(default_factory=dict)


class Lane:
    def __init__(self, number: int, ctx: StoreContext, *, capacity: int = 128) -> None:
        self.number = number
        self.name = f"lane-{number}"
        self.mailbox: Mailbox[LaneRequest] = Mailbox(capacity)
        self.ctx = ctx
        self.state = LaneState(lane=number)
        self.subscribers: list[Subscriber] = []
        self.devices = ctx.devices.get(number) or LaneDevices()
        self.layout = receipt_layout(ctx.config)
        self._pin_failures = 0
        self._locked_until = 0.0
        self._nursery: trio.Nursery | None = None
        self.money_running = False
        self._reader: sqlite3.Connection | None = None  # scans look up here, on the event loop (see _read)
        self._file: statefile.StateFile | None = None  # scans are kept here (see _keep)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            self.state = await self._load()
            async with trio.open_nursery() as nursery:  # card calls run here, beside the mailbox
                self._nursery = nursery
                self.money_running = False
                await payments.recover(self)
                self._publish(message="lane restarted" if self.subscribers else "")
                task_status.started()
                await serve(self.mailbox, self._handle)
        finally:
            self._drop_reader()
            self._drop_file()

    async def _load(self) -> LaneState:
        """The lane as it was: the database's row, or the state file's newest record if that was built on the
        row's latest save (a scan acknowledged after it; see statefile.py).

        A record that wins is saved to the row at once and only then is the file emptied: a crash in
        between loads the same state again (the row's counter now outranks the file). From here on the
        file holds only what comes after the row, which is what `_keep` relies on."""
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

    async def _keep(self, new: LaneState) -> None:
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

    def start_money(self, call: Callable[..., Awaitable[None]], *args: object) -> None:
        """Run a money call beside the lane; it reports back through the mailbox (MoneyDone)."""
        assert self._nursery is not None

        async def running() -> None:
            self.money_running = True
            try:
                await call(self, *args)
            finally:
                self.money_running = False

        self._nursery.start_soon(running)

    @property
    def currency(self) -> str:
        return self.ctx.config.currency

    def _frame(self, *, ref: int = 0, message: str = "", popup: str = "") -> SaleState:
        frame = basket.to_frame(self.state, self.currency, ref=ref, message=message)
        frame.popup = popup
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
        for conn in self.subscribers:
            conn.push(frame)

    def _show(self, lines: Callable[[], tuple[str, str]]) -> None:
        """Lines are computed only when the lane has a customer display (they cost a scan's budget)."""
        if self.devices.display is not None:
            self.devices.display.show(*lines())

    def _money(self, amount: int) -> str:
        return format_money(amount, self.currency)

    async def _save(self, new: LaneState, *, ref: int, message: str = "") -> None:
        await self._keep(new)
        self.state = new
        self._publish(ref=ref, message=message)

    async def _handle(self, request: LaneRequest) -> None:
        match request:
            case Attach(conn):
                if conn not in self.subscribers:
                    self.subscribers.append(conn)
                look = await self.ctx.db.read(lambda c: replica.till_look(c, self.ctx.config.store))
                conn.push(
                    Welcome(
                        store=self.ctx.config.store,
                        lane=self.number,
                        till=conn.till,
                        state=self._frame(),
                        quick_keys=[QuickKey(label=a, code=c) for a, c in look.quick_keys] if look else [],
                        timezone=self.ctx.config.timezone,
                    )
                )
            case Detach(conn):
                if conn in self.subscribers:
                    self.subscribers.remove(conn)
            case Republish():
                self._publish()
            case MoneyDone(result):
                await payments.settle(self, result)
            case TerminalDone():
                terminal_admin.report(self, request)
            case Do(command, None):
                try:
                    await self._command(command, None)
                except Rejected as refusal:  # nobody asked but the device: tell the tills
                    self._broadcast(Error(code=refusal.code, message=refusal.message))
                    raise
            case Do(command, conn) if conn is not None:
                if conn not in self.subscribers:  # the lane restarted since this till attached
                    self.subscribers.append(conn)
                await self._command(command, conn)

    async def _command(self, command: Command, conn: Subscriber | None) -> None:
        state, ref = self.state, command.ref
        if state.status == PAYING and not isinstance(command, ResolvePayment | SetAside | Login):
            raise Rejected("payment_in_progress", "a payment is in progress or in doubt; wait or resolve it first")
        match command:
            case Login(operator=number, pin=pin):
                await self._login(number, pin, ref)
            case Logout():
                if state.status in (OPEN, TENDER):  # PAYING was refused above
                    raise Rejected("sale_open", f"finish or cancel sale {state.sale_id} before logging out")
                await self._save(LaneState(lane=self.number, status=CLOSED), ref=ref, message="logged out")
            case StartSale():
                new = basket.open_sale(state, uuid.uuid4().hex, self.ctx.clock.now_ms())
                await self._save(new, ref=ref, message="sale started")
            case Scan(code=code, qty=qty):
                await self._scan(code.strip(), qty, ref)
            case ReturnItem(code=code, qty=qty):
                await self._scan(code.strip(), qty, ref, returned=True)
            case StockMove(code=code, qty=qty, reason=reason, note=note):
                if reason not in stock.MANUAL_REASONS:
                    raise Rejected("bad_reason", f"reason must be one of {', '.join(stock.MANUAL_REASONS)}")
                if not qty or abs(qty) > 1_000_000:
                    raise Rejected("bad_quantity", f"a stock movement needs a quantity, not {qty}")
                await self._stock(code, reason, qty, note, conn, ref)
            case StockCount(code=code, counted=counted):
                if not 0 <= counted <= 10_000_000:
                    raise Rejected("bad_quantity", f"a count must be 0 or more, not {counted}")
                await self._stock(code, "count", counted, "", conn, ref)
            case VoidLine(line=no):
                new = basket.void_line(state, no)
                await self._save(new, ref=ref, message=f"voided line {no}")
            case Total():
                new = basket.to_total(state)
                due = self._money(basket.cash_due(new, self.currency))
                await self._save(new, ref=ref, message=f"to pay {self.currency} {due}")
                self._show(lambda: display.total_lines(f"{self.currency} {due}"))
            case CashTender():
                await payments.cash(self, command, conn)
            case CardTender():
                await payments.card(self, command)
            case GiftCardTender():
                await payments.giftcard(self, command)
            case InvoiceTender():
                await payments.invoice(self, command)
            case ResolvePayment():
                await payments.resolve(self, ref)
            case SetAside():
                await terminal_admin.set_aside(self, command)
            case EndOfDay():
                await terminal_admin.end_of_day(self, ref, conn)
            case RefundOf(receipt=receipt):
                await self._refund_of(receipt, ref)
            case CancelSale():
                if state.status not in (OPEN, TENDER):
                    raise Rejected("no_sale", "no sale is open")
                if state.tenders:
                    await payments.cancel(self, ref, conn)
                elif state.lines:
                    await self._close(state, "cancel", ref, conn)
                else:
                    await self._save(basket.cleared(state), ref=ref, message="sale cancelled")
            case _:
                raise Rejected("unsupported", f"{type(command).__name__} is not a lane command")

    async def check_pin(self, number: str, pin: str) -> str:
        """The operator's name if the PIN is theirs; wrong PINs count towards the lane's lockout, whether
        typed to log in or to approve a supervisor's action."""
        now = trio.current_time()
        if now < self._locked_until:
            raise Rejected("locked", f"too many wrong PINs; try again in {self._locked_until - now:.0f} s")
        found = await self.ctx.db.read(lambda c: replica.operator(c, number))
        ok = False
        if found is not None:
            _, salt, expected = found
            ok = hmac.compare_digest(await trio.to_thread.run_sync(replica.hash_pin, pin, salt), expected)
        if not ok or found is None:
            self._pin_failures += 1
            if self._pin_failures >= MAX_PIN_FAILURES:
                self._pin_failures = 0
                self._locked_until = now + PIN_LOCKOUT
            raise Rejected("wrong_pin", "wrong operator number or PIN")
        self._pin_failures = 0
        return found[0]

    async def _login(self, number: str, pin: str, ref: int) -> None:
        name = await self.check_pin(number, pin)
        state = self.state
        if state.status in (OPEN, TENDER, PAYING) and state.operator != number:
            raise Rejected("sale_open", f"operator {state.operator} has sale {state.sale_id} open on this lane")
        status = state.status if state.status in (OPEN, TENDER, PAYING) else READY
        new = msgspec.structs.replace(state, operator=number, status=status)
        await self._save(new, ref=ref, message=f"operator {number} ({name}) logged in")

    async def _stock(self, code: str, reason: str, qty: int, note: str, conn: Subscriber | None, ref: int) -> None:
        basket.require_operator(self.state)
        movement_at = self.ctx.clock.now_ms()
        store_id = self.ctx.config.store

        def job(c: sqlite3.Connection) -> tuple[basket.Item, int]:
            item = self._lookup(c, code)
            if item is None:
                raise Rejected("unknown_barcode", f"no item has barcode {code}")
            ref_text = note or f"{reason} by operator {self.state.operator} on lane {self.number}"
            movement = StockMovement(
                store=store_id, reason=reason, ref=ref_text, at=movement_at, lines=[StockLine(item=item.item, qty=qty)]
            )
            stock.record(c, movement)
            return item, stock.level(c, item.item)

        item, here = await self.ctx.db.write(job)
        self.ctx.signal.notify(1)
        info = StockInfo(item=item.item, name=item.name, here=here, note=f"{reason} recorded", ref=ref)
        if conn is not None:
            conn.push(info)
        else:
            self._broadcast(info)

    async def _refund_of(self, receipt: str, ref: int) -> None:
        """Open a refund of a receipt: a sale of its own, holding only lines of that receipt."""
        state = self.state
        basket.require_operator(state)
        if state.status in (OPEN, TENDER) and (state.lines or state.tenders):
            raise Rejected("sale_open", f"a refund is a sale of its own: finish or cancel sale {state.sale_id} first")
        config = self.ctx.config
        fresh = basket.open_sale(state, uuid.uuid4().hex, self.ctx.clock.now_ms()) if state.status == READY else state

        def job(c: sqlite3.Connection) -> tuple[LaneState, refunds.Balance]:
            found = refunds.balance(c, receipt, config.store, config.currency, self.number, None)
            if not any(qty > 0 for qty in found.lines.values()):
                raise Rejected("all_returned", f"everything on receipt {found.receipt} was returned already")
            new = msgspec.structs.replace(fresh, status=OPEN, refund_of=found.receipt)
            save_state(c, new)
            return new, found

        new, found = await self.ctx.db.write(job)
        self.state = new
        paid = ", ".join(f"{k} {self._money(v)}" for (k, _), v in found.money.items() if v > 0)
        message = f"refund of receipt {found.receipt} (left to pay back: {paid}): scan the returns"
        self._publish(ref=ref, message=message)

    async def _return_of_receipt(self, code: str, qty: int, ref: int) -> None:
        state = self.state
        if not 1 <= qty <= basket.MAX_QTY:
            raise Rejected("bad_quantity", f"quantity must be 1 to {basket.MAX_QTY}, not {qty}")
        config = self.ctx.config

        def job(c: sqlite3.Connection) -> LaneState:
            item = self._lookup(c, code)
            lines = refunds.return_lines(c, state, code, qty, item.item if item else "", config.store, self.currency)
            new = basket.add_returned(state, lines)
            save_state(c, new)
            return new

        new = await self.ctx.db.write(job)
        self.state = new
        back = sum(line.amount for line in new.lines[len(state.lines) :])
        name = new.lines[-1].name
        self._publish(ref=ref, message=f"returned: {qty} x {name} {self._money(back)} (receipt {state.refund_of})")
        self._show(lambda: display.item_lines(f"returned: {qty} x {name}", self._money(back)))

    async def _scan(self, code: str, qty: int, ref: int, *, returned: bool = False) -> None:
        state = self.state
        basket.require_operator(state)
        if not code:
            raise Rejected("bad_barcode", "empty barcode")
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
            return basket.add_line(current, item, code, qty, returned=returned, weight_g=weight_g, price=price), item

        new, item = await self._read(decide)
        if new is None:
            grams = await self._weigh(item)
            new, item = await self._read(lambda c: decide(c, grams))
            assert new is not None
        await self._keep(new)
        self.state = new
        line = new.lines[-1]
        if line.weight_g:
            what = f"{line.weight_g / 1000:.3f} kg {item.name}"
        else:
            what = f"{qty} x {item.name}" if qty != 1 else item.name
        prefix = "returned: " if returned else ""
        self._publish(ref=ref, message=f"{prefix}{what} {self._money(line.amount)}", popup=item.popup)
        self._show(lambda: display.item_lines(f"{prefix}{what}", self._money(line.amount)))

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

    async def _close(
        self,
        state: LaneState,
        kind: str,
        ref: int,
        conn: Subscriber | None,
        tendered: int = 0,
        cash: RecordTender | None = None,
        also: Callable[[sqlite3.Connection], int] | None = None,
    ) -> None:
        """Journal the sale (or cancelled sale), queue it for central, clear the lane: one durable commit.
        `also` queues more events for central in the same commit (gift card moves) and says how many."""
        config = self.ctx.config
        now = self.ctx.clock.now_ms()
        after = basket.cleared(state)

        def build(c: sqlite3.Connection, no: int) -> SaleRecord:
            record = basket.record(
                state,
                store=config.store,
                receipt_no=no,
                kind=kind,
                currency=config.currency,
                closed_at=now,
                tendered=tendered,
                cash=cash,
            )
            if kind == "sale":  # the cash part of a refund is known only now
                refunds.check(c, record, config.store, config.currency, self.number)
            return record

        def job(c: sqlite3.Connection) -> tuple[SaleRecord, int, replica.TillLook | None]:
            record, _ = chain.append(
                c,
                self.number,
                lambda no: build(c, no),
                lambda _record, body: outbox.enqueue(c, JOURNAL_STREAM, kind, body),
            )
            movements = stock.sale_movements(config.store, state.sale_id, now, state.lines) if kind == "sale" else []
            for movement in movements:
                stock.record(c, movement)
            save_state(c, after)
            queued = 1 + len(movements) + (also(c) if also is not None else 0)
            return record, queued, replica.till_look(c, config.store)

        record, queued, look = await self.ctx.db.write(job, durable=True)
        self.state = after
        self.ctx.signal.notify(queued)
        text = receipt_text(_dressed(self.layout, look), record)
        devices = self.devices
        if devices.printer is not None:
            devices.printer.print_receipt(record, layout=_dressed(devices.printer.layout, look))
        cash_taken = any(t.kind == "cash" for t in record.tenders)
        if devices.drawer is not None and kind == "sale" and cash_taken:
            devices.drawer.open(job_id=f"kick-{record.sale_id}")  # the sale id: a retry kicks once
        tendered = sum(t.sale_value for t in record.tenders)
        if kind == "sale":
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
        if conn is not None:
            conn.push(answer)
        else:
            self._broadcast(answer)
        message = "sale cancelled" if kind == "cancel" else f"change {format_money(record.change, config.currency)}"
        self._publish(ref=ref, message=message)


def _dressed(layout: ReceiptLayout, look: replica.TillLook | None) -> ReceiptLayout:
    """A receipt layout with central's till configuration (as the replica holds it now) over store.toml's texts."""
    return layout if look is None else msgspec.structs.replace(layout, header=look.header, footer=look.footer)
