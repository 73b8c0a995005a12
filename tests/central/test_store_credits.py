"""Stores' gift card credits end to end: a real store node and central over a real link, a till over a
real websocket. A refund's credit names its receipt and central checks it; what central declines the till
shows, and the refund stays as it was, to go on once the operator allows it. A credit forged on the link
(a million, or against another store's receipt) changes nothing."""

from __future__ import annotations

import socket
from pathlib import Path

import trio

from central.app import CentralNode
from central.registers import giftcards
from protocol.frames import (
    CashTender,
    Error,
    GiftCardMove,
    GiftCardMoveQuestion,
    GiftCardTender,
    Receipt,
    RefundOf,
    ReturnItem,
    SaleState,
)
from storenode.config import PaymentsConfig
from tests.kit.journal import journal
from tests.kit.nodes import central_node, start_store
from tests.kit.payments import COFFEE, balance_of, selling
from tests.kit.waits import drained, online, until
from till.client import connect


async def test_a_refund_credit_over_the_limit_is_shown_and_goes_on_once_allowed(
    tmp_path: Path, nursery: trio.Nursery, central: CentralNode
) -> None:
    await central.db.write(lambda c: giftcards.issue(c, "GC-3", "giftcard", 5000, "SEK", at=0))
    store = await start_store(tmp_path, nursery, central)
    with trio.fail_after(30):
        await online(store)
        async with connect(store.url, lane=1, till="T1") as till:
            await selling(till, COFFEE)
            await till.request(GiftCardTender(card="GC-3"))  # 50.00 of the 69.95
            sold = await till.request(CashTender(amount=2000))
            assert isinstance(sold, Receipt) and await balance_of(central, "GC-3") == 0
            await drained(store)  # the receipt is at central: the credit is checked against it
            rid = f"S001-1-{sold.receipt_no}"
            await central.db.write(lambda c: giftcards.set_limits(c, "S001", 3000, None))

            await until(till, lambda s: s.status == "ready")
            await till.request(RefundOf(receipt=rid))
            await till.request(ReturnItem(code=COFFEE))
            declined = await till.request(GiftCardTender(card="GC-3"))
            assert isinstance(declined, Error) and declined.code == "giftcard_declined", declined
            assert "over store S001's limit of 30.00 per credit" in declined.message
            state = till.state
            assert state is not None and (state.status, state.due, state.tenders) == ("open", -6995, [])
            assert await balance_of(central, "GC-3") == 0

            part = await till.request(GiftCardTender(card="GC-3", amount=3000))
            assert isinstance(part, SaleState) and part.due == -3995
            await central.db.write(lambda c: giftcards.set_limits(c, "S001", 100_000, None))
            rest = await till.request(GiftCardTender(card="GC-3"))
            assert isinstance(rest, SaleState) and rest.due == -1995
            back = await till.request(CashTender(amount=0))
            assert isinstance(back, Receipt)
    assert await balance_of(central, "GC-3") == 5000
    credits = await central.db.read(
        lambda c: c.execute(
            "SELECT amount, refund_of FROM giftcard_moves WHERE kind = 'credit' ORDER BY amount"
        ).fetchall()
    )
    assert credits == [(2000, rid), (3000, rid)]
    _, refund = journal(store)
    assert [p.outcome for p in refund.payments] == ["declined", "approved", "approved"]


async def test_credits_forged_on_a_stores_link_change_nothing(
    tmp_path: Path, nursery: trio.Nursery, central: CentralNode
) -> None:
    await central.db.write(lambda c: giftcards.issue(c, "GC-1", "giftcard", 100, "SEK", at=0))
    store = await start_store(tmp_path, nursery, central)

    def forged(move_id: str, amount: int, refund_of: str) -> GiftCardMoveQuestion:
        move = GiftCardMove(
            move=move_id, kind="credit", card="GC-1", amount=amount, currency="SEK", store="S001",
            sale_id="forged", at=0, refund_of=refund_of,
        )  # fmt: skip
        return GiftCardMoveQuestion(move=move)

    with trio.fail_after(20):
        await online(store)
        million = (await store.link.ask(forged("f1", 100_000_000, "S001-1-1"))).card
        assert not million.ok and "limit of 1000.00 per credit" in million.message
        bare = (await store.link.ask(forged("f2", 100_000_000, ""))).card
        assert not bare.ok and "names the receipt" in bare.message
        theirs = (await store.link.ask(forged("f3", 500, "S002-1-1"))).card
        assert not theirs.ok and "not one of store S001's" in theirs.message
    assert await balance_of(central, "GC-1") == 100


async def test_an_offline_refund_credit_over_the_limit_is_applied_and_flagged_not_refused(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    with socket.socket() as probe:  # central will come up later on this port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    central = central_node(tmp_path / "central" / "central.db", port=port)
    policy = PaymentsConfig(giftcard_offline="allow", giftcard_offline_limit=5000)
    store = await start_store(tmp_path, nursery, central, url=f"wss://127.0.0.1:{port}", payments=policy)
    with trio.fail_after(30):
        async with connect(store.url, lane=1, till="T1") as till:
            await selling(till, COFFEE)
            await till.request(GiftCardTender(card="GC-3", amount=4000))  # taken offline, within the policy
            sold = await till.request(CashTender(amount=3000))
            assert isinstance(sold, Receipt)
            await until(till, lambda s: s.status == "ready")
            await till.request(RefundOf(receipt=f"S001-1-{sold.receipt_no}"))
            await till.request(ReturnItem(code=COFFEE))
            state = await till.request(GiftCardTender(card="GC-3"))  # 40.00 back, queued for central
            assert isinstance(state, SaleState) and state.due == -2995
            assert isinstance(await till.request(CashTender(amount=0)), Receipt)
        await nursery.start(central.run)
        await central.db.write(lambda c: giftcards.issue(c, "GC-3", "giftcard", 5000, "SEK", at=0))
        await central.db.write(lambda c: giftcards.set_limits(c, "S001", 2000, None))
        await drained(store)  # the stream is applied whole: nothing refused, nothing left in the outbox
        (flag,) = await central.db.read(giftcards.flagged)
    assert (flag.card, flag.store, flag.amount, flag.applied) == ("GC-3", "S001", 4000, True)
    assert flag.refund_of == f"S001-1-{sold.receipt_no}" and "limit of 20.00 per credit" in flag.reason
    assert await balance_of(central, "GC-3") == 5000  # 40.00 taken offline, 40.00 given back
    _, refund = journal(store)
    assert refund.payments[0].message == "offline: credited when central is back"
