"""Gift cards, invoices and foreign cash at a store node with a real central over a real link."""

from __future__ import annotations

import random
import socket
from pathlib import Path

import trio

from central.app import CentralNode
from central.registers import customers, giftcards, rates
from devtools.chaos.proxy import ChaosProxy, Faults
from protocol.frames import (
    CancelSale,
    CashTender,
    Error,
    ExchangeRate,
    GiftCardInfo,
    GiftCardQuery,
    GiftCardTender,
    InvoiceTender,
    Login,
    Receipt,
    SaleState,
    Scan,
)
from protocol.money import parse_rate
from storenode.app import StoreNode
from storenode.config import PaymentsConfig
from storenode.lanes.saved import load_state
from tests.kit import certificates
from tests.kit.journal import journal
from tests.kit.nodes import T0, central_node, start_store
from tests.kit.payments import COFFEE, MILK, balance_of, selling
from tests.kit.waits import drained, online, until
from till.client import connect


async def test_two_stores_cannot_both_spend_the_last_of_a_card(
    tmp_path: Path, nursery: trio.Nursery, central: CentralNode
) -> None:
    await central.db.write(lambda c: giftcards.issue(c, "GC-1", "giftcard", 6995, "SEK", at=0))
    a = await start_store(tmp_path / "a", nursery, central, store="S001")
    b = await start_store(tmp_path / "b", nursery, central, store="S002")
    answers: dict[str, object] = {}
    with trio.fail_after(20):
        await online(a)
        await online(b)

        async def spend(node: StoreNode) -> None:
            async with connect(node.url, lane=1, till="T1") as till:
                await selling(till, COFFEE)  # 69.95: both want all the card holds
                answers[node.config.store] = await till.request(GiftCardTender(card="GC-1"))

        async with trio.open_nursery() as both:
            both.start_soon(spend, a)
            both.start_soon(spend, b)
    kinds = sorted(type(x).__name__ for x in answers.values())
    assert kinds == ["Error", "Receipt"], answers
    refused = next(x for x in answers.values() if isinstance(x, Error))
    assert refused.code == "giftcard_declined" and "empty" in refused.message
    assert await balance_of(central, "GC-1") == 0  # spent once, not twice


async def test_gift_card_split_with_cash_and_a_cancel_gives_the_card_its_money_back(
    tmp_path: Path, nursery: trio.Nursery, central: CentralNode
) -> None:
    await central.db.write(lambda c: giftcards.issue(c, "GC-2", "giftcard", 5000, "SEK", at=0))
    store = await start_store(tmp_path, nursery, central)
    with trio.fail_after(20):
        await online(store)
        async with connect(store.url, lane=1, till="T1") as till:
            info = await till.request(GiftCardQuery(card="GC-2"))
            assert isinstance(info, GiftCardInfo) and info.balance == 5000
            await selling(till, COFFEE)
            state = await till.request(GiftCardTender(card="GC-2"))
            assert isinstance(state, SaleState) and (state.paid, state.due) == (5000, 1995)
            assert state.tenders[0].kind == "giftcard" and "0.00 left" in state.message
            cancelled = await till.request(CancelSale(approver="2", approver_pin="4321"))
            assert isinstance(cancelled, Receipt)
            await drained(store)  # the void travels in the outbox
            assert await balance_of(central, "GC-2") == 5000
            await until(till, lambda s: s.status == "ready")
            await till.request(Scan(code=MILK))
            state = await till.request(GiftCardTender(card="GC-2", amount=1000))
            assert isinstance(state, SaleState) and state.due == 590
            receipt = await till.request(CashTender(amount=600))
            assert isinstance(receipt, Receipt) and receipt.change == 0  # 5.90 rounds to 6 kronor in cash
    cancel, sale = journal(store)
    assert cancel.kind == "cancel" and cancel.payments[0].outcome == "approved" and cancel.payments[0].card == "GC-2"
    assert [(t.kind, t.amount) for t in sale.tenders] == [("giftcard", 1000), ("cash", 600)]
    assert (sale.rounding, sale.change) == (10, 0)


async def test_offline_gift_cards_follow_the_policy_and_reconcile_with_an_overdraft(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    with socket.socket() as probe:  # central will come up later on this port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    central = central_node(tmp_path / "central.db", port=port)
    policy = PaymentsConfig(giftcard_offline="allow", giftcard_offline_limit=5000)
    store = await start_store(tmp_path, nursery, central, url=f"wss://127.0.0.1:{port}", payments=policy)
    with trio.fail_after(30):
        async with connect(store.url, lane=1, till="T1") as till:
            await selling(till, COFFEE)
            state = await till.request(GiftCardTender(card="GC-3", amount=4000))
            assert isinstance(state, SaleState) and state.due == 2995 and "offline" in state.message
            over = await till.request(GiftCardTender(card="GC-3", amount=2000))  # 4000 + 2000 > the limit
            assert isinstance(over, Error) and over.code == "giftcard_offline"
            receipt = await till.request(CashTender(amount=3000))
            assert isinstance(receipt, Receipt)
        await nursery.start(central.run)
        await central.db.write(lambda c: giftcards.issue(c, "GC-3", "giftcard", 2500, "SEK", at=0))
        await drained(store)  # the offline redemption travels in the outbox once central is up
        found = await central.db.read(giftcards.overdrafts)
    (overdraft,) = found
    assert (overdraft.card, overdraft.store, overdraft.taken, overdraft.overdraft) == ("GC-3", "S001", 4000, 1500)
    assert await balance_of(central, "GC-3") == 0


async def test_reject_policy_refuses_gift_cards_offline(tmp_path: Path, nursery: trio.Nursery) -> None:
    store = await start_store(tmp_path, nursery, "")
    with trio.fail_after(10):
        async with connect(store.url, lane=1, till="T1") as till:
            await selling(till, MILK)
            refused = await till.request(GiftCardTender(card="GC-4"))
            assert isinstance(refused, Error) and refused.code == "giftcard_offline"
            assert till.state is not None and till.state.status == "open" and till.state.paid == 0


async def test_invoice_and_foreign_cash_at_centrals_rate_even_offline(
    tmp_path: Path, nursery: trio.Nursery, central: CentralNode
) -> None:
    await central.db.write(lambda c: customers.register(c, "C-77", "Acme AB"))
    eur = ExchangeRate(base="SEK", currency="EUR", rate=parse_rate("11.45", "SEK", "EUR"), at=T0)
    await central.db.write(lambda c: rates.publish(c, eur))
    store = await start_store(tmp_path, nursery, central, payments=PaymentsConfig(foreign_cash=["EUR"]))
    with trio.fail_after(20):
        await online(store)
        async with connect(store.url, lane=1, till="T1") as till:
            await selling(till, COFFEE)
            unknown = await till.request(InvoiceTender(customer="C-1"))
            assert isinstance(unknown, Error) and unknown.code == "unknown_customer"
            invoiced = await till.request(InvoiceTender(customer="C-77"))
            assert isinstance(invoiced, Receipt) and invoiced.change == 0
            await till.request(Scan(code=COFFEE))
            dollars = await till.request(CashTender(amount=1000, currency="USD"))
            assert isinstance(dollars, Error) and dollars.code == "bad_currency"
            paid = await till.request(CashTender(amount=1000, currency="EUR"))  # 10 EUR = 114.50 -> 114 kr
            assert isinstance(paid, Receipt) and (paid.tendered, paid.change) == (11400, 4400)
            await till.request(Scan(code=MILK))
            store.link.online = False  # central unreachable, as the link says: the store keeps the last rate
            paid = await till.request(CashTender(amount=200, currency="EUR"))
            assert isinstance(paid, Receipt) and paid.tendered == 2200
    invoice, euros, offline_euros = journal(store)
    assert [(t.kind, t.amount, t.reference) for t in invoice.tenders] == [("invoice", 6995, "C-77")]
    (cash,) = euros.tenders
    assert (cash.currency, cash.amount, cash.value, cash.rate) == ("EUR", 1000, 11400, 11_450_000)
    assert offline_euros.tenders[0].value == 2200


async def test_a_store_that_dies_waiting_for_a_gift_card_answer_voids_the_move_on_restart(
    tmp_path: Path, nursery: trio.Nursery, central: CentralNode
) -> None:
    """Central redeems and its answer is lost; the store stops before hearing it (a crash: nothing runs
    on the way down). On restart the lane finds the attempt it saved before asking and voids the move
    through the outbox, so the card gets its money back and the sale stays unpaid, never paid twice."""
    await central.db.write(lambda c: giftcards.issue(c, "GC-9", "giftcard", 5000, "SEK", at=0))
    proxy = ChaosProxy(central.url, Faults(), rng=random.Random(1), chain=certificates.chain())
    await nursery.start(proxy.run)
    with trio.fail_after(30):
        async with trio.open_nursery() as first_life:
            store = await start_store(tmp_path, first_life, central, url=proxy.url)
            await online(store)
            async with connect(store.url, lane=1, till="T1") as till:
                await selling(till, COFFEE)
                proxy.faults.deaf = True  # the request reaches central; the answer never comes back
                first_life.start_soon(till.request, GiftCardTender(card="GC-9"))
                while await balance_of(central, "GC-9") == 5000:  # noqa: ASYNC110 - central's database
                    await trio.sleep(0.01)
                saved = await store.db.read(lambda c: load_state(c, 1))
                assert saved.status == "paying" and saved.pending is not None and saved.pending.card == "GC-9"
                first_life.cancel_scope.cancel()  # the store is gone mid-answer
        assert await balance_of(central, "GC-9") == 0  # central did redeem

        store = await start_store(tmp_path, nursery, central)  # restarted, central reachable again
        await drained(store)  # the void travels in the outbox
        assert await balance_of(central, "GC-9") == 5000
        async with connect(store.url, lane=1, till="T1") as till:
            assert till.state is not None and till.state.status in ("open", "tender")
            assert till.state.paid == 0 and till.state.due == 6995  # nothing counted as paid
            await till.request(Login(operator="1", pin="1234"))
            receipt = await till.request(CashTender(amount=7000))
            assert isinstance(receipt, Receipt)
    (sale,) = journal(store)
    assert [(t.kind, t.amount) for t in sale.tenders] == [("cash", 7000)]
    assert [(p.method, p.outcome) for p in sale.payments] == [("giftcard", "unknown")]
    assert await balance_of(central, "GC-9") == 5000
