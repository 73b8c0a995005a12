"""Payment decisions as plain functions: a lane state and what the lane read or heard in, the next state
and the effects for the lane to carry out. No store node, no terminal, no central: the answers are
data, compared as data. (The same flows end to end, through a real store node and its tills, are in
test_tenders.py, test_card_payments.py and test_refunds.py.)"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.terminal import PaymentResult
from protocol.frames import (
    CardTender,
    CashTender,
    ExchangeRate,
    GiftCardMove,
    GiftCardState,
    GiftCardTender,
    InvoiceTender,
    RecordPayment,
    RecordTender,
)
from runtime.mailbox import Rejected
from storenode.config import PaymentsConfig
from storenode.lanes import basket, payments
from storenode.lanes.basket import PAYING, READY, TENDER, Item, LaneState
from storenode.lanes.effects import Close, ContinueCancel, Effect, Refuse, Save, StartCard
from storenode.lanes.payments import Heard, TerminalNow

SEK = "SEK"
STORE = "S001"
NOW = 1_795_000_000_000
COFFEE = Item(item="COFF", name="Coffee", price=6995, vat_rate=2500)
MILK = Item(item="MILK1", name="Milk 1l", price=1590, vat_rate=1200)
IDLE = TerminalNow(in_doubt=False, baseline="000041")
RECEIPT = "S001-1-7"


def rejected(code: str) -> Any:
    return pytest.raises(Rejected, match=f"^{code}: ")


def at_tender(*items: Item) -> LaneState:
    """A sale totalled with `items` (coffee alone: 69.95, 70.00 in cash)."""
    state = basket.open_sale(LaneState(lane=1, status=READY, operator="7"), "sale-1", NOW)
    for item in items or (COFFEE,):
        state = basket.add_line(state, item, item.item, 1)
    return basket.to_total(state)


def a_refund(*, paid_back: int = 0) -> LaneState:
    """A refund of RECEIPT with coffee returned: 69.95 to pay back, `paid_back` of it given already."""
    state = basket.open_sale(LaneState(lane=1, status=READY, operator="7"), "sale-2", NOW)
    state = msgspec.structs.replace(state, refund_of=RECEIPT)
    state = basket.add_line(state, COFFEE, COFFEE.item, 1, returned=True)
    if paid_back:
        state = basket.add_tender(state, RecordTender(kind="cash", currency=SEK, amount=-paid_back))
    return state


def paying(state: LaneState, pending: RecordPayment) -> LaneState:
    """The state a money call leaves the lane in while its outcome is awaited."""
    for effect in payments.start_card(state, pending, 0, SEK):
        if isinstance(effect, Save):
            return effect.state
    raise AssertionError("start_card saves the attempt")


def approved(pending: RecordPayment, **changes: Any) -> PaymentResult:
    result = msgspec.structs.replace(
        payments.result_of(pending), outcome="approved", terminal_id="T1", receipt_no=12, masked_pan="****1234"
    )
    return msgspec.structs.replace(result, **changes)


def only(effects: list[Effect], kind: type[Any]) -> Any:
    found = [e for e in effects if isinstance(e, kind)]
    assert len(found) == 1, effects
    return found[0]


# -- cash ------------------------------------------------------------------------------------------------


def test_cash_that_covers_the_sale_closes_it_with_what_was_handed_over() -> None:
    state = at_tender()
    assert payments.cash(state, CashTender(amount=10000, ref=5), SEK) == [Close(state, "sale", 5, tendered=10000)]


def test_cash_short_of_the_rounded_due_is_refused() -> None:
    with rejected("tender_short"):
        payments.cash(at_tender(), CashTender(amount=6900), SEK)


def test_part_cash_is_a_tender_the_sale_stays_open_for_the_rest() -> None:
    state = at_tender()
    [save] = payments.cash(state, CashTender(amount=2000, part=True, ref=3), SEK)
    assert isinstance(save, Save) and (save.ref, save.durable) == (3, False)
    assert save.state.tenders == [RecordTender(kind="cash", currency=SEK, amount=2000)]
    assert save.state.status == TENDER and basket.due(save.state) == 4995
    assert save.message == "cash 20.00 taken; 49.95 to pay"
    assert state.tenders == []  # the state handed in is not changed


def test_part_cash_that_would_leave_nothing_due_but_the_rounding_is_short() -> None:
    state = at_tender(COFFEE, MILK)  # 85.85: 86.00 in cash
    with rejected("tender_short"):  # before: taken as a part, leaving the sale paid but open
        payments.cash(state, CashTender(amount=8585, part=True), SEK)
    [close] = payments.cash(state, CashTender(amount=8600, part=True), SEK)
    assert isinstance(close, Close)


def test_part_cash_that_covers_the_rest_closes_the_sale() -> None:
    state = at_tender()
    assert payments.cash(state, CashTender(amount=7000, part=True), SEK) == [Close(state, "sale", 0, tendered=7000)]


def test_a_refund_in_cash_closes_with_the_money_back_as_change() -> None:
    state = a_refund()
    assert payments.cash(state, CashTender(amount=0), SEK) == [Close(state, "sale", 0, tendered=0)]
    with rejected("bad_amount"):
        payments.cash(state, CashTender(amount=-8000, part=True), SEK)


@settings(deadline=None)  # no wall-clock dependence
@given(parts=st.lists(st.integers(min_value=1, max_value=3000), min_size=1, max_size=6))
def test_part_cash_adds_up_and_never_takes_more_than_is_due(parts: list[int]) -> None:
    state = at_tender(COFFEE, MILK)  # 85.85
    total = basket.total(state)
    for amount in parts:
        try:
            [effect] = payments.cash(state, CashTender(amount=amount, part=True), SEK)
        except Rejected as refusal:  # covers the exact due but not the rounded cash due
            assert refusal.code == "tender_short"
            assert basket.due(state) <= amount < basket.cash_due(state, SEK)
            return
        if isinstance(effect, Close):  # the rest is covered: the sale closes with it, as cash
            assert amount >= basket.cash_due(state, SEK)
            return
        state = effect.state
        assert basket.paid(state) + basket.due(state) == total
        assert 0 < basket.paid(state) < total


def test_foreign_cash_needs_a_currency_the_store_takes_and_an_amount() -> None:
    state = at_tender()
    assert payments.foreign_currency(state, CashTender(amount=100), SEK, ["EUR"]) == ""
    assert payments.foreign_currency(state, CashTender(amount=100, currency=" eur"), SEK, ["EUR"]) == "EUR"
    with rejected("bad_currency"):
        payments.foreign_currency(state, CashTender(amount=100, currency="USD"), SEK, ["EUR"])
    with rejected("bad_amount"):
        payments.foreign_currency(state, CashTender(amount=0, currency="EUR"), SEK, ["EUR"])
    with rejected("not_logged_in"):
        payments.foreign_currency(LaneState(lane=1), CashTender(amount=100, currency="EUR"), SEK, ["EUR"])


def test_foreign_cash_is_valued_at_the_rate_and_closes_the_sale_as_foreign_cash() -> None:
    state = at_tender()
    rate = ExchangeRate(base=SEK, currency="EUR", rate=11_500_000, at=NOW)  # 11.50 SEK per EUR
    [close] = payments.cash(state, CashTender(amount=1000, currency="EUR"), SEK, rate)  # 10 EUR: 115.00
    tender = RecordTender(kind="cash", currency="EUR", amount=1000, value=11500, rate=11_500_000)
    assert close == Close(state, "sale", 0, tendered=11500, cash=tender)


def test_foreign_cash_worth_nothing_here_is_refused() -> None:
    rate = ExchangeRate(base=SEK, currency="EUR", rate=11_500_000, at=NOW)
    with rejected("bad_amount"):
        payments.cash(at_tender(), CashTender(amount=5, currency="EUR"), SEK, rate)  # 0.575 SEK: under a krona


# -- card ------------------------------------------------------------------------------------------------


def test_a_card_attempt_is_for_all_that_is_due_and_names_the_terminals_last_trace() -> None:
    state = at_tender()
    pending = payments.card(state, CardTender(), SEK, IDLE, {})
    assert pending == RecordPayment(
        kind="payment", method="card", outcome="unknown", amount=6995, currency=SEK, reference="sale-1-1",
        prior_txn="000041", message="in progress",
    )  # fmt: skip
    assert payments.card(state, CardTender(amount=2000), SEK, IDLE, {}).amount == 2000


def test_a_card_attempt_is_refused_for_more_than_is_due_or_while_the_terminal_is_in_doubt() -> None:
    with rejected("bad_amount"):
        payments.card(at_tender(), CardTender(amount=7000), SEK, IDLE, {})
    with rejected("payment_unknown"):
        payments.card(at_tender(), CardTender(), SEK, TerminalNow(in_doubt=True, baseline=None), {})
    with rejected("no_sale"):
        payments.card(LaneState(lane=1, status=READY, operator="7"), CardTender(), SEK, IDLE, {})


def test_starting_a_card_attempt_saves_it_durably_before_it_is_sent() -> None:
    state = at_tender()
    pending = payments.card(state, CardTender(), SEK, IDLE, {})
    save, start = payments.start_card(state, pending, 9, SEK)
    assert start == StartCard(pending)
    assert isinstance(save, Save) and save.durable and save.checked and not save.quiet
    assert (save.state.status, save.state.status_before, save.state.pending) == (PAYING, TENDER, pending)
    assert (save.ref, save.message) == (9, "card payment 69.95: follow the terminal")


def test_money_goes_back_to_a_card_only_in_a_refund_of_a_receipt() -> None:
    without_receipt = msgspec.structs.replace(a_refund(), refund_of="")
    with rejected("needs_receipt"):
        payments.card(without_receipt, CardTender(), SEK, IDLE, {})


def test_a_refund_to_card_is_at_most_what_the_receipt_took_by_card() -> None:
    state = a_refund()  # 69.95 to pay back
    pending = payments.card(state, CardTender(), SEK, IDLE, {("card", ""): 5000})
    assert (pending.kind, pending.amount) == ("refund", 5000)  # by default: all the card may take back
    assert payments.card(state, CardTender(amount=3000), SEK, IDLE, {("card", ""): 5000}).amount == 3000
    with rejected("over_refund"):
        payments.card(state, CardTender(amount=6000), SEK, IDLE, {("card", ""): 5000})
    with rejected("not_paid_by"):
        payments.card(state, CardTender(), SEK, IDLE, {("cash", ""): 6995})


# -- settling a card call ----------------------------------------------------------------------------------


def test_an_approval_that_pays_the_sale_closes_it() -> None:
    state = at_tender()
    pending = payments.card(state, CardTender(), SEK, IDLE, {})
    [close] = payments.settle(paying(state, pending), approved(pending), SEK, 4)
    assert isinstance(close, Close) and (close.kind, close.ref) == ("sale", 4)
    assert close.state.tenders == [RecordTender(kind="card", currency=SEK, amount=6995, reference="T1:12")]
    assert [(p.outcome, p.masked_pan) for p in close.state.payments] == [("approved", "****1234")]
    assert close.state.pending is None


def test_an_approval_of_part_leaves_the_rest_to_pay() -> None:
    state = at_tender()
    pending = payments.card(state, CardTender(amount=2000), SEK, IDLE, {})
    [save] = payments.settle(paying(state, pending), approved(pending, amount=2000), SEK)
    assert isinstance(save, Save) and not save.durable
    assert (save.state.status, basket.due(save.state), save.state.pending) == (TENDER, 4995, None)
    assert save.message == "card payment 20.00 approved (****1234)"


def test_a_decline_records_the_attempt_and_gives_the_sale_back() -> None:
    state = at_tender()
    pending = payments.card(state, CardTender(), SEK, IDLE, {})
    declined = msgspec.structs.replace(payments.result_of(pending), outcome="declined", message="insufficient funds")
    [save] = payments.settle(paying(state, pending), declined, SEK)
    assert isinstance(save, Save)
    assert (save.state.status, save.state.tenders, save.state.pending) == (TENDER, [], None)
    assert [p.outcome for p in save.state.payments] == ["declined"]
    assert save.message == "card payment 69.95 declined: insufficient funds"


def test_an_unknown_outcome_keeps_the_attempt_in_doubt() -> None:
    state = at_tender()
    pending = payments.card(state, CardTender(), SEK, IDLE, {})
    unknown = msgspec.structs.replace(payments.result_of(pending), message="no answer")
    [save] = payments.settle(paying(state, pending), unknown, SEK, 2)
    assert isinstance(save, Save)
    assert save.state.status == PAYING and save.state.pending is not None
    assert save.state.pending.reference == pending.reference and save.state.payments == []
    assert save.message == "card payment outcome unknown: no answer; resolve it"


def test_an_outcome_for_no_attempt_in_progress_changes_nothing() -> None:
    state = at_tender()
    pending = payments.card(state, CardTender(), SEK, IDLE, {})
    assert payments.settle(state, approved(pending), SEK) == []  # nothing pending
    other = approved(pending, reference="sale-1-9")
    assert payments.settle(paying(state, pending), other, SEK) == []


def test_a_card_in_doubt_is_for_the_cashier_once_the_terminal_is_not_being_asked() -> None:
    state = at_tender()
    pending = payments.card(state, CardTender(), SEK, IDLE, {})
    assert payments.card_in_doubt(paying(state, pending), False) == pending
    with rejected("payment_in_progress"):
        payments.card_in_doubt(paying(state, pending), True)
    with rejected("nothing_unresolved"):
        payments.card_in_doubt(state, False)


# -- cancel ------------------------------------------------------------------------------------------------


def paid_in_part_by_card() -> LaneState:
    state = at_tender()
    pending = payments.card(state, CardTender(amount=2000), SEK, IDLE, {})
    [save] = payments.settle(paying(state, pending), approved(pending, amount=2000), SEK)
    assert isinstance(save, Save)
    return save.state


def test_cancelling_a_sale_without_money_taken_journals_the_cancel() -> None:
    state = at_tender()
    assert payments.cancel(state, 3, None, SEK, STORE, NOW) == [Close(state, "cancel", 3)]


def test_cancelling_a_sale_paid_by_card_reverses_the_payment_first() -> None:
    state = paid_in_part_by_card()
    save, start = payments.cancel(state, 3, IDLE, SEK, STORE, NOW)
    assert isinstance(save, Save) and isinstance(start, StartCard) and save.durable
    reversal = start.pending
    assert (reversal.kind, reversal.outcome, reversal.amount, reversal.prior_txn) == (
        "reversal",
        "unknown",
        2000,
        "000041",
    )
    assert reversal.reference == state.payments[0].reference  # the payment it undoes
    assert save.state.cancelling and save.state.status == PAYING


def test_an_approved_reversal_takes_the_card_tender_off_and_the_cancel_goes_on() -> None:
    state = paid_in_part_by_card()
    save, start = payments.cancel(state, 3, IDLE, SEK, STORE, NOW)
    assert isinstance(save, Save) and isinstance(start, StartCard)
    reversed_ = approved(start.pending, kind="reversal")
    after, go_on = payments.settle(save.state, reversed_, SEK, 3)
    assert go_on == ContinueCancel(3)
    assert isinstance(after, Save) and after.state.tenders == [] and after.state.cancelling
    cancelled = msgspec.structs.replace(after.state, cancelling=False)
    assert payments.cancel(after.state, 3, IDLE, SEK, STORE, NOW) == [Close(cancelled, "cancel", 3)]


def test_a_refused_reversal_ends_the_cancel() -> None:
    state = paid_in_part_by_card()
    save, start = payments.cancel(state, 3, IDLE, SEK, STORE, NOW)
    assert isinstance(save, Save) and isinstance(start, StartCard)
    declined = msgspec.structs.replace(payments.result_of(start.pending), outcome="declined")
    [after] = payments.settle(save.state, declined, SEK, 3)
    assert isinstance(after, Save) and not after.state.cancelling and len(after.state.tenders) == 1


def test_a_card_cancel_needs_the_terminal_free() -> None:
    state = paid_in_part_by_card()
    with rejected("no_terminal"):
        payments.cancel(state, 3, None, SEK, STORE, NOW)
    with rejected("payment_unknown"):
        payments.cancel(state, 3, TerminalNow(in_doubt=True, baseline=""), SEK, STORE, NOW)
    refunded = basket.add_tender(a_refund(), RecordTender(kind="card", currency=SEK, amount=-1000, reference="T1:3"))
    with rejected("refund_made"):
        payments.cancel(refunded, 3, IDLE, SEK, STORE, NOW)


# -- gift cards --------------------------------------------------------------------------------------------


POLICY = PaymentsConfig()  # reject while central is unreachable
ALLOW = PaymentsConfig(giftcard_offline="allow", giftcard_offline_limit=5000)


def asked(
    state: LaneState, command: GiftCardTender, rooms: payments.Rooms | None = None
) -> tuple[GiftCardMove, LaneState]:
    move, [save] = payments.giftcard(state, command, SEK, STORE, NOW, "move-1", rooms or {})
    assert isinstance(save, Save)
    return move, save.state


def test_a_gift_card_attempt_is_saved_before_central_is_asked_and_not_shown_yet() -> None:
    state = at_tender()
    move, [save] = payments.giftcard(state, GiftCardTender(card=" GC-1 "), SEK, STORE, NOW, "move-1", {})
    assert move == GiftCardMove(
        move="move-1", kind="redeem", card="GC-1", amount=6995, currency=SEK, store=STORE, sale_id="sale-1", at=NOW
    )
    assert isinstance(save, Save) and save.durable and save.checked and save.quiet
    assert save.state.status == PAYING and save.state.pending is not None
    assert (save.state.pending.method, save.state.pending.reference) == ("giftcard", "move-1")
    with rejected("bad_card"):
        payments.giftcard(state, GiftCardTender(card="  "), SEK, STORE, NOW, "move-1", {})


def test_a_gift_card_credit_goes_back_to_a_card_the_receipt_was_paid_with() -> None:
    move, _ = asked(a_refund(), GiftCardTender(card="GC-1"), {("giftcard", "GC-1"): 6995})
    assert (move.kind, move.amount, move.refund_of) == ("credit", 6995, RECEIPT)  # central checks it against this
    redeem, _ = asked(at_tender(), GiftCardTender(card="GC-1"))
    assert redeem.refund_of == ""
    with rejected("needs_receipt"):  # no store credit without the receipt: central would not take it
        asked(msgspec.structs.replace(a_refund(), refund_of=""), GiftCardTender(card="GC-1"))
    with rejected("not_paid_by"):
        asked(a_refund(), GiftCardTender(card="GC-2"), {("giftcard", "GC-1"): 6995})


def test_central_approving_all_that_is_due_closes_the_sale() -> None:
    move, state = asked(at_tender(), GiftCardTender(card="GC-1", ref=6))
    answer = GiftCardState(card="GC-1", kind="giftcard", balance=3005, currency=SEK, amount=6995)
    [close] = payments.giftcard_heard(state, move, GiftCardTender(card="GC-1", ref=6), Heard(answer=answer), POLICY, 0)
    assert isinstance(close, Close) and (close.kind, close.ref, close.moves) == ("sale", 6, ())
    assert close.state.tenders == [RecordTender(kind="giftcard", currency=SEK, amount=6995, reference="GC-1")]


def test_central_approving_part_leaves_the_rest_and_says_what_is_left_on_the_card() -> None:
    command = GiftCardTender(card="GC-1", ref=6)
    move, state = asked(at_tender(), command)
    answer = GiftCardState(card="GC-1", kind="giftcard", balance=0, currency=SEK, amount=2000)
    [save] = payments.giftcard_heard(state, move, command, Heard(answer=answer), POLICY, 0)
    assert isinstance(save, Save) and save.durable and save.moves == ()
    assert (save.ref, basket.due(save.state), save.state.status) == (6, 4995, TENDER)
    assert save.message == "gift card GC-1 approved 20.00; 0.00 left on it"


def test_central_declining_records_the_attempt_then_refuses() -> None:
    command = GiftCardTender(card="GC-1", ref=6)
    move, state = asked(at_tender(), command)
    answer = GiftCardState(card="GC-1", kind="giftcard", balance=0, currency=SEK, ok=False, message="empty")
    save, refuse = payments.giftcard_heard(state, move, command, Heard(answer=answer), POLICY, 0)
    assert refuse == Refuse("giftcard_declined", "gift card GC-1: empty")
    assert isinstance(save, Save) and save.ref == 0  # the till hears the refusal; the state is only shown
    assert (save.state.status, save.state.tenders) == (TENDER, [])
    assert [(p.outcome, p.message) for p in save.state.payments] == [("declined", "empty")]
    _, refused = payments.giftcard_heard(state, move, command, Heard(refused="unknown card"), POLICY, 0)
    assert refused == Refuse("giftcard_refused", "unknown card")


def test_unreachable_central_a_redemption_is_refused_and_voided_unless_the_store_allows_it() -> None:
    command = GiftCardTender(card="GC-1")
    move, state = asked(at_tender(), command)
    save, refuse = payments.giftcard_heard(state, move, command, Heard(unreachable="Offline"), POLICY, 0)
    assert isinstance(refuse, Refuse) and refuse.code == "giftcard_offline"
    assert isinstance(save, Save) and [(m.kind, m.move) for m in save.moves] == [("void", "move-1")]


def test_unreachable_central_the_store_takes_up_to_its_limit_per_card_offline() -> None:
    command = GiftCardTender(card="GC-1")
    move, state = asked(at_tender(), command)
    [save] = payments.giftcard_heard(state, move, command, Heard(unreachable="Offline"), ALLOW, 1000)
    assert isinstance(save, Save) and basket.due(save.state) == 2995  # 50.00 limit, 10.00 spent already
    [offline] = save.moves
    assert (offline.kind, offline.amount, offline.offline, offline.move) == ("redeem", 4000, True, "move-1")
    over, refuse = payments.giftcard_heard(state, move, command, Heard(unreachable="Offline"), ALLOW, 5000)
    assert isinstance(refuse, Refuse) and refuse.code == "giftcard_offline"
    assert isinstance(over, Save) and [m.kind for m in over.moves] == ["void"]


def test_unreachable_central_a_credit_is_queued_for_when_it_is_back() -> None:
    command = GiftCardTender(card="GC-1")
    move, state = asked(a_refund(), command, {("giftcard", "GC-1"): 6995})
    [close] = payments.giftcard_heard(state, move, command, Heard(unreachable="Offline"), POLICY, 0)
    assert isinstance(close, Close) and [(m.kind, m.offline) for m in close.moves] == [("credit", True)]


def test_a_gift_card_move_without_its_answer_is_voided_after_a_restart() -> None:
    _, state = asked(at_tender(), GiftCardTender(card="GC-1"))
    [save] = payments.giftcard_unknown(state, STORE, NOW + 5, "stopped")
    assert isinstance(save, Save) and save.durable and save.quiet
    assert (save.state.pending, save.state.status) == (None, TENDER)
    assert [(m.kind, m.move, m.at) for m in save.moves] == [("void", "move-1", NOW + 5)]


def test_cancelling_a_sale_paid_by_gift_card_voids_the_move_in_the_cancel() -> None:
    command = GiftCardTender(card="GC-1")
    move, state = asked(at_tender(), command)
    answer = GiftCardState(card="GC-1", kind="giftcard", balance=0, currency=SEK, amount=2000)
    [save] = payments.giftcard_heard(state, move, command, Heard(answer=answer), POLICY, 0)
    assert isinstance(save, Save)
    [close] = payments.cancel(save.state, 8, None, SEK, STORE, NOW)
    assert isinstance(close, Close) and close.kind == "cancel" and close.state.tenders == []
    assert [(m.kind, m.move, m.amount) for m in close.moves] == [("void", "move-1", 2000)]


# -- invoice -----------------------------------------------------------------------------------------------


def test_an_invoice_takes_all_that_is_due_and_closes_the_sale() -> None:
    [close] = payments.invoice(at_tender(), InvoiceTender(customer=" C-9 ", ref=2), SEK, "Acme")
    assert isinstance(close, Close) and close.ref == 2
    assert close.state.tenders == [RecordTender(kind="invoice", currency=SEK, amount=6995, reference="C-9")]


def test_an_invoice_credit_needs_a_receipt_paid_by_that_customers_invoice() -> None:
    with rejected("bad_tender"):
        payments.invoice_credit(
            msgspec.structs.replace(a_refund(), refund_of=""), InvoiceTender(customer="C-9"), SEK, {}
        )
    [close] = payments.invoice_credit(a_refund(), InvoiceTender(customer="C-9"), SEK, {("invoice", "C-9"): 6995})
    assert isinstance(close, Close) and close.state.tenders[-1].amount == -6995
    [save] = payments.invoice_credit(a_refund(), InvoiceTender(customer="C-9", ref=1), SEK, {("invoice", "C-9"): 4000})
    assert isinstance(save, Save) and save.checked and basket.due(save.state) == -2995
    assert save.message == "40.00 credited to the invoice of C-9"


def _card_back(state: LaneState, rooms: payments.Rooms) -> int:
    return payments.card(state, CardTender(), SEK, IDLE, rooms).amount


def _invoice_back(state: LaneState, rooms: payments.Rooms) -> int:
    effect = payments.invoice_credit(state, InvoiceTender(customer="C-9"), SEK, rooms)[0]
    assert isinstance(effect, Save | Close)
    return -effect.state.tenders[-1].amount


@settings(deadline=None)  # no wall-clock dependence
@given(
    room=st.integers(min_value=-500, max_value=9000),
    back=st.sampled_from([(("card", ""), _card_back), (("invoice", "C-9"), _invoice_back)]),
)
def test_a_refund_gives_back_by_default_what_is_due_but_never_more_than_the_tenders_room(
    room: int, back: tuple[tuple[str, str], Any]
) -> None:
    key, decide = back
    state = a_refund()  # 69.95 to pay back
    if room <= 0:
        with rejected("not_paid_by"):
            decide(state, {key: room})
    else:
        assert decide(state, {key: room, ("cash", ""): 9999}) == min(6995, room)


def test_the_state_handed_to_a_decision_is_left_as_it_was() -> None:
    state = at_tender()
    before = msgspec.msgpack.encode(state)
    pending = payments.card(state, CardTender(), SEK, IDLE, {})
    payments.start_card(state, pending, 0, SEK)
    payments.cash(state, CashTender(amount=2000, part=True), SEK)
    payments.giftcard(state, GiftCardTender(card="GC-1"), SEK, STORE, NOW, "m", {})
    payments.invoice(state, InvoiceTender(customer="C-9"), SEK, "Acme")
    assert msgspec.msgpack.encode(state) == before
