"""Card payments at a lane: a real store node, the ZVT simulator over real TCP, a till over a real websocket.

What the lane reports is checked against what the simulated terminal really booked: money is never taken
twice, never recorded as paid without an approval, and every attempt lands in the journal, masked.
"""

from __future__ import annotations

from pathlib import Path

import trio

from protocol.frames import CancelSale, CardTender, CashTender, Error, Login, Receipt, ReturnItem, SaleState, Scan
from storenode.app import StoreNode
from tests.kit.journal import journal
from tests.kit.nodes import start_store
from tests.kit.payments import BUTTER, COFFEE, FULL_PAN, MILK, pay_by_card, selling, sim_terminal
from tests.kit.waits import next_receipt
from till.client import connect


async def test_card_payment_is_journaled_masked_and_closes_the_sale(tmp_path: Path, nursery: trio.Nursery) -> None:
    sim = sim_terminal()
    store = await start_store(tmp_path, nursery, sim=sim)
    with trio.fail_after(20):
        async with connect(store.url, lane=1, till="T1") as till:
            await selling(till, COFFEE)
            await pay_by_card(till)
            await next_receipt(till)
    receipt = till.receipts[0]
    assert (receipt.total, receipt.tendered, receipt.change) == (6995, 6995, 0)  # a card is never cash-rounded
    assert [t.amount for t in sim.payments] == [6995] and sim.charged == 6995
    (record,) = journal(store)
    assert [(t.kind, t.amount) for t in record.tenders] == [("card", 6995)] and record.rounding == 0
    (attempt,) = record.payments
    booked = sim.payments[0]
    assert (attempt.outcome, attempt.terminal_txn, attempt.auth_code) == ("approved", booked.trace, booked.auth_code)
    assert attempt.masked_pan.startswith("4761") and "*" in attempt.masked_pan
    assert "Card" in receipt.text or "card" in receipt.text
    assert FULL_PAN.encode() not in store.config.db_path.read_bytes()
    for wal in store.config.data_path.glob("store.db*"):
        assert FULL_PAN.encode() not in wal.read_bytes(), wal


async def test_a_decline_leaves_the_basket_open_and_is_journaled(tmp_path: Path, nursery: trio.Nursery) -> None:
    sim = sim_terminal()
    store = await start_store(tmp_path, nursery, sim=sim)
    with trio.fail_after(20):
        async with connect(store.url, lane=1, till="T1") as till:
            await till.request(Login(operator="1", pin="1234"))
            await till.request(Scan(code=MILK, qty=2))
            sim.decline_code = 0x05
            state = await pay_by_card(till)
            assert state.status == "open" and len(state.lines) == 1 and state.paid == 0 and state.due == 3180
            assert "declined" in state.message
            assert not till.receipts
            sim.decline_code = None
            receipt = await till.request(CashTender(amount=3200))
            assert isinstance(receipt, Receipt) and receipt.change == 0
    assert sim.charged == 0
    (record,) = journal(store)
    assert [p.outcome for p in record.payments] == ["declined"]
    assert [(t.kind, t.amount) for t in record.tenders] == [("cash", 3200)]


async def test_split_cash_and_card_then_cancel_reverses_the_card(tmp_path: Path, nursery: trio.Nursery) -> None:
    sim = sim_terminal()
    store = await start_store(tmp_path, nursery, sim=sim)
    with trio.fail_after(20):
        async with connect(store.url, lane=1, till="T1") as till:
            await till.request(Login(operator="1", pin="1234"))
            await till.request(Scan(code=COFFEE))  # 69.95
            state = await till.request(CashTender(amount=2000, part=True))
            assert isinstance(state, SaleState) and (state.paid, state.due) == (2000, 4995)
            refused = await till.request(Scan(code=MILK))
            assert isinstance(refused, Error) and refused.code == "payment_started"
            too_much = await till.request(CardTender(amount=5000))
            assert isinstance(too_much, Error) and too_much.code == "bad_amount"
            state = await pay_by_card(till, CardTender(amount=3000))
            assert (state.paid, state.due, state.status) == (5000, 1995, "tender")
            assert sim.charged == 3000
            answer = await till.request(CancelSale(approver="2", approver_pin="4321"))
            assert isinstance(answer, SaleState) and answer.status == "paying"  # the reversal runs at the terminal
            await next_receipt(till)
    assert sim.charged == 0 and [t.kind for t in sim.journal[-2:]] == ["payment", "reversal"]
    (record,) = journal(store)
    assert record.kind == "cancel" and record.tenders == []
    assert [(p.kind, p.outcome) for p in record.payments] == [("payment", "approved"), ("reversal", "approved")]


async def test_a_dropped_approval_is_settled_from_the_terminal_and_paid_once(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    sim = sim_terminal()
    store = await start_store(tmp_path, nursery, sim=sim)
    with trio.fail_after(30):
        async with connect(store.url, lane=1, till="T1") as till:
            await selling(till, BUTTER)
            sim.fail_next("drop_after_approval")  # booked at the terminal; the store never hears the result
            await till.request(CardTender())
            await next_receipt(till)
    assert sim.charged == 5490 and len(sim.payments) == 1
    (record,) = journal(store)
    assert [(t.kind, t.amount) for t in record.tenders] == [("card", 5490)]
    assert record.payments[0].outcome == "approved" and record.payments[0].terminal_txn == sim.payments[0].trace


async def test_a_drop_before_the_terminal_booked_leaves_the_sale_to_pay_again(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    sim = sim_terminal()
    store = await start_store(tmp_path, nursery, sim=sim)
    with trio.fail_after(30):
        async with connect(store.url, lane=1, till="T1") as till:
            await selling(till, MILK)
            sim.fail_next("drop_after_ack")
            state = await pay_by_card(till)
            assert state.status == "open" and state.due == 1590 and "aborted" in state.message
            await pay_by_card(till)
            await next_receipt(till)
    assert sim.charged == 1590
    (record,) = journal(store)
    assert [p.outcome for p in record.payments] == ["aborted", "approved"]


async def test_a_return_without_its_receipt_goes_back_in_cash_not_to_a_card(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    sim = sim_terminal()
    store: StoreNode = await start_store(tmp_path, nursery, sim=sim)
    with trio.fail_after(20):
        async with connect(store.url, lane=1, till="T1") as till:
            await till.request(Login(operator="1", pin="1234"))
            state = await till.request(ReturnItem(code=COFFEE))  # -69.95, priced as today
            assert isinstance(state, SaleState) and state.due == -6995
            refused = await till.request(CardTender())
            assert isinstance(refused, Error) and refused.code == "needs_receipt"
            assert till.state is not None and till.state.status == "open" and till.state.due == -6995
            receipt = await till.request(CashTender(amount=0))  # 69.95 rounds to 70 in cash
            assert isinstance(receipt, Receipt) and receipt.change == 7000
    assert sim.charged == 0 and "Refund" not in sim.commands
    (record,) = journal(store)
    assert [(t.kind, t.amount) for t in record.tenders] == [("cash", 0)] and record.refund_of == ""
