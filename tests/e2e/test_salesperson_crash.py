"""A real store process killed (-9) the instant a till has heard its salesperson was accepted: the number is
still on the sale after the restart (entered on a lane with no sale, it opened the sale it is for; changed
during a sale, the change holds), and the sale is journaled with it once."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from devtools.processes import STORE_TOML, Processes, storepos
from protocol.frames import CashTender, Login, Receipt, SaleState, Scan, SetSalesperson
from tests.kit.journal import journal_at
from tests.kit.payments import MILK
from till.client import connect

pytestmark = pytest.mark.e2e  # real storepos processes: left out of the fast loop


async def test_a_salesperson_accepted_just_before_kill_9_is_still_on_the_sale(tmp_path: Path, procs: Processes) -> None:
    config = tmp_path / "store.toml"
    config.write_text(STORE_TOML.format(central="", ca="") + '\n[sales]\nsalesperson = "required"\n')
    db = tmp_path / "store-data" / "store.db"
    store, url = await procs.start("store", "store", "run", "--config", str(config))
    with trio.fail_after(60):
        async with connect(url, lane=1, till="T1") as till:
            await till.request(Login(operator="1", pin="1234"))
            answer = await till.request(SetSalesperson(salesperson="2"))  # no sale yet: it opens one
            assert isinstance(answer, SaleState) and answer.salesperson == "2" and answer.status == "open"
            procs.kill9(store)
        await store.wait()

        store, url = await procs.start("store2", "store", "run", "--config", str(config))
        async with connect(url, lane=1, till="T1") as till:
            assert till.state is not None and till.state.status == "open" and till.state.salesperson == "2"
            assert till.state.sale_id == answer.sale_id
            await till.request(Login(operator="1", pin="1234"))
            await till.request(Scan(code=MILK))
            changed = await till.request(SetSalesperson(salesperson="1"))  # during the sale
            assert isinstance(changed, SaleState) and changed.salesperson == "1"
            procs.kill9(store)
        await store.wait()

        store, url = await procs.start("store3", "store", "run", "--config", str(config))
        async with connect(url, lane=1, till="T1") as till:
            assert till.state is not None and till.state.salesperson == "1"
            assert [x.code for x in till.state.lines] == [MILK] and till.state.sale_id == answer.sale_id
            await till.request(Login(operator="1", pin="1234"))
            receipt = await till.request(CashTender(amount=2000))
            assert isinstance(receipt, Receipt) and "Salesperson 1" in receipt.text
    (record,) = journal_at(db)
    assert (record.sale_id, record.salesperson) == (answer.sale_id, "1")
    verify = await storepos("store", "verify-journal", "--config", str(config))
    assert verify.returncode == 0, verify.stdout.decode()
