"""Training mode (issue 14, Deliver 7): a real store node linked to a real central, a till over real
websockets. Switching on needs a supervisor and is journaled with them; sales in training are marked on
the till and the receipt, journaled as training, move no stock and no real money, and central counts them
apart from the store's sales; a training receipt is not refunded as a real one, nor a real one in training."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import trio

from central.app import CentralNode
from central.registers import sales
from protocol.frames import (
    CardTender,
    CashTender,
    Command,
    Error,
    GiftCardTender,
    InvoiceTender,
    Login,
    Park,
    Receipt,
    RefundOf,
    Resume,
    SaleState,
    Scan,
    StockCount,
    StockMove,
    Training,
)
from storenode import stock
from storenode.app import StoreNode
from storepos import commands
from tests.kit.journal import journal
from tests.kit.nodes import start_store
from tests.kit.payments import COFFEE, MILK
from tests.kit.waits import drained, online, until
from till.client import TillClient, connect

BOUND = 30
TRAINING = "TRAINING / ÖVNING"


def levels(store: StoreNode) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{store.config.db_path}?mode=ro", uri=True)
    try:
        return stock.levels(conn)
    finally:
        conn.close()


async def refused(store: StoreNode, till: TillClient, command: Command, code: str, words: str) -> None:
    """Refused with `code` naming `words`; the lane and the journal as they were."""
    before = (till.state, journal(store))
    answer = await till.request(command)
    assert isinstance(answer, Error) and answer.code == code, answer
    assert words in answer.message, answer.message
    assert till.state is not None and before[0] is not None
    assert (till.state.lines, till.state.status, till.state.training) == (
        before[0].lines,
        before[0].status,
        before[0].training,
    )
    assert journal(store) == before[1]


async def test_training_sales_are_marked_cash_only_stockless_and_apart_at_central(
    tmp_path: Path, nursery: trio.Nursery, central: CentralNode, capsys: pytest.CaptureFixture[str]
) -> None:
    store = await start_store(tmp_path, nursery, central)
    with trio.fail_after(BOUND):
        await online(store)
        async with connect(store.url, lane=1, till="T1") as till:
            await till.request(Login(operator="1", pin="1234"))  # a cashier
            real = await till.request(Scan(code=COFFEE))
            assert isinstance(real, SaleState) and not real.training
            real_receipt = await till.request(CashTender(amount=10000))
            assert isinstance(real_receipt, Receipt) and TRAINING not in real_receipt.text
            await until(till, lambda s: s.status == "ready")
            stock_before = levels(store)

            await refused(store, till, Training(on=True), "approval_needed", "training mode needs a supervisor")
            await refused(
                store, till, Training(on=True, approver="1", approver_pin="1234"), "approval_needed", "is a cashier"
            )
            on = await till.request(Training(on=True, approver="2", approver_pin="4321"))
            assert isinstance(on, SaleState) and on.training and on.status == "ready"
            await refused(store, till, Training(on=True), "training_already", "already in training mode")
            await refused(store, till, RefundOf(receipt=f"S001-1-{real_receipt.receipt_no}"), "training_mode", "real")

            state = await till.request(Scan(code=MILK, qty=2))
            assert isinstance(state, SaleState) and state.training and state.status == "open"
            await refused(store, till, Training(on=False), "sale_open", "before switching training mode")
            for tender in (CardTender(), GiftCardTender(card="GC-1"), InvoiceTender(customer="C-1")):
                await refused(store, till, tender, "training_tender", "only cash")
            for move in (StockMove(code=MILK, qty=5, reason="receipt"), StockCount(code=MILK, counted=3)):
                await refused(store, till, move, "training_stock", "not moved or counted in training")
            trained = await till.request(CashTender(amount=5000))
            assert isinstance(trained, Receipt)
            assert trained.text.count(TRAINING) == 2, trained.text  # at the head and at the foot
            assert "NOT A RECEIPT" in trained.text
            ready = await until(till, lambda s: s.status == "ready")
            assert ready.training  # a mode of the lane: it stays on from sale to sale
            await till.request(Scan(code=MILK))
            assert isinstance(await till.request(Park()), SaleState)  # a training sale, parked as P1

            off = await till.request(Training(on=False))  # leaving training needs nobody
            assert isinstance(off, SaleState) and not off.training
            await refused(store, till, Training(on=False), "training_already", "not in training mode")
            await refused(store, till, Resume(id="P1"), "training_mismatch", "in training mode")
            await refused(
                store, till, RefundOf(receipt=f"S001-1-{trained.receipt_no}"), "training_receipt", "training sale"
            )
        await drained(store)

    assert levels(store) == stock_before  # the training sale moved no stock
    records = journal(store)
    assert [(r.kind, r.training, r.event.code if r.event else "") for r in records] == [
        ("sale", False, ""),
        ("event", False, "training_on"),
        ("sale", True, ""),
        ("event", True, "park"),
        ("event", False, "training_off"),
    ]
    on_event = records[1].event
    assert on_event is not None and on_event.approver == "2"
    assert records[4].event is not None and records[4].event.approver == ""
    (summary,) = await central.db.read(sales.summaries)
    assert (summary.sales, summary.total, summary.training) == (1, real_receipt.total, 1)
    capsys.readouterr()
    assert commands.central_sales(central.db.path, None) == 0
    assert (
        "store S001: 1 sales, 0 cancelled, total SEK 69.95 (1 training sales, not counted)" in capsys.readouterr().out
    )
    assert commands.central_sales(central.db.path, "S001") == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if line.split()[5] == "sale"]
    assert [line.endswith("TRAINING") for line in listed] == [False, True]
