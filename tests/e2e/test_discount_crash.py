"""A real store process killed (-9) the instant a till has heard of a discount: the discount comes back with
the basket (it is part of the lane's saved state), and the sale closed with it is journaled once, with its
discounts once, however often the store is killed around it."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from devtools.processes import STORE_TOML, Processes, storepos
from protocol.frames import CashTender, GiveDiscount, Login, OverridePrice, Receipt, SaleState, Scan
from tests.kit.journal import journal_at
from tests.kit.payments import BUTTER, COFFEE, MILK
from till.client import connect

pytestmark = pytest.mark.e2e  # real storepos processes: left out of the fast loop


async def test_a_discount_survives_kill_9_and_is_journaled_exactly_once(tmp_path: Path, procs: Processes) -> None:
    config = tmp_path / "store.toml"
    config.write_text(STORE_TOML.format(central="", ca=""))  # no central: reasons from the catalogue file
    db = tmp_path / "store-data" / "store.db"
    store, url = await procs.start("store", "store", "run", "--config", str(config))
    with trio.fail_after(60):
        async with connect(url, lane=1, till="T1") as till:
            await till.request(Login(operator="1", pin="1234"))
            await till.request(Scan(code=MILK, qty=2))
            await till.request(Scan(code=COFFEE))
            await till.request(Scan(code=BUTTER))
            answer = await till.request(GiveDiscount(line=2, percent=1000, reason="DAMAGED"))
            assert isinstance(answer, SaleState) and len(answer.discounts) == 1, answer
            procs.kill9(store)  # the till has the answer; the store dies before anything else happens
        await store.wait()

        store, url = await procs.start("store2", "store", "run", "--config", str(config))
        async with connect(url, lane=1, till="T1") as till:
            assert till.state is not None and till.state.status == "open"
            assert till.state.discounts == answer.discounts and till.state.total == answer.total
            await till.request(Login(operator="1", pin="1234"))  # a restart logs everyone out; the sale waits
            approved = await till.request(
                OverridePrice(line=3, price=4990, reason="PRICEMATCH", approver="2", approver_pin="4321")
            )
            assert isinstance(approved, SaleState) and len(approved.discounts) == 2, approved
            procs.kill9(store)
        await store.wait()

        store, url = await procs.start("store3", "store", "run", "--config", str(config))
        async with connect(url, lane=1, till="T1") as till:
            assert till.state is not None and till.state.discounts == approved.discounts
            await till.request(Login(operator="1", pin="1234"))
            receipt = await till.request(CashTender(amount=20000))
            assert isinstance(receipt, Receipt) and receipt.total == approved.total
            assert "Discount 10% (DAMAGED)" in receipt.text and "Price 49.90 (PRICEMATCH)" in receipt.text
            procs.kill9(store)  # just after the close: the sale must not come back, nor twice
        await store.wait()

        store, url = await procs.start("store4", "store", "run", "--config", str(config))
        async with connect(url, lane=1, till="T1") as till:
            assert till.state is not None and till.state.lines == [] and till.state.discounts == []
    (record,) = journal_at(db)
    assert [(d.line, d.kind, d.value, d.amount, d.reason, d.approver) for d in record.discounts] == [
        (2, "percent", 1000, 700, "DAMAGED", ""),
        (3, "price", 4990, 500, "PRICEMATCH", "2"),
    ]
    assert [(a.action, a.approver) for a in record.approvals] == [("price", "2")]
    assert record.total == 2 * 1590 + 6995 - 700 + 4990
    verify = await storepos("store", "verify-journal", "--config", str(config))
    assert verify.returncode == 0, verify.stdout.decode()
