"""A lane actor alone, for the fast lane tests: a real SQLite database (migrated, loaded with the packaged
demo catalogue), a fake card terminal, a fake central link and a till that collects what the lane pushes.
No store node, no gateway, no sockets: a lane test takes milliseconds, and runs on trio's autojump clock
so timeouts (a central that never answers) cost no real time.

Autojump and threads: the autojump clock jumps to the next deadline whenever no task can run, and a task
waiting on the database's worker thread (or on the PIN hash, which runs in a thread) looks exactly like
that. A deadline pending meanwhile (a caller's fail_after, a question's timeout) would fire although
nothing was slow. `RealWork` turns autojumping off (threshold infinite) for as long as real work is
in flight: every database job (`LaneDatabase`) and every command that checks a PIN. Time then stands
still while SQLite works and jumps only while the lane really waits on a timer.

The fake central is reached through one function, `central_link`, the only place that knows the shape of
`StoreContext.ask`; when that changes, only it changes.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import trio
from trio.testing import MockClock

from devices.terminal import PaymentResult, Report
from protocol import identity
from protocol.frames import (
    Answer,
    Command,
    CustomerAnswer,
    CustomerQuestion,
    Error,
    ExchangeRate,
    GiftCardAnswer,
    GiftCardMove,
    GiftCardMoveQuestion,
    GiftCardState,
    Login,
    NoSale,
    Question,
    RatesAnswer,
    RatesQuestion,
    Receipt,
    ReceiptAnswer,
    ReceiptQuestion,
    ReturnClaimAnswer,
    ReturnClaimQuestion,
    ReturnReleaseQuestion,
    SaleRecord,
    SaleState,
    SetAside,
    TillFrame,
)
from protocol.link import Ask, NoAnswer
from runtime.clock import FixedClock
from runtime.database import Database, Job
from runtime.health import HealthBoard
from runtime.mailbox import Rejected
from storenode.config import LinkConfig, PaymentsConfig, SalesConfig, StoreConfig
from storenode.gateway import LANE_TIMEOUT
from storenode.journal.chain import Signer
from storenode.lanes.lane import Attach, Do, Lane, StoreContext
from storenode.peripherals import LaneDevices
from storenode.schema import MIGRATIONS
from storenode.sync import replica
from storenode.sync.link import QUESTION_TIMEOUT, LinkDown, Offline
from storenode.sync.outbox import OutboxSignal
from tests.kit.journal import journal_rows
from tests.kit.nodes import T0

T = TypeVar("T")
A = TypeVar("A", bound=Answer)

PIN_COMMANDS = (Login, SetAside, NoSale)  # commands whose PIN check hashes in a worker thread


# -- autojump while real work runs ----------------------------------------------------------------------


class RealWork:
    """Counts work in flight off the Trio thread; while any is, the autojump clock does not jump."""

    def __init__(self, clock: MockClock) -> None:
        self.clock = clock
        self.threshold = clock.autojump_threshold
        self._running = 0

    @contextmanager
    def held(self) -> Iterator[None]:
        self._running += 1
        self.clock.autojump_threshold = math.inf
        try:
            yield
        finally:
            self._running -= 1
            if not self._running:
                self.clock.autojump_threshold = self.threshold


class LaneDatabase(Database):
    """The store's real database; each job holds off the autojump clock while the worker thread runs it."""

    def __init__(self, path: Path, work: RealWork) -> None:
        super().__init__(path, MIGRATIONS)
        self.work = work

    async def write(self, job: Job[T], *, durable: bool = False) -> T:
        with self.work.held():
            return await super().write(job, durable=durable)


@functools.cache
def demo_catalog() -> replica.Catalog:
    """The packaged demo catalogue (its operators' PINs as slow hashes: operator 1 / 1234, 2 / 4321)."""
    return replica.read_catalog(replica.demo_catalog_path())


# -- the card terminal ----------------------------------------------------------------------------------


class FakeTerminal:
    """A card terminal at the edge of the world (devices.terminal.PaymentTerminal), answering at once.

    `outcomes` are the next money calls' outcomes in order (approved when empty). An "unknown" outcome
    is held as the unresolved attempt, as the ZVT driver holds one; `last_transaction` then settles it as
    `settles_as`, or leaves it unknown while that is None (a terminal that cannot tell)."""

    name = "terminal-1"

    def __init__(self) -> None:
        self.outcomes: list[str] = []
        self.settles_as: str | None = None
        self.calls: list[PaymentResult] = []  # every money call's result, in order
        self.last: PaymentResult | None = None
        self._unresolved: PaymentResult | None = None
        self._baseline: str | None = None
        self._trace = itertools.count(1)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep_forever()

    async def register(self) -> None:
        pass

    async def authorize(self, amount: int, currency: str, *, reference: str) -> PaymentResult:
        return self._call("payment", amount, currency, reference)

    async def refund(self, amount: int, currency: str, *, reference: str) -> PaymentResult:
        return self._call("refund", amount, currency, reference)

    async def reverse(self, result: PaymentResult) -> PaymentResult:
        return self._call("reversal", result.amount, result.currency, result.reference)

    def _call(self, kind: str, amount: int, currency: str, reference: str) -> PaymentResult:
        if self._unresolved is not None:
            raise Rejected("payment_unknown", "an attempt is unknown: ask for the last transaction first")
        outcome = self.outcomes.pop(0) if self.outcomes else "approved"
        attempt = PaymentResult(outcome="unknown", kind=kind, amount=amount, currency=currency, reference=reference)  # type: ignore[arg-type]
        if outcome == "unknown":
            self._unresolved = msgspec.structs.replace(attempt, message="no answer from the terminal")
            self._baseline = None
            self.calls.append(self._unresolved)
            return self._unresolved
        result = self._booked(attempt, outcome)
        self.calls.append(result)
        return result

    def _booked(self, attempt: PaymentResult, outcome: str) -> PaymentResult:
        trace = next(self._trace)
        result = msgspec.structs.replace(
            attempt,
            outcome=outcome,
            terminal_txn=f"{trace:06}",
            receipt_no=trace,
            masked_pan="476173******0119" if outcome == "approved" else "",
            auth_code=f"A{trace:05}" if outcome == "approved" else "",
            card_type="Visa",
            terminal_id="52500001",
            message=outcome,
        )
        self.last, self._baseline = result, result.terminal_txn
        return result

    async def last_transaction(self) -> PaymentResult | None:
        pending = self._unresolved
        if pending is None:
            return self.last
        if self.settles_as is None:
            return msgspec.structs.replace(pending, message="still unknown: the terminal cannot tell")
        self._unresolved = None
        return self._booked(pending, self.settles_as)

    async def end_of_day(self) -> Report:
        return Report(ok=True, currency="SEK")

    @property
    def unresolved(self) -> PaymentResult | None:
        return self._unresolved

    @property
    def baseline(self) -> str | None:
        return self._baseline

    def adopt_unknown(self, result: PaymentResult) -> None:
        if self._unresolved is None and result.outcome == "unknown":
            self._unresolved = result

    def abandon_unknown(self, reason: str) -> PaymentResult:
        pending = self._unresolved
        if pending is None:
            raise Rejected("nothing_unresolved", "no payment is in doubt")
        self._unresolved, self._baseline = None, None
        return msgspec.structs.replace(pending, message=f"set aside by staff: {reason}")


# -- central --------------------------------------------------------------------------------------------


@dataclass
class FakeCentral:
    """What a lane asks central (gift card moves, exchange rates, customers), answered from plain dicts.
    `online=False` is a store whose link is down (every question fails at once, as SyncLink.ask does);
    `silent=True` a link that is up but never answers (the question's own timeout decides)."""

    giftcards: dict[str, int] = field(default_factory=dict)  # card -> balance
    customers: dict[str, str] = field(default_factory=dict)  # number -> name
    rates: list[ExchangeRate] = field(default_factory=list)
    online: bool = True
    silent: bool = False
    moves: list[GiftCardMove] = field(default_factory=list)  # every move it was asked to make
    claims: list[ReturnClaimQuestion] = field(default_factory=list)  # returned lines it was asked to hold (issue 14)

    def receipt(self, receipt: str) -> ReceiptAnswer:
        raise LinkDown(f"central holds no receipt {receipt}")  # the lane's own journal is the truth

    def giftcard_move(self, move: GiftCardMove) -> GiftCardState:
        self.moves.append(move)
        balance = self.giftcards.get(move.card)
        if balance is None:
            raise LinkDown(f"no gift card {move.card}")
        if move.kind == "credit":
            taken = -move.amount
        else:
            taken = min(balance, move.amount)
        self.giftcards[move.card] = balance - taken
        return GiftCardState(
            card=move.card,
            kind="giftcard",
            balance=balance - taken,
            currency=move.currency,
            ok=taken != 0,
            amount=abs(taken),
            message="" if taken else "the card is empty",
        )

    def customer(self, number: str) -> str:
        if number not in self.customers:
            raise LinkDown(f"no customer {number}")
        return self.customers[number]

    def rates_for(self, base: str) -> list[ExchangeRate]:
        return [r for r in self.rates if r.base == base]


def central_link(central: FakeCentral) -> Ask:
    """The fake central as StoreContext.ask: the one adapter between the link's typed questions and
    FakeCentral's answers."""
    answers: dict[type[Question[Any]], Callable[[Any], Answer]] = {
        GiftCardMoveQuestion: lambda q: GiftCardAnswer(card=central.giftcard_move(q.move)),
        CustomerQuestion: lambda q: CustomerAnswer(name=central.customer(q.customer)),
        RatesQuestion: lambda q: RatesAnswer(rates=central.rates_for(q.base)),
        ReceiptQuestion: lambda q: central.receipt(q.receipt),
        ReturnClaimQuestion: lambda q: central.claims.append(q) or ReturnClaimAnswer(),
        ReturnReleaseQuestion: lambda q: ReturnClaimAnswer(),
    }

    async def ask(question: Question[A], /) -> A:
        await trio.lowlevel.checkpoint()
        if not central.online:
            raise Offline("central is unreachable")
        if central.silent:  # as the link's session does: no answer within its bound is NoAnswer
            await trio.sleep(QUESTION_TIMEOUT)
            raise NoAnswer(f"central did not answer {type(question).__name__} within {QUESTION_TIMEOUT:g} s")
        answer = answers[type(question)](question)
        return answer  # type: ignore[return-value]

    return ask


# -- the till and the rig -------------------------------------------------------------------------------


class FakeTill:
    """A till attached to the lane (storenode.lanes.lane.Subscriber): keeps every frame pushed to it."""

    till = "T1"

    def __init__(self) -> None:
        self.dropped = False
        self.frames: list[TillFrame] = []
        self._pushed = trio.lowlevel.ParkingLot()

    def push(self, frame: TillFrame) -> None:
        self.frames.append(frame)
        self._pushed.unpark_all()

    def drop(self, notice: Error) -> None:
        self.push(notice)
        self.dropped = True

    @property
    def state(self) -> SaleState | None:
        return next((f for f in reversed(self.frames) if isinstance(f, SaleState)), None)

    @property
    def receipts(self) -> list[Receipt]:
        return [f for f in self.frames if isinstance(f, Receipt)]

    async def until(self, predicate: Callable[[SaleState], bool]) -> SaleState:
        """The lane's state once `predicate` holds for it, woken by each push (bound it with fail_after)."""
        while (state := self.state) is None or not predicate(state):
            await self._pushed.park()
        return state


@dataclass
class LaneRig:
    lane: Lane
    till: FakeTill
    terminal: FakeTerminal
    central: FakeCentral
    db: LaneDatabase
    work: RealWork
    _refs: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    async def do(self, command: Command) -> TillFrame:
        """Send a till command as the gateway does; the answer is what a till would get (its `ref`'s first
        frame, or the refusal as an Error)."""
        command.ref = next(self._refs)
        seen = len(self.till.frames)
        hashes = isinstance(command, PIN_COMMANDS) or bool(getattr(command, "approver", ""))
        with self.work.held() if hashes else _nothing():
            try:
                with trio.fail_after(LANE_TIMEOUT):
                    await self.lane.mailbox.ask(Do(command, self.till))
            except Rejected as refusal:
                return Error(code=refusal.code, message=refusal.message, ref=command.ref)
        return next(f for f in self.till.frames[seen:] if getattr(f, "ref", 0) == command.ref)

    async def journal(self) -> list[SaleRecord]:
        return await self.db.read(journal_rows)

    async def outbox(self, stream: str) -> int:
        """Events of `stream` waiting for central."""
        return await self.db.read(
            lambda c: c.execute("SELECT count(*) FROM outbox WHERE stream = ?", (stream,)).fetchone()[0]
        )


@contextmanager
def _nothing() -> Iterator[None]:
    yield


async def open_lane(
    folder: Path,
    nursery: trio.Nursery,
    clock: MockClock,
    *,
    payments: PaymentsConfig | None = None,
    central: FakeCentral | None = None,
    sales: SalesConfig | None = None,
) -> LaneRig:
    """Lane 1 of store S001 (SEK, the demo catalogue) on a fresh database in `folder`, its till attached."""
    work = RealWork(clock)
    central = central or FakeCentral()
    terminal = FakeTerminal()
    config = StoreConfig(
        store="S001",
        lanes=[1],
        data_dir=str(folder),
        central=LinkConfig(url="ws://central.invalid"),  # a store with a central; the link itself is faked
        payments=payments or PaymentsConfig(),
        sales=sales or SalesConfig(),
    )
    db = LaneDatabase(config.db_path, work)
    with work.held():
        await nursery.start(db.run)
    catalog = demo_catalog()
    await db.write(lambda c: replica.load(c, catalog, config.currency))
    ctx = StoreContext(
        config=config,
        db=db,
        health=HealthBoard(),
        clock=FixedClock(T0),
        signal=OutboxSignal(),
        link_state=lambda: "online" if central.online else "offline",
        ask=central_link(central),
        signer=Signer(config.store, identity.generate()),
        devices={1: LaneDevices(terminal=terminal, payment_timeout=60)},
    )
    lane = Lane(1, ctx)
    await nursery.start(lane.run)
    till = FakeTill()
    await lane.mailbox.ask(Attach(till))
    return LaneRig(lane=lane, till=till, terminal=terminal, central=central, db=db, work=work)
