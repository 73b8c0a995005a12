"""The refund and stock attacks of issue 13, over real till connections to a store node (the ZVT simulator
as lane 1's card terminal): each now needs a supervisor, and without one no money goes back and no stock
moves."""

from __future__ import annotations

from pathlib import Path

import trio

from protocol.frames import (
    CashTender,
    Error,
    Login,
    Receipt,
    RefundOf,
    ReturnItem,
    SaleState,
    Scan,
    StockCount,
    StockInfo,
    StockMove,
    TillFrame,
)
from protocol.gs1 import check_digit
from storenode.app import StoreNode
from tests.kit.journal import journal_at
from tests.kit.nodes import start_store
from tests.kit.payments import COFFEE, pay_by_card, sim_terminal
from tests.kit.waits import next_receipt, until
from till.client import TillClient, connect

BOUND = 30
SUPERVISOR = {"approver": "2", "approver_pin": "4321"}


def label(key: str, cents: int) -> str:
    body = f"{key}{cents:05d}"
    return body + check_digit(body)


def needs_approval(answer: TillFrame, *words: str) -> None:
    assert isinstance(answer, Error) and answer.code == "approval_needed", answer
    for word in words:
        assert word in answer.message, answer.message


async def nothing_paid_out(till: TillClient, store: StoreNode, journaled: int) -> None:
    """`cash 0` after the refused return pays nothing: no sale is open, the journal did not grow."""
    paid = await till.request(CashTender(amount=0))
    assert isinstance(paid, Error), paid
    assert len(journal_at(store.config.db_path)) == journaled


async def test_9999_items_back_without_a_receipt_then_cash_0_pays_nothing_without_a_supervisor(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    store = await start_store(tmp_path, nursery)
    with trio.fail_after(BOUND):
        async with connect(store.url, lane=1, till="T1") as till:
            await till.request(Login(operator="1", pin="1234"))
            needs_approval(await till.request(ReturnItem(code=COFFEE, qty=9999)), "without a receipt", "100.00")
            await nothing_paid_out(till, store, 0)
            approved = await till.request(ReturnItem(code=COFFEE, qty=2, **SUPERVISOR))
            assert isinstance(approved, SaleState) and approved.due == -13990
            paid = await till.request(CashTender(amount=0))
            assert isinstance(paid, Receipt) and paid.total == -13990
    [record] = journal_at(store.config.db_path)
    assert [(a.action, a.approver) for a in record.approvals] == [("return", "2")]


async def test_an_item_refunded_to_the_card_on_its_receipt_is_not_refunded_again_in_cash_alone(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    sim = sim_terminal()
    store = await start_store(tmp_path, nursery, sim=sim)
    with trio.fail_after(BOUND):
        async with connect(store.url, lane=1, till="T1") as till:
            await till.request(Login(operator="1", pin="1234"))
            await till.request(Scan(code=COFFEE))  # 69.95: under the store's 100.00 for receipt-less returns
            await pay_by_card(till)
            sold = await next_receipt(till)
            receipt = f"S001-1-{sold.receipt_no}"
            await until(till, lambda s: s.status == "ready")
            assert isinstance(await till.request(RefundOf(receipt=receipt)), SaleState)
            assert isinstance(await till.request(ReturnItem(code=COFFEE)), SaleState)
            await pay_by_card(till)  # back to the card it was paid with
            await next_receipt(till, 1)
            await until(till, lambda s: s.status == "ready")
            again = await till.request(ReturnItem(code=COFFEE))  # the same coffee, now without its receipt
            needs_approval(again, f"receipt {receipt}", "twice")
            await nothing_paid_out(till, store, 2)
            approved = await till.request(ReturnItem(code=COFFEE, **SUPERVISOR))  # a supervisor saw a second one
            assert isinstance(approved, SaleState) and approved.due == -6995
    assert [t.amount for t in sim.journal if t.kind == "refund"] == [6995]


async def test_a_price_label_sold_at_001_is_not_refunded_at_99999_without_a_supervisor(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    store = await start_store(tmp_path, nursery)
    with trio.fail_after(BOUND):
        async with connect(store.url, lane=1, till="T1") as till:
            await till.request(Login(operator="1", pin="1234"))
            sold = await till.request(Scan(code=label("2100005", 1)))  # bananas, 0.01 by the label
            assert isinstance(sold, SaleState) and sold.total == 1
            assert isinstance(await till.request(CashTender(amount=100)), Receipt)
            await until(till, lambda s: s.status == "ready")
            needs_approval(await till.request(ReturnItem(code=label("2100005", 99999))), "price label")
            await nothing_paid_out(till, store, 1)


async def test_a_stock_move_of_a_million_from_a_till_needs_a_supervisor(tmp_path: Path, nursery: trio.Nursery) -> None:
    store = await start_store(tmp_path, nursery)
    with trio.fail_after(BOUND):
        async with connect(store.url, lane=1, till="T1") as till:
            await till.request(Login(operator="1", pin="1234"))
            for qty in (1_000_000, -1_000_000):
                needs_approval(await till.request(StockMove(code=COFFEE, qty=qty, reason="adjust")), "stock")
            needs_approval(await till.request(StockCount(code=COFFEE, counted=1_000_000)), "stock")
            assert isinstance(await till.request(StockMove(code=COFFEE, qty=12, reason="receipt")), StockInfo)
            moved = await till.request(StockMove(code=COFFEE, qty=-500, reason="transfer", **SUPERVISOR))
            assert isinstance(moved, StockInfo) and moved.here == 12 - 500
