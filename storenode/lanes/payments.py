"""Tenders beyond one cash payment: card through the lane's terminal, gift cards and vouchers held at
central, invoices, foreign cash, any split of them on one sale, refunds, and a cancel that reverses what
was already taken.

Refunds: in a refund of a receipt (storenode.lanes.refunds) money goes back only to the tenders the receipt
was paid with, never more than each took: card through the terminal (06 31), a gift card credited, an
invoice credited, cash. A return without its receipt goes back only in cash or to a gift card (store
credit): a refund to a bank card needs the receipt that shows the card paid.

A payment is money, so every money call follows one rule: the attempt is saved in the lane state
(`pending`, durably) *before* it is sent. A process that stops at any instant then finds the attempt on
restart and settles it from the authority before the lane does anything else: a card attempt from the
terminal's last transaction (so an approval the journal never saw completes the sale, once), a gift card
move by voiding it at central through the outbox (a void of a move that never happened is harmless). The
attempt and its outcome end up in the sale's journal record (`payments`), declined ones too.

Card calls can take minutes (the customer, the PIN), longer than a till waits for an answer, so they run
as a task beside the lane; the lane shows "paying" meanwhile and hears the outcome as a `MoneyDone`.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

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
    GiftCardTender,
    InvoiceTender,
    RatesQuestion,
    RecordPayment,
    RecordTender,
    Stream,
)
from protocol.money import foreign_value, format_money
from runtime.mailbox import Rejected
from storenode import rates
from storenode.lanes import basket, refunds
from storenode.lanes.basket import OPEN, PAYING, TENDER, LaneState
from storenode.lanes.saved import save_state
from storenode.sync import outbox
from storenode.sync.link import NO_ANSWER, LinkDown

if TYPE_CHECKING:
    from storenode.lanes.lane import Lane, Subscriber

log = logging.getLogger(__name__)

GIFTCARD_STREAM = Stream.GIFTCARD
TERMINAL_QUESTION = 6.0  # the terminal's last transaction, asked inline (a till waits at most 10 s)

_move_encoder = msgspec.msgpack.Encoder()
_move_decoder = msgspec.msgpack.Decoder(GiftCardMove)


@dataclass
class MoneyDone:
    """The outcome of a card call that ran beside the lane."""

    result: PaymentResult


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


def queue_moves(conn: sqlite3.Connection, moves: list[GiftCardMove]) -> int:
    """Queue gift card moves for central in the caller's transaction; returns how many."""
    for move in moves:
        outbox.enqueue(conn, GIFTCARD_STREAM, move.kind, encode_move(move))
    return len(moves)


# -- checks ---------------------------------------------------------------------------------------------


def _payable(state: LaneState) -> int:
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


async def _refund_amount(lane: Lane, requested: int, remaining: int, key: refunds.Key) -> int:
    """`_amount` for a refund of a receipt: by default as much as may go back by this tender, and never
    more than the receipt took by it and has not given back yet (rechecked when the refund is saved)."""
    state = lane.state
    amount = _amount(requested, remaining, lane.currency)
    config = lane.ctx.config
    room = await lane.ctx.db.read(lambda c: refunds.room(c, state, key, config.store, config.currency))
    where = refunds.describe(key)
    if room <= 0:
        raise Rejected("not_paid_by", f"nothing of receipt {state.refund_of} can go back {where}")
    if requested and amount > room:
        raise Rejected("over_refund", f"at most {lane._money(room)} of receipt {state.refund_of} can go back {where}")
    return min(amount, room)


def _save_checked(lane: Lane, state: LaneState) -> Callable[[sqlite3.Connection], None]:
    """A job saving the lane before a money call: a refund of a receipt is checked in the same job."""
    config = lane.ctx.config

    def job(c: sqlite3.Connection) -> None:
        refunds.check(c, state, config.store, config.currency, lane.number)
        save_state(c, state)

    return job


def lane_terminal(lane: Lane) -> PaymentTerminal:
    terminal = lane.devices.terminal
    if terminal is None:
        raise Rejected("no_terminal", f"lane {lane.number} has no payment terminal")
    return terminal


def card_in_doubt(lane: Lane) -> RecordPayment:
    """The card attempt whose outcome is unknown, for the cashier to resolve or a supervisor to set aside;
    refused while the terminal is still being asked about it."""
    pending = lane.state.pending
    if pending is None or pending.method != "card":
        raise Rejected("nothing_unresolved", "no card payment is in doubt")
    if lane.money_running:
        raise Rejected("payment_in_progress", "the terminal is still being asked about the payment; wait for it")
    return pending


# -- cash -----------------------------------------------------------------------------------------------


async def cash(lane: Lane, command: CashTender, conn: Subscriber | None) -> None:
    """Cash in the store's currency, or foreign cash at central's rate; the whole rest, or `part` of it."""
    state = lane.state
    basket.require_operator(state)
    currency = command.currency.strip().upper() or lane.currency
    tender = RecordTender(kind="cash", currency=currency, amount=command.amount)
    foreign = currency != lane.currency
    if foreign:
        if command.amount <= 0:
            raise Rejected("bad_amount", "foreign cash needs an amount")
        rate = await _rate(lane, currency)
        value = foreign_value(command.amount, rate.rate, lane.currency)
        if value <= 0:
            raise Rejected("bad_amount", f"{format_money(command.amount, currency)} {currency} is worth nothing here")
        tender = RecordTender(kind="cash", currency=currency, amount=command.amount, value=value, rate=rate.rate)
    value = tender.sale_value
    if command.part and value < basket.cash_due(state, lane.currency):
        remaining = _payable(state)
        if value <= 0 or remaining < 0:
            raise Rejected("bad_amount", "part payments are for sales with something to pay")
        new = basket.add_tender(state, tender)
        left = basket.due(new)
        await lane._save(new, ref=command.ref, message=f"cash {lane._money(value)} taken; {lane._money(left)} to pay")
        return
    basket.check_cash(state, value, lane.currency)
    await lane._close(state, "sale", command.ref, conn, tendered=value, cash=tender if foreign else None)


async def _rate(lane: Lane, currency: str) -> ExchangeRate:
    """Central's current rate when it answers (kept for offline), else the last one it published."""
    if currency not in lane.ctx.config.payments.foreign_cash:
        raise Rejected("bad_currency", f"this store does not take cash in {currency}")
    base = lane.currency
    published: list[ExchangeRate] = []
    try:
        published = (await lane.ctx.ask(RatesQuestion(base=base))).rates
    except (LinkDown, *NO_ANSWER) as exc:
        log.info("lane %d: exchange rates from central unavailable (%s); using the last known", lane.number, exc)

    def job(c: sqlite3.Connection) -> ExchangeRate | None:
        if published:  # kept for when central cannot be asked
            rates.save(c, published)
        return rates.get(c, base, currency)

    rate = await lane.ctx.db.write(job)
    if rate is None:
        raise Rejected("no_rate", f"no exchange rate for {currency} is known yet; central publishes them")
    return rate


# -- card -----------------------------------------------------------------------------------------------


async def card(lane: Lane, command: CardTender) -> None:
    """Start a card payment (or a refund to card, when the sale is due negative) for what is due."""
    state = lane.state
    terminal = lane_terminal(lane)
    remaining = _payable(state)
    if remaining < 0 and not state.refund_of:
        raise Rejected(
            "needs_receipt",
            "money goes back to a card only in a refund of a receipt paid by card (refund <receipt id>); "
            "without the receipt, pay back in cash or to a gift card",
        )
    if remaining < 0:
        amount = await _refund_amount(lane, command.amount, remaining, refunds.CARD)
    else:
        amount = _amount(command.amount, remaining, lane.currency)
    if terminal.unresolved is not None:
        raise Rejected("payment_unknown", "a card payment is in doubt: resolve it first")
    prior = terminal.baseline
    if prior is None:  # learn the terminal's last trace now, so the saved attempt can be settled after a crash
        try:
            with trio.fail_after(TERMINAL_QUESTION):
                last = await terminal.last_transaction()
        except trio.TooSlowError:
            raise Rejected("terminal_offline", f"terminal {terminal.name} did not answer") from None
        prior = last.terminal_txn if last is not None else ""
    kind = "refund" if remaining < 0 else "payment"
    pending = RecordPayment(
        kind=kind,
        method="card",
        outcome="unknown",
        amount=amount,
        currency=lane.currency,
        reference=f"{state.sale_id}-{len(state.payments) + 1}",
        prior_txn=prior,
        message="in progress",
    )
    await _start_card(lane, terminal, state, pending, command.ref)


async def _start_card(
    lane: Lane, terminal: PaymentTerminal, state: LaneState, pending: RecordPayment, ref: int
) -> None:
    new = msgspec.structs.replace(state, status=PAYING, pending=pending, status_before=state.status)
    await lane.ctx.db.write(_save_checked(lane, new), durable=True)  # before a byte goes to the terminal
    lane.state = new
    what = {"payment": "card payment", "refund": "refund to card", "reversal": "reversal of card payment"}
    lane._publish(ref=ref, message=f"{what[pending.kind]} {lane._money(pending.amount)}: follow the terminal")
    lane.start_money(_card_call, terminal, pending)


async def _card_call(lane: Lane, terminal: PaymentTerminal, pending: RecordPayment) -> None:
    """Runs beside the lane: the terminal call, one attempt to settle an unknown outcome, then the lane hears it."""
    try:
        with trio.fail_after(lane.devices.payment_timeout):
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
        result = await _settle_unknown(terminal, result)
    await lane.mailbox.tell(MoneyDone(result))


async def _settle_unknown(terminal: PaymentTerminal, result: PaymentResult) -> PaymentResult:
    try:
        with trio.fail_after(TERMINAL_QUESTION * 2):
            settled = await terminal.last_transaction()
    except (Rejected, trio.TooSlowError) as exc:
        log.warning("terminal %s: could not settle %s yet: %s", terminal.name, result.reference, exc)
        return result
    return settled if settled is not None and settled.reference == result.reference else result


async def recover(lane: Lane) -> None:
    """On lane start: a money call saved as pending was cut short by a crash; settle it before anything else."""
    pending = lane.state.pending
    if pending is None:
        return
    if pending.method == "card":
        terminal = lane.devices.terminal
        if terminal is None:
            log.error("lane %d: card attempt %s in doubt and no terminal configured", lane.number, pending.reference)
            return
        terminal.adopt_unknown(result_of(pending))
        log.warning("lane %d: settling card attempt %s from the terminal", lane.number, pending.reference)
        lane.start_money(_resolve_task, terminal)
        return
    # A gift card move whose answer never arrived: undo it at central (through the outbox), forget it here.
    await _giftcard_unknown(lane, pending, "the store stopped before central's answer; voided")


async def _resolve_task(lane: Lane, terminal: PaymentTerminal) -> None:
    unresolved = terminal.unresolved
    if unresolved is None:
        return
    await lane.mailbox.tell(MoneyDone(await _settle_unknown(terminal, unresolved)))


async def resolve(lane: Lane, ref: int) -> None:
    """The cashier asks the terminal about the payment in doubt (it was offline when the lane tried)."""
    pending = card_in_doubt(lane)
    terminal = lane_terminal(lane)
    terminal.adopt_unknown(result_of(pending))
    unresolved = terminal.unresolved
    if unresolved is None:
        raise Rejected("nothing_unresolved", "the terminal holds no payment in doubt")
    try:
        with trio.fail_after(TERMINAL_QUESTION):
            result = await terminal.last_transaction()
    except trio.TooSlowError:
        raise Rejected("terminal_offline", f"terminal {terminal.name} did not answer") from None
    await settle(lane, result or unresolved, ref=ref)


async def settle(lane: Lane, result: PaymentResult, *, ref: int = 0) -> None:
    """Adopt a card call's outcome: a tender for an approval (closing the sale once it is paid), the basket
    left open for a decline, the attempt kept in doubt for an unknown outcome."""
    state = lane.state
    pending = state.pending
    if pending is None or pending.method != "card" or result.reference != pending.reference:
        log.warning("lane %d: outcome for %s matches no attempt in progress; ignored", lane.number, result.reference)
        return
    entry = entry_of(result, pending)
    if result.outcome == "unknown":
        new = msgspec.structs.replace(state, pending=entry)
        await lane._save(new, ref=ref, message=f"card {pending.kind} outcome unknown: {result.message}; resolve it")
        return
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
        await lane._close(after, "sale", ref, None)
        return
    if not approved:
        after = msgspec.structs.replace(after, cancelling=False)
    await lane._save(after, ref=ref, message=_outcome_message(lane, entry))
    if after.cancelling:
        await cancel(lane, ref, None)


def _tender_ref(entry: RecordPayment) -> str:
    return f"{entry.terminal_id}:{entry.receipt_no}"


def _card_tender(entry: RecordPayment, amount: int) -> RecordTender:
    return RecordTender(kind="card", currency=entry.currency, amount=amount, reference=_tender_ref(entry))


def _outcome_message(lane: Lane, entry: RecordPayment) -> str:
    what = {"payment": "card payment", "refund": "refund to card", "reversal": "reversal"}.get(entry.kind, entry.kind)
    card = f" ({entry.masked_pan})" if entry.masked_pan else ""
    return f"{what} {lane._money(entry.amount)} {entry.outcome}{card}: {entry.message}".rstrip(": ")


# -- gift cards and vouchers ----------------------------------------------------------------------------


async def giftcard(lane: Lane, command: GiftCardTender) -> None:
    """Redeem a gift card or voucher at central (or credit it, on a refund); offline, the store's policy."""
    state = lane.state
    remaining = _payable(state)
    card_no = command.card.strip()
    if not card_no or len(card_no) > 64:
        raise Rejected("bad_card", "a gift card number is 1 to 64 characters")
    if remaining < 0 and state.refund_of:  # back to the gift card the receipt was paid with
        amount = await _refund_amount(lane, command.amount, remaining, ("giftcard", card_no))
    else:
        amount = _amount(command.amount, remaining, lane.currency)
    move = GiftCardMove(
        move=uuid.uuid4().hex,
        kind="credit" if remaining < 0 else "redeem",
        card=card_no,
        amount=amount,
        currency=lane.currency,
        store=lane.ctx.config.store,
        sale_id=state.sale_id,
        at=lane.ctx.clock.now_ms(),
    )
    pending = RecordPayment(
        kind=move.kind, method="giftcard", outcome="unknown", amount=amount, currency=move.currency,
        reference=move.move, card=card_no,
    )  # fmt: skip
    saved = msgspec.structs.replace(state, status=PAYING, pending=pending, status_before=state.status)
    await lane.ctx.db.write(_save_checked(lane, saved), durable=True)  # before central is asked
    lane.state = saved
    try:
        answer = (await lane.ctx.ask(GiftCardMoveQuestion(move=move))).card
    except LinkDown as exc:  # central answered, and did nothing
        await _giftcard_done(lane, move, pending, "declined", 0, str(exc), command.ref)
        raise Rejected("giftcard_refused", str(exc)) from None
    except NO_ANSWER as exc:
        await _giftcard_offline(lane, move, pending, command, f"{type(exc).__name__}: {exc}")
        return
    if not answer.ok or answer.amount <= 0:
        await _giftcard_done(lane, move, pending, "declined", 0, answer.message or "nothing to redeem", command.ref)
        raise Rejected("giftcard_declined", f"gift card {card_no}: {answer.message or 'nothing to redeem'}")
    left = f"; {lane._money(answer.balance)} left on it" if move.kind == "redeem" else ""
    await _giftcard_done(lane, move, pending, "approved", answer.amount, f"balance {answer.balance}", command.ref, left)


async def _giftcard_done(
    lane: Lane,
    move: GiftCardMove,
    pending: RecordPayment,
    outcome: str,
    amount: int,
    message: str,
    ref: int,
    note: str = "",
    queue: GiftCardMove | None = None,
) -> None:
    """Record the move's outcome (and a tender for what it took or gave), closing a sale it pays in full."""
    state = lane.state
    entry = msgspec.structs.replace(pending, outcome=outcome, amount=amount or pending.amount, message=message)
    after = basket.end_payment(state, entry)
    if outcome == "approved":
        signed = amount if move.kind == "redeem" else -amount
        after = basket.add_tender(
            after, RecordTender(kind="giftcard", currency=move.currency, amount=signed, reference=move.card)
        )
    queued = [queue] if queue is not None else []
    if outcome == "approved" and basket.due(after) == 0:
        await lane._close(after, "sale", ref, None, also=lambda c: queue_moves(c, queued))
        return
    await _save_with_moves(lane, after, queued)
    what = "gift card" if move.kind == "redeem" else "credit to gift card"
    # A refusal answers the till with an error frame (raised by the caller); the new state is only shown.
    shown = ref if outcome == "approved" else 0
    lane._publish(ref=shown, message=f"{what} {move.card} {outcome} {lane._money(entry.amount)}{note}")


async def _giftcard_offline(
    lane: Lane, move: GiftCardMove, pending: RecordPayment, command: GiftCardTender, why: str
) -> None:
    """Central did not answer. A credit is always queued; a redemption per the store's policy. Either way
    the move travels in the outbox with the same id, so one central may already have applied is not applied
    twice; a refused one travels as a void, so one central may have applied is undone."""
    policy = lane.ctx.config.payments
    offline = msgspec.structs.replace(move, offline=True)
    if move.kind == "credit":
        await _giftcard_done(lane, move, pending, "approved", move.amount, "offline: credited when central is back",
                             command.ref, queue=offline)  # fmt: skip
        return
    if policy.giftcard_offline == "allow":
        spent = await lane.ctx.db.read(lambda c: offline_spent(c, move.card))
        room = policy.giftcard_offline_limit - spent
        amount = move.amount if command.amount else min(move.amount, room)
        if 0 < amount <= room:
            offline = msgspec.structs.replace(offline, amount=amount)
            await _giftcard_done(lane, move, pending, "approved", amount, f"offline ({why}); reconciled at central",
                                 command.ref, note="; taken offline", queue=offline)  # fmt: skip
            return
        reason = f"over the offline limit of {lane._money(policy.giftcard_offline_limit)} per card"
    else:
        reason = "this store takes no gift cards while central is unreachable"
    void = msgspec.structs.replace(move, kind="void")
    await _giftcard_done(lane, move, pending, "declined", 0, f"offline: {reason}", command.ref, queue=void)
    raise Rejected("giftcard_offline", f"central is unreachable and {reason}")


async def _giftcard_unknown(lane: Lane, pending: RecordPayment, message: str) -> None:
    after = basket.end_payment(lane.state, msgspec.structs.replace(pending, message=message))
    await _save_with_moves(lane, after, [_void(lane, pending)])


def _void(lane: Lane, payment: RecordPayment) -> GiftCardMove:
    """The move that undoes a gift card payment at central: the same move id, so central voids that one."""
    return GiftCardMove(
        move=payment.reference, kind="void", card=payment.card, amount=payment.amount, currency=payment.currency,
        store=lane.ctx.config.store, sale_id=lane.state.sale_id, at=lane.ctx.clock.now_ms(),
    )  # fmt: skip


async def _save_with_moves(lane: Lane, after: LaneState, moves: list[GiftCardMove]) -> None:
    """The lane's new state and the gift card moves it sends central, in one durable commit."""

    def job(c: sqlite3.Connection) -> None:
        save_state(c, after)
        queue_moves(c, moves)

    await lane.ctx.db.write(job, durable=True)
    if moves:
        lane.ctx.signal.notify(len(moves))
    lane.state = after


# -- invoice --------------------------------------------------------------------------------------------


async def invoice(lane: Lane, command: InvoiceTender) -> None:
    """All that is due goes on a registered customer's invoice; central must confirm the customer."""
    state = lane.state
    remaining = _payable(state)
    customer = command.customer.strip()
    if remaining < 0:
        await _invoice_credit(lane, customer, command.ref)
        return
    try:
        name = (await lane.ctx.ask(CustomerQuestion(customer=customer))).name
    except LinkDown:
        raise Rejected("unknown_customer", f"no customer {customer} is registered for invoices") from None
    except NO_ANSWER:
        raise Rejected("central_offline", "an invoice needs central to confirm the customer; try again") from None
    tender = RecordTender(kind="invoice", currency=lane.currency, amount=remaining, reference=customer)
    log.info("lane %d: %s invoiced to %s (%s)", lane.number, remaining, customer, name)
    await lane._close(basket.add_tender(state, tender), "sale", command.ref, None)


async def _invoice_credit(lane: Lane, customer: str, ref: int) -> None:
    """A refund of a receipt paid by invoice is a credit on that customer's invoice: a negative invoice
    tender, journaled with the customer. The receipt named the customer, so central need not be asked."""
    state = lane.state
    if not state.refund_of:
        raise Rejected("bad_tender", "money goes back to an invoice only in a refund of a receipt paid by invoice")
    amount = await _refund_amount(lane, 0, basket.due(state), ("invoice", customer))
    tender = RecordTender(kind="invoice", currency=lane.currency, amount=-amount, reference=customer)
    after = basket.add_tender(state, tender)
    if basket.due(after) == 0:
        await lane._close(after, "sale", ref, None)
        return
    await lane.ctx.db.write(_save_checked(lane, after))
    lane.state = after
    lane._publish(ref=ref, message=f"{lane._money(amount)} credited to the invoice of {customer}")


# -- cancel ---------------------------------------------------------------------------------------------


async def cancel(lane: Lane, ref: int, conn: Subscriber | None) -> None:
    """Cancel a sale that took money: card payments are reversed one by one (06 30) before the cancel is
    journaled; gift card moves are voided at central through the outbox in the same commit."""
    state = lane.state
    if any(t.kind == "card" and t.amount < 0 for t in state.tenders):
        raise Rejected("refund_made", "money was already refunded to a card; finish the sale")
    card_tender = next((t for t in state.tenders if t.kind == "card"), None)
    if card_tender is not None:
        original = next(
            p for p in state.payments
            if p.method == "card" and p.kind == "payment" and p.outcome == "approved"
            and _tender_ref(p) == card_tender.reference
        )  # fmt: skip
        terminal = lane_terminal(lane)
        if terminal.unresolved is not None:
            raise Rejected("payment_unknown", "a card payment is in doubt: resolve it first")
        pending = msgspec.structs.replace(
            original, kind="reversal", outcome="unknown", message="in progress", prior_txn=terminal.baseline or ""
        )
        cancelling = msgspec.structs.replace(state, cancelling=True)
        await _start_card(lane, terminal, cancelling, pending, ref)
        return
    voids = [_void(lane, p) for p in state.payments if p.method == "giftcard" and p.outcome == "approved"]
    cleared = msgspec.structs.replace(state, tenders=[], cancelling=False)
    await lane._close(cleared, "cancel", ref, conn, also=lambda c: queue_moves(c, voids))
