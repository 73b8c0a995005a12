"""Refunds of a receipt: a real store node, the ZVT simulator over real TCP (and a real central for gift cards
and invoices), tills over real websockets. What goes back is checked against the original receipt, by line
and by tender, across partial refunds and lanes, and against what the terminal and central really moved."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import trio

from central.app import CentralNode
from central.registers import customers, giftcards
from protocol.frames import (
    CardTender,
    CashTender,
    Error,
    GiftCardTender,
    InvoiceTender,
    Login,
    Receipt,
    RefundOf,
    ReturnItem,
    SaleState,
    Scan,
)
from storenode.journal import chain
from tests.kit.journal import journal
from tests.kit.nodes import start_store
from tests.kit.payments import BUTTER, COFFEE, MILK, balance_of, pay_by_card, selling, sim_terminal
from tests.kit.waits import next_receipt, online, until
from till.client import TillClient, connect


async def refused(till: TillClient, command: object, code: str) -> None:
    """Refused with `code`, and the lane as it was (same lines, same money)."""
    before = basket(till)
    answer = await till.request(command)  # type: ignore[arg-type]
    assert isinstance(answer, Error) and answer.code == code, answer
    assert basket(till) == before


def basket(till: TillClient) -> tuple[object, ...]:
    s = till.state
    assert s is not None
    return (s.status, s.sale_id, s.lines, s.tenders, s.due, s.refund_of)


async def card(till: TillClient, command: CardTender | None = None) -> None:
    """A card payment (or refund) to its end, and the receipt when it closed the sale."""
    seen = len(till.receipts)
    if (await pay_by_card(till, command)).status == "ready":
        await next_receipt(till, seen)


async def test_partial_refunds_go_back_to_card_and_cash_never_beyond_the_receipt(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    sim = sim_terminal()
    store = await start_store(tmp_path, nursery, sim=sim)
    with trio.fail_after(25):
        async with connect(store.url, lane=1, till="T1") as till:
            await till.request(Login(operator="1", pin="1234"))
            await till.request(Scan(code=MILK, qty=2))  # 2 x 15.90
            await till.request(Scan(code=COFFEE))  # 69.95: 101.75 in all
            await card(till, CardTender(amount=5000))
            sold = await till.request(CashTender(amount=5200))  # 51.75 rounds to 52 in cash
            assert isinstance(sold, Receipt) and sold.change == 0
            receipt = f"S001-1-{sold.receipt_no}"
            await until(till, lambda s: s.status == "ready")

            # First refund: one milk, to the card (the default: all that may go back there).
            for bad, code in (
                ("S002-1-1", "central_unreachable"),  # another store's receipt needs central (issue 14)
                ("receipt 7", "bad_receipt"),
                ("S001-1-99", "unknown_receipt"),
            ):
                await refused(till, RefundOf(receipt=bad), code)
            state = await till.request(RefundOf(receipt=receipt))
            assert isinstance(state, SaleState) and state.refund_of == receipt and state.status == "open"
            await refused(till, Scan(code=MILK), "refund_sale")
            await refused(till, ReturnItem(code=BUTTER), "not_on_receipt")
            await refused(till, ReturnItem(code=MILK, qty=3), "over_return")
            state = await till.request(ReturnItem(code=MILK))
            assert isinstance(state, SaleState) and state.due == -1590 and state.lines[0].unit_price == 1590
            await card(till)
            assert till.receipts[-1].total == -1590

            # Second refund: the rest. The card has 34.10 left to take back, the rest is cash.
            await till.request(RefundOf(receipt=receipt))
            await refused(till, ReturnItem(code=MILK, qty=2), "over_return")  # one milk went back already
            await till.request(ReturnItem(code=MILK))
            state = await till.request(ReturnItem(code=COFFEE))
            assert isinstance(state, SaleState) and state.due == -8585
            await refused(till, CardTender(amount=5000), "over_refund")
            await card(till)  # 34.10, all the card has left
            assert till.state is not None and till.state.due == -5175
            paid_back = await till.request(CashTender(amount=0))
            assert isinstance(paid_back, Receipt) and paid_back.change == 5200  # cash-rounded like the sale
            assert f"Refund of receipt {receipt}" in paid_back.text

            # Nothing is left to return.
            await until(till, lambda s: s.status == "ready")
            await refused(till, RefundOf(receipt=receipt), "all_returned")
    assert sim.charged == 0 and [t.amount for t in sim.journal if t.kind == "refund"] == [1590, 3410]
    sale, first, second = journal(store)
    assert (first.refund_of, second.refund_of, sale.refund_of) == (receipt, receipt, "")
    assert [(x.origin, x.qty, x.amount) for x in first.lines] == [(1, -1, -1590)]
    assert [(x.origin, x.qty) for x in second.lines] == [(1, -1), (2, -1)]
    assert [(t.kind, t.amount) for t in second.tenders] == [("card", -3410), ("cash", 0)] and second.change == 5200
    conn = sqlite3.connect(store.config.db_path)
    try:
        assert chain.verify(conn, "S001", {store.signer.key_id: store.signer.public})[1] == []
        assert [r.receipt_no for r in chain.refunds_of(conn, receipt)] == [first.receipt_no, second.receipt_no]
    finally:
        conn.close()


async def test_a_card_receipt_goes_back_only_to_a_card_once_even_across_lanes(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    sim = sim_terminal()
    store = await start_store(tmp_path, nursery, sim=sim)
    with trio.fail_after(25):
        async with connect(store.url, lane=1, till="T1") as till, connect(store.url, lane=2, till="T2") as other:
            await till.request(Login(operator="1", pin="1234"))
            await other.request(Login(operator="2", pin="4321"))
            await till.request(Scan(code=COFFEE))
            await card(till)
            receipt = f"S001-1-{till.receipts[-1].receipt_no}"
            await until(till, lambda s: s.status == "ready")

            await till.request(RefundOf(receipt=receipt))
            await till.request(ReturnItem(code=COFFEE))
            await refused(till, CashTender(amount=0), "over_refund")  # paid by card: not in cash
            await refused(till, GiftCardTender(card="GC-1"), "not_paid_by")
            await refused(till, InvoiceTender(customer="C-77"), "not_paid_by")
            await refused(other, RefundOf(receipt=receipt), "all_returned")  # lane 1's open refund holds it

            # The terminal books the refund and the answer is lost: settled from its last transaction, once.
            sim.fail_next("drop_after_approval")
            await till.request(CardTender())
            while not till.receipts or till.receipts[-1].total != -6995:
                await till.pushed.wait()
            await refused(other, RefundOf(receipt=receipt), "all_returned")
    refunds = [t for t in sim.journal if t.kind == "refund"]
    assert [t.amount for t in refunds] == [6995] and sim.charged == 0
    refund = journal(store)[-1]
    assert refund.refund_of == receipt and [(t.kind, t.amount) for t in refund.tenders] == [("card", -6995)]
    assert refund.payments[-1].outcome == "approved" and refund.payments[-1].terminal_txn == refunds[0].trace


async def test_gift_card_and_invoice_receipt_is_credited_back_to_them(
    tmp_path: Path, nursery: trio.Nursery, central: CentralNode
) -> None:
    await central.db.write(lambda c: giftcards.issue(c, "GC-3", "giftcard", 5000, "SEK", at=0))
    await central.db.write(lambda c: giftcards.issue(c, "GC-9", "giftcard", 100, "SEK", at=0))
    await central.db.write(lambda c: customers.register(c, "C-77", "Acme AB"))
    store = await start_store(tmp_path, nursery, central)
    with trio.fail_after(25):
        await online(store)
        async with connect(store.url, lane=1, till="T1") as till:
            await selling(till, COFFEE)
            await till.request(GiftCardTender(card="GC-3"))  # all 50.00 of it
            sold = await till.request(InvoiceTender(customer="C-77"))  # the other 19.95
            assert isinstance(sold, Receipt)
            assert await balance_of(central, "GC-3") == 0
            await until(till, lambda s: s.status == "ready")

            await till.request(RefundOf(receipt=f"S001-1-{sold.receipt_no}"))
            await till.request(ReturnItem(code=COFFEE))
            await refused(till, GiftCardTender(card="GC-9"), "not_paid_by")  # not the receipt's card
            await refused(till, GiftCardTender(card="GC-3", amount=6000), "over_refund")
            await refused(till, InvoiceTender(customer="C-1"), "not_paid_by")
            state = await till.request(GiftCardTender(card="GC-3"))
            assert isinstance(state, SaleState) and state.due == -1995
            refund = await till.request(InvoiceTender(customer="C-77"))
            assert isinstance(refund, Receipt) and refund.total == -6995
    assert await balance_of(central, "GC-3") == 5000 and await balance_of(central, "GC-9") == 100
    sale, back = journal(store)
    assert [(t.kind, t.amount, t.reference) for t in back.tenders] == [
        ("giftcard", -5000, "GC-3"),
        ("invoice", -1995, "C-77"),
    ]
    assert back.refund_of == f"S001-1-{sale.receipt_no}"
