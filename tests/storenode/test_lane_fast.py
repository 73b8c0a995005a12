"""The lane actor alone, fast: card, gift card, invoice and refund decisions with a real SQLite journal, a
fake terminal and a fake central, on the autojump clock. The same flows through a whole store node (and
the ZVT simulator, and a real central) are in test_card_payments, test_tenders, test_refunds and
test_terminal_admin; these pin the lane's behaviour in milliseconds so it can be changed with confidence."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from trio.testing import MockClock

from protocol.frames import (
    CardTender,
    CashTender,
    Error,
    GiftCardTender,
    InvoiceTender,
    Login,
    Receipt,
    RefundOf,
    ResolvePayment,
    ReturnItem,
    SaleState,
    Scan,
    SetAside,
)
from storenode.config import PaymentsConfig
from storenode.journal import chain
from storenode.lanes.payments import GIFTCARD_STREAM
from storenode.lanes.terminal_admin import SET_ASIDE
from tests.kit.lanes import FakeCentral, LaneRig, open_lane
from tests.kit.payments import COFFEE, MILK

BOUND = 120  # virtual seconds: a hang jumps straight here and fails


async def selling(rig: LaneRig, *codes: str) -> SaleState:
    assert isinstance(await rig.do(Login(operator="1", pin="1234")), SaleState)
    state = None
    for code in codes:
        state = await rig.do(Scan(code=code))
        assert isinstance(state, SaleState), state
    assert state is not None
    return state


async def paid_by_card(rig: LaneRig) -> SaleState:
    """Start a card payment; the lane as it stands once the terminal's outcome is in."""
    answer = await rig.do(CardTender())
    assert isinstance(answer, SaleState) and answer.status == "paying", answer
    return await rig.till.until(lambda s: s.status != "paying" or "unknown" in s.message)


@pytest.fixture
async def rig(tmp_path: Path, nursery: trio.Nursery, autojump_clock: MockClock) -> AsyncIterator[LaneRig]:
    with trio.fail_after(BOUND):
        rig = await open_lane(tmp_path, nursery, autojump_clock)
    yield rig


# -- card -----------------------------------------------------------------------------------------------


async def test_an_approved_card_payment_closes_the_sale_once(rig: LaneRig) -> None:
    with trio.fail_after(BOUND):
        await selling(rig, MILK, COFFEE)
        state = await paid_by_card(rig)
        assert state.status == "ready"
        (receipt,) = rig.till.receipts
        assert receipt.total == 1590 + 6995
        (sale,) = await rig.journal()
        assert [(t.kind, t.amount) for t in sale.tenders] == [("card", 8585)]
        (payment,) = sale.payments
        assert (payment.outcome, payment.masked_pan) == ("approved", "476173******0119")
        assert [c.outcome for c in rig.terminal.calls] == ["approved"]


async def test_a_declined_card_leaves_the_sale_open_for_another_tender(rig: LaneRig) -> None:
    rig.terminal.outcomes = ["declined"]
    with trio.fail_after(BOUND):
        await selling(rig, MILK)
        state = await paid_by_card(rig)
        assert (state.status, state.paid, state.due) == ("open", 0, 1590) and "declined" in state.message
        assert rig.till.receipts == []
        receipt = await rig.do(CashTender(amount=2000))
        assert isinstance(receipt, Receipt) and receipt.change == 400
        (sale,) = await rig.journal()
        assert [(t.kind, t.amount) for t in sale.tenders] == [("cash", 2000)]
        assert [p.outcome for p in sale.payments] == ["declined"]  # the attempt is on the record


async def test_an_unknown_outcome_holds_the_lane_until_the_terminal_settles_it(rig: LaneRig) -> None:
    rig.terminal.outcomes = ["unknown"]
    with trio.fail_after(BOUND):
        await selling(rig, MILK)
        state = await paid_by_card(rig)
        assert state.status == "paying" and "unknown" in state.message
        refused = await rig.do(Scan(code=COFFEE))
        assert isinstance(refused, Error) and refused.code == "payment_in_progress"
        still = await rig.do(ResolvePayment())  # the terminal cannot tell yet
        assert isinstance(still, SaleState) and still.status == "paying"
        assert await rig.journal() == []

        rig.terminal.settles_as = "approved"
        receipt = await rig.do(ResolvePayment())
        assert isinstance(receipt, Receipt) and receipt.total == 1590
        (sale,) = await rig.journal()
        assert [(t.kind, t.amount) for t in sale.tenders] == [("card", 1590)]
        assert rig.terminal.unresolved is None and len(rig.terminal.calls) == 1  # charged once


async def test_a_supervisor_sets_aside_a_payment_in_doubt_and_it_is_never_paid(rig: LaneRig) -> None:
    rig.terminal.outcomes = ["unknown"]
    with trio.fail_after(BOUND):
        await selling(rig, MILK)
        await paid_by_card(rig)
        for command, code in (
            (SetAside(operator="2", pin="4321", reason=" "), "bad_request"),
            (SetAside(operator="2", pin="0000", reason="terminal replaced"), "wrong_pin"),
        ):
            answer = await rig.do(command)
            assert isinstance(answer, Error) and answer.code == code, answer
        state = await rig.do(SetAside(operator="2", pin="4321", reason="terminal replaced"))
        assert isinstance(state, SaleState) and (state.status, state.paid, state.due) == ("open", 0, 1590)
        assert "set aside" in state.message and rig.terminal.unresolved is None
        assert isinstance(await rig.do(CashTender(amount=1600)), Receipt)
        (sale,) = await rig.journal()
        assert [t.kind for t in sale.tenders] == ["cash"]
        (aside,) = sale.payments
        assert aside.outcome == "unknown" and SET_ASIDE in aside.message and "supervisor 2" in aside.message


# -- gift cards -----------------------------------------------------------------------------------------


async def test_a_gift_card_online_pays_what_it_holds(rig: LaneRig) -> None:
    rig.central.giftcards = {"GC-1": 5000, "GC-0": 0}
    with trio.fail_after(BOUND):
        await selling(rig, MILK)
        empty = await rig.do(GiftCardTender(card="GC-0"))
        assert isinstance(empty, Error) and empty.code == "giftcard_declined"
        receipt = await rig.do(GiftCardTender(card="GC-1"))
        assert isinstance(receipt, Receipt) and receipt.total == 1590
        assert rig.central.giftcards["GC-1"] == 5000 - 1590
        (sale,) = await rig.journal()
        assert [(t.kind, t.amount, t.reference) for t in sale.tenders] == [("giftcard", 1590, "GC-1")]
        assert await rig.outbox(GIFTCARD_STREAM) == 0  # central made the move itself


async def test_a_gift_card_offline_is_refused_under_the_reject_policy(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    """The move may have reached central before the link dropped: it travels to central as a void."""
    with trio.fail_after(BOUND):
        rig = await open_lane(tmp_path, nursery, autojump_clock, central=FakeCentral(online=False))
        await selling(rig, MILK)
        refused = await rig.do(GiftCardTender(card="GC-1"))
        assert isinstance(refused, Error) and refused.code == "giftcard_offline"
        assert rig.till.state is not None and (rig.till.state.status, rig.till.state.paid) == ("open", 0)
        assert await rig.outbox(GIFTCARD_STREAM) == 1  # the void


async def test_a_silent_central_times_out_and_the_allow_policy_takes_up_to_its_limit(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    policy = PaymentsConfig(giftcard_offline="allow", giftcard_offline_limit=1000)
    with trio.fail_after(BOUND):
        rig = await open_lane(tmp_path, nursery, autojump_clock, payments=policy, central=FakeCentral(silent=True))
        await selling(rig, MILK)
        before = trio.current_time()
        state = await rig.do(GiftCardTender(card="GC-3"))
        assert trio.current_time() - before >= 3.0  # the question's timeout ran out, in virtual time
        assert isinstance(state, SaleState) and (state.paid, state.due) == (1000, 590) and "offline" in state.message
        over = await rig.do(GiftCardTender(card="GC-3", amount=100))  # 1000 + 100 > the limit
        assert isinstance(over, Error) and over.code == "giftcard_offline"
        assert isinstance(await rig.do(CashTender(amount=600)), Receipt)
        (sale,) = await rig.journal()
        assert [(t.kind, t.amount) for t in sale.tenders] == [("giftcard", 1000), ("cash", 600)]
        assert await rig.outbox(GIFTCARD_STREAM) == 2  # the offline redemption and the refused one's void
        assert rig.lane.ctx.signal.backlog >= 2


# -- invoice --------------------------------------------------------------------------------------------


async def test_an_invoice_needs_central_to_know_the_customer(rig: LaneRig) -> None:
    rig.central.customers = {"C1": "Acme AB"}
    with trio.fail_after(BOUND):
        await selling(rig, COFFEE)
        unknown = await rig.do(InvoiceTender(customer="C9"))
        assert isinstance(unknown, Error) and unknown.code == "unknown_customer"
        rig.central.online = False
        away = await rig.do(InvoiceTender(customer="C1"))
        assert isinstance(away, Error) and away.code == "central_offline"
        rig.central.online = True
        receipt = await rig.do(InvoiceTender(customer="C1"))
        assert isinstance(receipt, Receipt) and receipt.total == 6995
        (sale,) = await rig.journal()
        assert [(t.kind, t.amount, t.reference) for t in sale.tenders] == [("invoice", 6995, "C1")]


# -- refunds --------------------------------------------------------------------------------------------


async def test_a_cash_receipt_is_refunded_in_cash_never_beyond_it(rig: LaneRig) -> None:
    with trio.fail_after(BOUND):
        await selling(rig, MILK, MILK)
        sold = await rig.do(CashTender(amount=4000))
        assert isinstance(sold, Receipt)
        receipt = f"S001-1-{sold.receipt_no}"
        state = await rig.do(RefundOf(receipt=receipt))
        assert isinstance(state, SaleState) and state.refund_of == receipt
        over = await rig.do(ReturnItem(code=MILK, qty=3))
        assert isinstance(over, Error) and over.code == "over_return"
        state = await rig.do(ReturnItem(code=MILK))
        assert isinstance(state, SaleState) and state.due == -1590
        card = await rig.do(CardTender())
        assert isinstance(card, Error) and card.code == "not_paid_by"  # the receipt took no card
        paid_back = await rig.do(CashTender(amount=0))
        assert isinstance(paid_back, Receipt) and paid_back.total == -1590
        _, refund = await rig.journal()
        assert refund.refund_of == receipt and [(x.origin, x.qty) for x in refund.lines] == [(1, -1)]
        assert [(t.kind, t.amount) for t in refund.tenders] == [("cash", 0)] and refund.change == 1600  # cash-rounded
        assert rig.terminal.calls == []
        assert (await rig.db.read(lambda c: chain.verify(c, "S001", signed_by(rig))))[1] == []


async def test_a_card_receipt_is_refunded_to_the_card(rig: LaneRig) -> None:
    with trio.fail_after(BOUND):
        await selling(rig, MILK, COFFEE)
        await paid_by_card(rig)
        (sold,) = rig.till.receipts
        await rig.do(RefundOf(receipt=f"S001-1-{sold.receipt_no}"))
        await rig.do(ReturnItem(code=COFFEE))
        state = await paid_by_card(rig)
        assert state.status == "ready"
        assert rig.till.receipts[-1].total == -6995
        assert [(c.kind, c.outcome, c.amount) for c in rig.terminal.calls] == [
            ("payment", "approved", 8585),
            ("refund", "approved", 6995),
        ]
        _, refund = await rig.journal()
        assert [(t.kind, t.amount) for t in refund.tenders] == [("card", -6995)]
        assert (await rig.db.read(lambda c: chain.verify(c, "S001", signed_by(rig))))[1] == []


def signed_by(rig: LaneRig) -> dict[str, bytes]:
    """The lane's store key, as verification looks keys up."""
    signer = rig.lane.ctx.signer
    return {signer.key_id: signer.public}
