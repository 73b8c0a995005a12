"""Returns by scanning the receipt across the chain (issue 14, receipts): two store nodes and a real central,
tills over real websockets. Another store's receipt is fetched from central and refunded against its copy;
each line goes back once chain-wide, whichever store asks first; a store that cannot reach central refuses
another store's receipt clearly; copies through the gateway."""

from __future__ import annotations

from pathlib import Path

import trio

from central.app import CentralNode
from central.registers import alarms, returns
from protocol.frames import (
    CancelSale,
    CashTender,
    CopyReceipt,
    Error,
    Login,
    Receipt,
    ReceiptList,
    ReceiptQuery,
    ReturnItem,
    SaleState,
    Scan,
)
from tests.kit.journal import journal
from tests.kit.nodes import start_store
from tests.kit.payments import BUTTER, MILK, selling
from tests.kit.waits import drained, online, until
from till.client import TillClient, connect

BOUND = 40


async def sold(till: TillClient, *codes: str, store: str = "S001") -> str:
    """A cash sale of `codes` at the till of `store`; its receipt id."""
    await selling(till, *codes)
    receipt = await till.request(CashTender(amount=100_000))
    assert isinstance(receipt, Receipt), receipt
    await until(till, lambda s: s.status == "ready")
    rid = f"{store}-{receipt.lane}-{receipt.receipt_no}"
    assert f"Receipt {rid}" in receipt.text
    return rid


async def refused(till: TillClient, command: object, code: str) -> Error:
    answer = await till.request(command)  # type: ignore[arg-type]
    assert isinstance(answer, Error) and answer.code == code, answer
    return answer


async def test_another_stores_receipt_is_returned_once_chain_wide(
    tmp_path: Path, nursery: trio.Nursery, central: CentralNode
) -> None:
    home = await start_store(tmp_path / "a", nursery, central, store="S001")
    away = await start_store(tmp_path / "b", nursery, central, store="S002")
    with trio.fail_after(BOUND):
        await online(home)
        await online(away)
        async with (
            connect(home.url, lane=1, till="A1") as a1,
            connect(home.url, lane=2, till="A2") as a2,
            connect(away.url, lane=1, till="B1") as b1,
        ):
            rid = await sold(a1, MILK, BUTTER)
            assert rid == "S001-1-1"
            await drained(home)  # the sale is at central

            # Lane 2 of the home store opens a refund of its own receipt (central has nothing returned yet).
            await a2.request(Login(operator="1", pin="1234"))
            opened = await a2.request(Scan(code=rid))
            assert isinstance(opened, SaleState) and opened.refund_of == rid

            # At the other store, the receipt's code scanned opens a refund against central's copy.
            await b1.request(Login(operator="1", pin="1234"))
            state = await b1.request(Scan(code=rid))
            assert isinstance(state, SaleState) and state.refund_of == rid, state
            state = await b1.request(ReturnItem(code=MILK))
            assert isinstance(state, SaleState) and state.lines[-1].amount == -1590
            back = await b1.request(CashTender(amount=0))
            assert isinstance(back, Receipt) and back.total == -1590

            # The home store's open refund may not take the milk any more: central holds it for S002.
            answer = await refused(a2, ReturnItem(code=MILK), "already_returned")
            assert "line 1" in answer.message
            state = await a2.request(ReturnItem(code=BUTTER))  # the butter is still the home store's to return
            assert isinstance(state, SaleState) and state.lines[-1].amount < 0
            assert isinstance(await a2.request(CashTender(amount=0)), Receipt)

            # Everything is returned now, whichever store asks.
            await until(b1, lambda s: s.status == "ready")
            await refused(b1, Scan(code=rid), "all_returned")
            await drained(home, away)

    (refund,) = [r for r in journal(away) if r.refund_of]
    assert refund.refund_of == rid and [line.origin for line in refund.lines] == [1]
    taken = await central.db.read(lambda c: returns.taken(c, rid))
    assert taken == {1: 1, 2: 1}
    assert await central.db.read(lambda c: alarms.alarms(c)) == []


async def test_a_cancelled_refund_frees_its_lines_at_central(
    tmp_path: Path, nursery: trio.Nursery, central: CentralNode
) -> None:
    home = await start_store(tmp_path / "a", nursery, central, store="S001")
    away = await start_store(tmp_path / "b", nursery, central, store="S002")
    with trio.fail_after(BOUND):
        await online(home)
        await online(away)
        async with connect(home.url, lane=1, till="A1") as a1, connect(away.url, lane=1, till="B1") as b1:
            rid = await sold(a1, MILK)
            await drained(home)
            await b1.request(Login(operator="1", pin="1234"))
            await b1.request(Scan(code=rid))
            await b1.request(ReturnItem(code=MILK))
            assert await central.db.read(lambda c: returns.taken(c, rid)) == {1: 1}
            cancelled = await b1.request(CancelSale(approver="2", approver_pin="4321"))
            assert not isinstance(cancelled, Error), cancelled
            await until(b1, lambda s: s.status == "ready")
            assert await central.db.read(lambda c: returns.taken(c, rid)) == {}
            # and the home store may refund it now
            await a1.request(Scan(code=rid))
            state = await a1.request(ReturnItem(code=MILK))
            assert isinstance(state, SaleState) and state.lines[-1].amount == -1590


async def test_another_stores_receipt_is_refused_when_central_is_unreachable(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    store = await start_store(tmp_path, nursery, "", store="S002")  # no central at all
    with trio.fail_after(BOUND):
        async with connect(store.url, lane=1, till="B1") as till:
            await till.request(Login(operator="1", pin="1234"))
            answer = await refused(till, Scan(code="S001-1-1"), "central_unreachable")
            assert "unreachable" in answer.message
            state = till.state
            assert state is not None and state.refund_of == "" and state.lines == []
            # its own receipts still go back offline, as before
            rid = await sold(till, MILK, store="S002")
            opened = await till.request(Scan(code=rid))
            assert isinstance(opened, SaleState) and opened.refund_of == rid


async def test_lookup_and_copies_through_the_gateway(tmp_path: Path, nursery: trio.Nursery) -> None:
    store = await start_store(tmp_path, nursery)
    with trio.fail_after(BOUND):
        async with connect(store.url, lane=1, till="T1") as till:
            rid = await sold(till, MILK)
            found = await till.request(ReceiptQuery(amount=1590))
            assert isinstance(found, ReceiptList) and [r.receipt for r in found.receipts] == [rid]
            copy = await till.request(CopyReceipt(receipt=rid))
            assert isinstance(copy, ReceiptList) and "COPY / KOPIA" in copy.text
            await refused(till, CopyReceipt(receipt=rid), "copy_limit")
    copies = [r for r in journal(store) if r.event is not None and r.event.code == "copy"]
    assert [c.event.ref for c in copies if c.event is not None] == [rid]
