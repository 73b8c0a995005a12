"""A whole sale over a real websocket into a real store node, journal and central."""

from __future__ import annotations

import trio

from central.app import CentralNode
from central.registers import sales
from protocol.frames import CashTender, Error, Login, Receipt, SaleState, Scan, Total, VoidLine
from storenode.app import StoreNode
from tests.kit.waits import drained
from till.client import connect

MILK, BUTTER, COFFEE = "7310000000010", "7310000000027", "7310000000034"


async def test_sale_end_to_end(store: StoreNode, central: CentralNode) -> None:
    with trio.fail_after(20):
        async with connect(store.url, lane=1, till="T1") as till:
            assert isinstance(await till.request(Login(operator="1", pin="1234")), SaleState)
            state = await till.request(Scan(code=MILK, qty=2))
            assert isinstance(state, SaleState) and state.total == 2 * 1590
            state = await till.request(Scan(code=COFFEE))
            state = await till.request(Scan(code=BUTTER))
            state = await till.request(VoidLine(line=3))
            assert isinstance(state, SaleState)
            assert state.total == 2 * 1590 + 6995 and state.lines[2].voided
            state = await till.request(Total())
            assert isinstance(state, SaleState) and state.status == "tender"
            assert state.cash_due == 10200  # 101.75 rounds to 102 kronor
            short = await till.request(CashTender(amount=10000))
            assert isinstance(short, Error) and short.code == "tender_short"
            receipt = await till.request(CashTender(amount=20000))
            assert isinstance(receipt, Receipt), receipt
            assert (receipt.receipt_no, receipt.change) == (1, 9800)
            assert "TOTAL" in receipt.text and "Change" in receipt.text
        await drained(store)  # the sale travels in the outbox; central acknowledges it once stored
        got = await central.db.read(sales.summaries)
        assert got[0].store == "S001" and got[0].sales == 1 and got[0].total == 2 * 1590 + 6995
