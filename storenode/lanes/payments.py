"""Tenders beyond one cash payment: card through the lane's terminal, gift cards and vouchers held at
central, invoices, foreign cash, any split of them on one sale, refunds, and a cancel that reverses what
was already taken.

Refunds: in a refund of a receipt (storenode.lanes.refunds) money goes back only to the tenders the receipt
was paid with, never more than each took: card through the terminal (06 31), a gift card credited, an
invoice credited, cash. A return without its receipt goes back only in cash: a refund to a bank card needs
the receipt that shows the card paid, and central credits a gift card only as a refund naming a receipt of
this store (the move's `refund_of`), within the store's limits per credit and per day.

Decisions, not deeds: what a tender does to a sale is decided here by plain functions of the lane's state
and what the lane read or heard for it (how much of a receipt may still go back by each tender, central's
answer, the terminal's outcome), answering with the next state and the effects for the lane to carry out
(storenode.lanes.effects). The only functions here that wait are the questions to the outside world, the
terminal and central; they are given the terminal or the way to ask central (and, for exchange rates, the
store database that keeps the last ones), never the lane.

A payment is money, so every money call follows one rule: the attempt is saved in the lane state
(`pending`, durably) *before* it is sent. A process that stops at any instant then finds the attempt on
restart and settles it from the authority before the lane does anything else: a card attempt from the
terminal's last transaction (so an approval the journal never saw completes the sale, once), a gift card
move by voiding it at central through the outbox (a void of a move that never happened is harmless). The
attempt and its outcome end up in the sale's journal record (`payments`), declined ones too.

Card calls can take minutes (the customer, the PIN), longer than a till waits for an answer, so the lane
runs them beside itself (`card_call`); it shows "paying" meanwhile and settles the outcome when it is in.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TypeVar

import msgspec
import trio

from devices.terminal import PaymentResult, PaymentTerminal
from protocol.frames import (
    CardTender,
    CashTender,
    CustomerQuestion,
    ExchangeRate,
    GiftCardMove,
    GiftCardMoveQuestion,
    GiftCardState,
    GiftCardTender,
    InvoiceTender,
    RatesQuestion,
    RecordPayment,
    RecordTender,
    Stream,
)
from protocol.link import Ask
from protocol.money import foreign_value, format_money
from runtime.database import Database
from runtime.mailbox import Rejected
from storenode import rates
from storenode.config import PaymentsConfig
from storenode.lanes import basket, refunds
from storenode.lanes.basket import OPEN, PAYING, TENDER, LaneState
from storenode.lanes.effects import Close, ContinueCancel, Effect, Refuse, Save, StartCard
from storenode.sync import outbox
from storenode.sync.link import NO_ANSWER, LinkDown

log = logging.getLogger(__name__)

GIFTCARD_STREAM = Stream.GIFTCARD
TERMINAL_QUESTION = 6.0  # the terminal's last transaction, asked inline (a till waits at most 10 s)

Rooms = Mapping[refunds.Key, int]  # a refund of a receipt: what may still go back by each tender
T = TypeVar("T")

_move_encoder = msgspec.msgpack.Encoder()
_move_decoder = msgspec.msgpack.Decoder(GiftCardMove)


@dataclass(frozen=True)
class TerminalNow:
    """What a decision needs to know of the lane's card terminal, as it is at the moment."""

    in_doubt: bool  # it holds an attempt of unknown outcome: no new one until that is resolved
    baseline: str | None  # its last trace, when known for sure

    @classmethod
    def of(cls, terminal: PaymentTerminal) -> TerminalNow:
        return cls(in_doubt=terminal.unresolved is not None, baseline=terminal.baseline)


@dataclass(frozen=True)
class Heard:
    """What came back from central for a gift card move."""

    answer: GiftCardState | None = None  # central's answer (which may still decline)
    refused: str = ""  # central answered that it did nothing
    unreachable: str = ""  # no usable answer: central may or may not have applied the move


# -- conversions --------------------------------------------------------------------------------------


def entry_of(result: PaymentResult, pending: RecordPayment) -> RecordPayment:
    """The journal's view of a terminal result: masked card number and auth code, never the full number."""
    return RecordPayment(
        kind=pending.kind,
        method="card",
        outcome=result.outcome,
        amount=result.amount,
        currency=result.currency,
        reference=pending.reference,
        terminal_txn=result.terminal_txn,
        masked_pan=result.masked_pan,
        auth_code=result.auth_code,
        card_type=result.card_type,
        terminal_id=result.terminal_id,
        receipt_no=result.receipt_no or 0,
        prior_txn=result.prior_txn or pending.prior_txn,
        message=result.message,
    )


def result_of(entry: RecordPayment) -> PaymentResult:
    """A saved attempt as the terminal driver knows one (to settle it, or to reverse an approval)."""
    kind = entry.kind if entry.kind in ("payment", "refund", "reversal") else "payment"
    return PaymentResult(
        outcome=entry.outcome,  # type: ignore[arg-type]
        kind=kind,  # type: ignore[arg-type]
        amount=entry.amount,
        currency=entry.currency,
        reference=entry.reference,
        terminal_txn=entry.terminal_txn,
        receipt_no=entry.receipt_no or None,
        prior_txn=entry.prior_txn or None,
        masked_pan=entry.masked_pan,
        auth_code=entry.auth_code,
        card_type=entry.card_type,
        terminal_id=entry.terminal_id,
    )


def encode_move(move: GiftCardMove) -> bytes:
    return _move_encoder.encode(move)


def decode_move(body: bytes) -> GiftCardMove:
    return _move_decoder.decode(body)


def offline_spent(conn: sqlite3.Connection, card: str) -> int:
    """What this store took from a card offline that central has not acknowledged yet."""
    spent = 0
    for kind, body in outbox.queued(conn, GIFTCARD_STREAM):
        move = decode_move(body)
        if move.card == card and kind == "redeem" and move.offline:
            spent += move.amount
    return spent


def queue_moves(conn: sqlite3.Connection, moves: Collection[GiftCardMove]) -> int:
    """Queue gift card moves for central in the caller's transaction; returns how many."""
    for move in moves:
        outbox.enqueue(conn, GIFTCARD_STREAM, move.kind, encode_move(move))
    return len(moves)


# -- checks ---------------------------------------------------------------------------------------------


def payable(state: LaneState) -> int:
    """What is still due (negative: to pay back), after refusing a sale that cannot take a tender now."""
    basket.require_operator(state)
    if state.status not in (OPEN, TENDER):
        raise Rejected("no_sale", "no sale is open")
    if not basket.live_lines(state):
        raise Rejected("empty_sale", "the sale has no items to pay for")
    remaining = basket.due(state)
    if remaining == 0:
        raise Rejected("nothing_due", "the sale is paid")
    return remaining


def _amount(requested: int, remaining: int, currency: str) -> int:
    if requested < 0:
        raise Rejected("bad_amount", "an amount cannot be negative")
    amount = requested or abs(remaining)
    if amount > abs(remaining):
        what = "to pay back" if remaining < 0 else "due"
        most = format_money(abs(remaining), currency)
        raise Rejected("bad_amount", f"{format_money(amount, currency)} is more than the {most} {what}")
    return amount


def _refund_amount(
    state: LaneState, requested: int, remaining: int, currency: str, key: refunds.Key, rooms: Rooms
) -> int:
    """`_amount` for a refund of a receipt: by default as much as may go back by this tender, and never
    more than the receipt took by it and has not given back yet (rechecked when the refund is saved)."""
    amount = _amount(requested, remaining, currency)
    room = rooms.get(key, 0)
    where = refunds.describe(key)
    if room <= 0:
        raise Rejected("not_paid_by", f"nothing of receipt {state.refund_of} can go back {where}")
    if requested and amount > room:
        most = format_money(room, currency)
        raise Rejected("over_refund", f"at most {most} of receipt {state.refund_of} can go back {where}")
    return min(amount, room)


def terminal_of(terminal: T | None, lane: int) -> T:
    if terminal is None:
        raise Rejected("no_terminal", f"lane {lane} has no payment terminal")
    return terminal


def card_in_doubt(state: LaneState, money_running: bool) -> RecordPayment:
    """The card attempt whose outcome is unknown, for the cashier to resolve or a supervisor to set aside;
    refused while the terminal is still being asked about it (`money_running`)."""
    pending = state.pending
    if pending is None or pending.method != "card":
        raise Rejected("nothing_unresolved", "no card payment is in doubt")
    if money_running:
        raise Rejected("payment_in_progress", "the terminal is still being asked about the payment; wait for it")
    return pending


# -- cash -----------------------------------------------------------------------------------------------


def foreign_currency(state: LaneState, command: CashTender, home: str, taken: Collection[str]) -> str:
    """The foreign currency a cash tender is in ("" for the store's own), refused unless the store takes
    it (`taken`): the lane fetches its rate (`rate`) before `cash` decides."""
    basket.require_operator(state)
    currency = command.currency.strip().upper() or home
    if currency == home:
        return ""
    if command.amount <= 0:
        raise Rejected("bad_amount", "foreign cash needs an amount")
    if currency not in taken:
        raise Rejected("bad_currency", f"this store does not take cash in {currency}")
    return currency


def cash(
    state: LaneState,
    command: CashTender,
    home: str,
    rate: ExchangeRate | None = None,
    most_change: int = basket.MOST_CHANGE,
) -> list[Effect]:
    """Cash in the store's currency, or foreign cash at `rate`; the whole rest, or `part` of it."""
    basket.require_operator(state)
    tender = RecordTender(kind="cash", currency=home, amount=command.amount)
    if rate is not None:
        value = foreign_value(command.amount, rate.rate, home)
        if value <= 0:
            amount = format_money(command.amount, rate.currency)
            raise Rejected("bad_amount", f"{amount} {rate.currency} is worth nothing here")
        tender = RecordTender(kind="cash", currency=rate.currency, amount=command.amount, value=value, rate=rate.rate)
    value = tender.sale_value
    # A part payment leaves something to pay in cash: below the exact due AND the rounded cash due.
    # Cash between the two (26.99 when 27.00 is due in whole kronor) would leave the sale paid but
    # open; it goes to check_cash, which refuses it as short.
    if command.part and value < min(basket.due(state), basket.cash_due(state, home)):
        remaining = payable(state)
        if value <= 0 or remaining < 0:
            raise Rejected("bad_amount", "part payments are for sales with something to pay")
        new = basket.add_tender(state, tender)
        taken, left = format_money(value, home), format_money(basket.due(new), home)
        return [Save(new, ref=command.ref, message=f"cash {taken} taken; {left} to pay")]
    basket.check_cash(state, value, home, most_change)
    return [Close(state, "sale", command.ref, tendered=value, cash=tender if rate is not None else None)]


async def rate(ask: Ask, db: Database, base: str, currency: str, lane: int) -> ExchangeRate:
    """Central's current rate when it answers (kept for offline), else the last one it published."""
    published: list[ExchangeRate] = []
    try:
        published = (await ask(RatesQuestion(base=base))).rates
    except (LinkDown, *NO_ANSWER) as exc:
        log.info("lane %d: exchange rates from central unavailable (%s); using the last known", lane, exc)

    def job(c: sqlite3.Connection) -> ExchangeRate | None:
        if published:  # kept for when central cannot be asked
            rates.save(c, published)
        return rates.get(c, base, currency)

    found = await db.write(job)
    if found is None:
        raise Rejected("no_rate", f"no exchange rate for {currency} is known yet; central publishes them")
    return found


# -- card -----------------------------------------------------------------------------------------------


def card(state: LaneState, command: CardTender, currency: str, terminal: TerminalNow, rooms: Rooms) -> RecordPayment:
    """The attempt a card tender makes: a payment, or a refund to card when the sale is due negative. Its
    `prior_txn` is the terminal's baseline; when the terminal does not know it yet, the lane asks
    (`last_trace`) before it starts the attempt (`start_card`)."""
    remaining = payable(state)
    if remaining < 0 and not state.refund_of:
        raise Rejected(
            "needs_receipt",
            "money goes back to a card only in a refund of a receipt paid by card (refund <receipt id>); "
            "without the receipt, pay back in cash or to a gift card",
        )
    if remaining < 0:
        amount = _refund_amount(state, command.amount, remaining, currency, refunds.CARD, rooms)
    else:
        amount = _amount(command.amount, remaining, currency)
    if terminal.in_doubt:
        raise Rejected("payment_unknown", "a card payment is in doubt: resolve it first")
    return RecordPayment(
        kind="refund" if remaining < 0 else "payment",
        method="card",
        outcome="unknown",
        amount=amount,
        currency=currency,
        reference=f"{state.sale_id}-{len(state.payments) + 1}",
        prior_txn=terminal.baseline or "",
        message="in progress",
    )


def start_card(state: LaneState, pending: RecordPayment, ref: int, currency: str) -> list[Effect]:
    """The attempt is saved durably (a refund of a receipt rechecked in the same job) before a byte goes to
    the terminal; then it goes."""
    new = msgspec.structs.replace(state, status=PAYING, pending=pending, status_before=state.status)
    what = {"payment": "card payment", "refund": "refund to card", "reversal": "reversal of card payment"}
    message = f"{what[pending.kind]} {format_money(pending.amount, currency)}: follow the terminal"
    return [Save(new, ref=ref, message=message, durable=True, checked=True), StartCard(pending)]


async def last_trace(terminal: PaymentTerminal) -> str:
    """The terminal's last trace before a new attempt (so the saved attempt can be settled after a crash)."""
    if terminal.baseline is not None:
        return terminal.baseline
    try:
        with trio.fail_after(TERMINAL_QUESTION):
            last = await terminal.last_transaction()
    except trio.TooSlowError:
        raise Rejected("terminal_offline", f"terminal {terminal.name} did not answer") from None
    return last.terminal_txn if last is not None else ""


async def card_call(terminal: PaymentTerminal, pending: RecordPayment, seconds: float) -> PaymentResult:
    """Runs beside the lane: the terminal call (given `seconds`, then its outcome is unknown) and one attempt
    to settle an unknown outcome."""
    try:
        with trio.fail_after(seconds):
            if pending.kind == "payment":
                result = await terminal.authorize(pending.amount, pending.currency, reference=pending.reference)
            elif pending.kind == "refund":
                result = await terminal.refund(pending.amount, pending.currency, reference=pending.reference)
            else:
                original = msgspec.structs.replace(pending, kind="payment", outcome="approved")
                result = await terminal.reverse(result_of(original))
    except trio.TooSlowError:
        result = terminal.unresolved or result_of(pending)
    except Rejected as refusal:  # refused before anything was sent
        result = msgspec.structs.replace(result_of(pending), outcome="aborted", message=refusal.message)
    if result.outcome == "unknown":
        result = await settle_unknown(terminal, result)
    return result


async def settle_unknown(terminal: PaymentTerminal, result: PaymentResult) -> PaymentResult:
    """The terminal's last transaction when it is the attempt of unknown outcome, else that attempt still unknown."""
    try:
        with trio.fail_after(TERMINAL_QUESTION * 2):
            settled = await terminal.last_transaction()
    except (Rejected, trio.TooSlowError) as exc:
        log.warning("terminal %s: could not settle %s yet: %s", terminal.name, result.reference, exc)
        return result
    return settled if settled is not None and settled.reference == result.reference else result


async def ask_terminal(terminal: PaymentTerminal, pending: RecordPayment) -> PaymentResult:
    """The cashier asks the terminal about the payment in doubt (it was offline when the lane tried)."""
    terminal.adopt_unknown(result_of(pending))
    unresolved = terminal.unresolved
    if unresolved is None:
        raise Rejected("nothing_unresolved", "the terminal holds no payment in doubt")
    try:
        with trio.fail_after(TERMINAL_QUESTION):
            result = await terminal.last_transaction()
    except trio.TooSlowError:
        raise Rejected("terminal_offline", f"terminal {terminal.name} did not answer") from None
    return result or unresolved


def settle(state: LaneState, result: PaymentResult, currency: str, ref: int = 0) -> list[Effect]:
    """Adopt a card call's outcome: a tender for an approval (closing the sale once it is paid), the basket
    left open for a decline, the attempt kept in doubt for an unknown outcome; a cancel in progress goes on."""
    pending = state.pending
    if pending is None or pending.method != "card" or result.reference != pending.reference:
        log.warning("lane %d: outcome for %s matches no attempt in progress; ignored", state.lane, result.reference)
        return []
    entry = entry_of(result, pending)
    if result.outcome == "unknown":
        new = msgspec.structs.replace(state, pending=entry)
        return [Save(new, ref=ref, message=f"card {pending.kind} outcome unknown: {result.message}; resolve it")]
    after = basket.end_payment(state, entry)
    approved = result.outcome == "approved"
    if approved and pending.kind == "payment":
        after = basket.add_tender(after, _card_tender(entry, entry.amount))
    elif approved and pending.kind == "refund":
        after = basket.add_tender(after, _card_tender(entry, -entry.amount))
    elif approved:  # a reversal: the payment it names is no longer a tender
        after = msgspec.structs.replace(
            after, tenders=[t for t in after.tenders if not (t.kind == "card" and t.reference == _tender_ref(pending))]
        )
    if approved and pending.kind != "reversal" and basket.due(after) == 0:
        return [Close(after, "sale", ref)]
    if not approved:
        after = msgspec.structs.replace(after, cancelling=False)
    effects: list[Effect] = [Save(after, ref=ref, message=_outcome_message(entry, currency))]
    if after.cancelling:
        effects.append(ContinueCancel(ref))
    return effects


def _tender_ref(entry: RecordPayment) -> str:
    return f"{entry.terminal_id}:{entry.receipt_no}"


def _card_tender(entry: RecordPayment, amount: int) -> RecordTender:
    return RecordTender(kind="card", currency=entry.currency, amount=amount, reference=_tender_ref(entry))


def _outcome_message(entry: RecordPayment, currency: str) -> str:
    what = {"payment": "card payment", "refund": "refund to card", "reversal": "reversal"}.get(entry.kind, entry.kind)
    card = f" ({entry.masked_pan})" if entry.masked_pan else ""
    amount = format_money(entry.amount, currency)
    return f"{what} {amount} {entry.outcome}{card}: {entry.message}".rstrip(": ")


# -- gift cards and vouchers ----------------------------------------------------------------------------


def giftcard(
    state: LaneState, command: GiftCardTender, currency: str, store: str, now_ms: int, move_id: str, rooms: Rooms
) -> tuple[GiftCardMove, list[Effect]]:
    """The move a gift card tender asks central for (a redemption, or a credit on a refund), and the attempt
    saved durably before central is asked; central's answer is then settled by `giftcard_heard`."""
    remaining = payable(state)
    card_no = command.card.strip()
    if not card_no or len(card_no) > 64:
        raise Rejected("bad_card", "a gift card number is 1 to 64 characters")
    if remaining < 0 and not state.refund_of:
        raise Rejected(
            "needs_receipt",
            "money goes back to a gift card only in a refund of a receipt paid with it (refund <receipt id>); "
            "without the receipt, pay back in cash",
        )
    if remaining < 0:  # back to the gift card the receipt was paid with
        amount = _refund_amount(state, command.amount, remaining, currency, ("giftcard", card_no), rooms)
    else:
        amount = _amount(command.amount, remaining, currency)
    move = GiftCardMove(
        move=move_id,
        kind="credit" if remaining < 0 else "redeem",
        card=card_no,
        amount=amount,
        currency=currency,
        store=store,
        sale_id=state.sale_id,
        at=now_ms,
        refund_of=state.refund_of if remaining < 0 else "",  # the receipt central checks the credit against
    )
    pending = RecordPayment(
        kind=move.kind, method="giftcard", outcome="unknown", amount=amount, currency=move.currency,
        reference=move.move, card=card_no,
    )  # fmt: skip
    saved = msgspec.structs.replace(state, status=PAYING, pending=pending, status_before=state.status)
    return move, [Save(saved, durable=True, checked=True, quiet=True)]


async def ask_central(ask: Ask, move: GiftCardMove) -> Heard:
    """Central's answer to a gift card move, or why there is none."""
    try:
        return Heard(answer=(await ask(GiftCardMoveQuestion(move=move))).card)
    except LinkDown as exc:  # central answered, and did nothing
        return Heard(refused=str(exc))
    except NO_ANSWER as exc:
        return Heard(unreachable=f"{type(exc).__name__}: {exc}")


def giftcard_heard(
    state: LaneState,
    move: GiftCardMove,
    command: GiftCardTender,
    heard: Heard,
    policy: PaymentsConfig,
    spent: int,
) -> list[Effect]:
    """Settle the saved attempt with what central said. Unreachable, the store's policy decides, knowing what
    it took from the card offline already (`spent`, unacknowledged by central)."""
    ref = command.ref
    if heard.refused:
        return [
            *_giftcard_done(state, move, "declined", 0, heard.refused, ref),
            Refuse("giftcard_refused", heard.refused),
        ]
    if heard.answer is None:
        return _giftcard_offline(state, move, command, heard.unreachable, policy, spent)
    answer = heard.answer
    if not answer.ok or answer.amount <= 0:
        why = answer.message or "nothing to redeem"
        return [
            *_giftcard_done(state, move, "declined", 0, why, ref),
            Refuse("giftcard_declined", f"gift card {move.card}: {why}"),
        ]
    left = f"; {format_money(answer.balance, move.currency)} left on it" if move.kind == "redeem" else ""
    return _giftcard_done(state, move, "approved", answer.amount, f"balance {answer.balance}", ref, left)


def _giftcard_done(
    state: LaneState,
    move: GiftCardMove,
    outcome: str,
    amount: int,
    message: str,
    ref: int,
    note: str = "",
    queue: GiftCardMove | None = None,
) -> list[Effect]:
    """Record the move's outcome (and a tender for what it took or gave), closing a sale it pays in full."""
    pending = state.pending
    assert pending is not None and pending.reference == move.move
    entry = msgspec.structs.replace(pending, outcome=outcome, amount=amount or pending.amount, message=message)
    after = basket.end_payment(state, entry)
    if outcome == "approved":
        signed = amount if move.kind == "redeem" else -amount
        after = basket.add_tender(
            after, RecordTender(kind="giftcard", currency=move.currency, amount=signed, reference=move.card)
        )
    queued = (queue,) if queue is not None else ()
    if outcome == "approved" and basket.due(after) == 0:
        return [Close(after, "sale", ref, moves=queued)]
    what = "gift card" if move.kind == "redeem" else "credit to gift card"
    # A refusal answers the till with an error frame (Refuse, after this); the new state is only shown.
    shown = ref if outcome == "approved" else 0
    message = f"{what} {move.card} {outcome} {format_money(entry.amount, move.currency)}{note}"
    return [Save(after, ref=shown, message=message, durable=True, moves=queued)]


def _giftcard_offline(
    state: LaneState, move: GiftCardMove, command: GiftCardTender, why: str, policy: PaymentsConfig, spent: int
) -> list[Effect]:
    """Central did not answer. A credit is always queued; a redemption per the store's policy. Either way
    the move travels in the outbox with the same id, so one central may already have applied is not applied
    twice; a refused one travels as a void, so one central may have applied is undone."""
    ref = command.ref
    offline = msgspec.structs.replace(move, offline=True)
    if move.kind == "credit":
        return _giftcard_done(state, move, "approved", move.amount, "offline: credited when central is back", ref,
                              queue=offline)  # fmt: skip
    if policy.giftcard_offline == "allow":
        room = policy.giftcard_offline_limit - spent
        amount = move.amount if command.amount else min(move.amount, room)
        if 0 < amount <= room:
            offline = msgspec.structs.replace(offline, amount=amount)
            return _giftcard_done(state, move, "approved", amount, f"offline ({why}); reconciled at central", ref,
                                  note="; taken offline", queue=offline)  # fmt: skip
        reason = f"over the offline limit of {format_money(policy.giftcard_offline_limit, move.currency)} per card"
    else:
        reason = "this store takes no gift cards while central is unreachable"
    void = msgspec.structs.replace(move, kind="void")
    return [
        *_giftcard_done(state, move, "declined", 0, f"offline: {reason}", ref, queue=void),
        Refuse("giftcard_offline", f"central is unreachable and {reason}"),
    ]


def giftcard_unknown(state: LaneState, store: str, now_ms: int, message: str) -> list[Effect]:
    """A gift card move whose answer never arrived (the store stopped before it): undo it at central through
    the outbox, forget it here."""
    pending = state.pending
    assert pending is not None and pending.method == "giftcard"
    after = basket.end_payment(state, msgspec.structs.replace(pending, message=message))
    return [Save(after, durable=True, moves=(_void(state, pending, store, now_ms),), quiet=True)]


def _void(state: LaneState, payment: RecordPayment, store: str, now_ms: int) -> GiftCardMove:
    """The move that undoes a gift card payment at central: the same move id, so central voids that one."""
    return GiftCardMove(
        move=payment.reference, kind="void", card=payment.card, amount=payment.amount, currency=payment.currency,
        store=store, sale_id=state.sale_id, at=now_ms,
    )  # fmt: skip


# -- invoice --------------------------------------------------------------------------------------------


async def customer_name(ask: Ask, customer: str) -> str:
    """Central's name for a customer registered for invoices; refused when central does not know one or
    cannot be asked."""
    try:
        return (await ask(CustomerQuestion(customer=customer))).name
    except LinkDown:
        raise Rejected("unknown_customer", f"no customer {customer} is registered for invoices") from None
    except NO_ANSWER:
        raise Rejected("central_offline", "an invoice needs central to confirm the customer; try again") from None


def invoice(state: LaneState, command: InvoiceTender, currency: str, name: str) -> list[Effect]:
    """All that is due goes on the invoice of a customer central confirmed (as `name`)."""
    remaining = payable(state)
    customer = command.customer.strip()
    tender = RecordTender(kind="invoice", currency=currency, amount=remaining, reference=customer)
    log.info("lane %d: %s invoiced to %s (%s)", state.lane, remaining, customer, name)
    return [Close(basket.add_tender(state, tender), "sale", command.ref)]


def invoice_credit(state: LaneState, command: InvoiceTender, currency: str, rooms: Rooms) -> list[Effect]:
    """A refund of a receipt paid by invoice is a credit on that customer's invoice: a negative invoice
    tender, journaled with the customer. The receipt named the customer, so central need not be asked."""
    customer = command.customer.strip()
    if not state.refund_of:
        raise Rejected("bad_tender", "money goes back to an invoice only in a refund of a receipt paid by invoice")
    amount = _refund_amount(state, 0, basket.due(state), currency, ("invoice", customer), rooms)
    tender = RecordTender(kind="invoice", currency=currency, amount=-amount, reference=customer)
    after = basket.add_tender(state, tender)
    if basket.due(after) == 0:
        return [Close(after, "sale", command.ref)]
    message = f"{format_money(amount, currency)} credited to the invoice of {customer}"
    return [Save(after, ref=command.ref, message=message, checked=True)]


# -- cancel ---------------------------------------------------------------------------------------------


def cancel(
    state: LaneState, ref: int, terminal: TerminalNow | None, currency: str, store: str, now_ms: int
) -> list[Effect]:
    """Cancel a sale that took money: card payments are reversed one by one (06 30) before the cancel is
    journaled; gift card moves are voided at central through the outbox in the same commit."""
    if any(t.kind == "card" and t.amount < 0 for t in state.tenders):
        raise Rejected("refund_made", "money was already refunded to a card; finish the sale")
    card_tender = next((t for t in state.tenders if t.kind == "card"), None)
    if card_tender is not None:
        original = next(
            p for p in state.payments
            if p.method == "card" and p.kind == "payment" and p.outcome == "approved"
            and _tender_ref(p) == card_tender.reference
        )  # fmt: skip
        now = terminal_of(terminal, state.lane)
        if now.in_doubt:
            raise Rejected("payment_unknown", "a card payment is in doubt: resolve it first")
        pending = msgspec.structs.replace(
            original, kind="reversal", outcome="unknown", message="in progress", prior_txn=now.baseline or ""
        )
        return start_card(msgspec.structs.replace(state, cancelling=True), pending, ref, currency)
    voids = tuple(
        _void(state, p, store, now_ms) for p in state.payments if p.method == "giftcard" and p.outcome == "approved"
    )
    cleared = msgspec.structs.replace(state, tenders=[], cancelling=False)
    return [Close(cleared, "cancel", ref, moves=voids)]
