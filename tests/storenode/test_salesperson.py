"""The sale's salesperson (issue 14): entered at the till where store.toml's [sales] salesperson asks for one,
checked against the store's operator register, kept on the sale, journaled, printed; refused clearly where
the store takes none, and required before total and payment where the store says so. The lane alone on the
autojump clock (a real SQLite database and journal); the same over a real websocket, with the terminal
till's own command, at the end."""

from __future__ import annotations

from pathlib import Path

import msgspec
import trio
from trio.testing import MockClock

from protocol.frames import (
    CardTender,
    CashTender,
    Error,
    Login,
    Receipt,
    RefundOf,
    ReturnItem,
    SaleState,
    Scan,
    SetSalesperson,
    Total,
)
from runtime.clock import FixedClock
from storenode.app import StoreNode
from storenode.config import SalesConfig
from tests.kit.journal import journal
from tests.kit.lanes import LaneRig, open_lane
from tests.kit.nodes import T0, make_store_config
from tests.kit.payments import COFFEE, MILK
from till.client import connect
from till.terminal import parse, show_state

BOUND = 120


async def lane(folder: Path, nursery: trio.Nursery, clock: MockClock, mode: str) -> LaneRig:
    rig = await open_lane(folder, nursery, clock, sales=SalesConfig(salesperson=mode))  # type: ignore[arg-type]
    assert isinstance(await rig.do(Login(operator="1", pin="1234")), SaleState)
    return rig


def shown(rig: LaneRig) -> tuple[object, ...]:
    s = rig.till.state
    assert s is not None
    return (s.status, s.sale_id, s.lines, s.salesperson, s.total)


async def refused(rig: LaneRig, command: object, code: str) -> Error:
    """Refused with `code`, and the lane as it was."""
    before = shown(rig)
    saved = rig.lane.state
    answer = await rig.do(command)  # type: ignore[arg-type]
    assert isinstance(answer, Error) and answer.code == code, answer
    assert shown(rig) == before and rig.lane.state == saved
    return answer


async def test_off_refuses_the_command_clearly(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    with trio.fail_after(BOUND):
        rig = await lane(tmp_path, nursery, autojump_clock, "off")
        error = await refused(rig, SetSalesperson(salesperson="2"), "salesperson_off")
        assert "salesperson = off" in error.message
        await rig.do(Scan(code=MILK))
        await refused(rig, SetSalesperson(salesperson="2"), "salesperson_off")
        assert isinstance(await rig.do(CashTender(amount=2000)), Receipt)
        (sale,) = await rig.journal()
        assert sale.salesperson == ""


async def test_optional_a_salesperson_of_the_register_goes_on_the_sale_receipt_and_journal(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    with trio.fail_after(BOUND):
        rig = await lane(tmp_path, nursery, autojump_clock, "optional")
        await refused(rig, SetSalesperson(salesperson="99"), "unknown_salesperson")
        await refused(rig, SetSalesperson(salesperson="2\x1b[2J"), "bad_salesperson")
        state = await rig.do(SetSalesperson(salesperson=" 2 "))
        assert isinstance(state, SaleState)
        assert (state.status, state.salesperson) == ("open", "2") and state.sale_id  # it opened the sale
        assert state.message == "salesperson 2 (Sam Manager)"
        assert "| salesperson 2 |" in show_state(state)
        state = await rig.do(Scan(code=MILK))
        assert isinstance(state, SaleState) and state.salesperson == "2" and state.sale_id == rig.till.state.sale_id  # type: ignore[union-attr]
        await refused(rig, SetSalesperson(salesperson="99"), "unknown_salesperson")  # the sale keeps 2
        state = await rig.do(SetSalesperson(salesperson="1"))  # changed during the sale: the operator herself
        assert isinstance(state, SaleState) and state.salesperson == "1"
        assert isinstance(await rig.do(Total()), SaleState)
        receipt = await rig.do(CashTender(amount=2000))
        assert isinstance(receipt, Receipt) and "Salesperson 1" in receipt.text
        assert rig.till.state is not None and rig.till.state.salesperson == ""  # the next sale needs its own
        await rig.do(Scan(code=COFFEE))
        assert isinstance(await rig.do(CashTender(amount=7000)), Receipt)  # optional: none is fine
        first, second = await rig.journal()
        assert (first.salesperson, second.salesperson) == ("1", "")


async def test_only_an_operator_working_at_this_store_may_be_the_salesperson(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    with trio.fail_after(BOUND):
        rig = await lane(tmp_path, nursery, autojump_clock, "optional")

        def register(c: object) -> None:  # central's register replicated: 1 here, 7 at another store only
            pin = c.execute("SELECT pin_hash FROM file_operators WHERE number = '1'").fetchone()[0]  # type: ignore[attr-defined]
            c.execute(  # type: ignore[attr-defined]
                "INSERT INTO operators (number, name, role, stores, pin_hash) VALUES"
                " ('1', 'Alex', 'cashier', 'S001', ?), ('7', 'Kim', 'cashier', 'S002', ?),"
                " ('8', 'Lee', 'cashier', '*', ?)",
                (pin, pin, pin),
            )

        await rig.db.write(register)
        await refused(rig, SetSalesperson(salesperson="7"), "unknown_salesperson")
        await refused(rig, SetSalesperson(salesperson="2"), "unknown_salesperson")  # only in the file's list
        state = await rig.do(SetSalesperson(salesperson="8"))
        assert isinstance(state, SaleState) and state.salesperson == "8"


async def test_required_no_total_or_payment_without_one(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    with trio.fail_after(BOUND):
        rig = await lane(tmp_path, nursery, autojump_clock, "required")
        await rig.do(Scan(code=MILK))  # scanning first is fine: the number may come before total
        for command in (Total(), CashTender(amount=2000), CardTender()):
            error = await refused(rig, command, "salesperson_needed")
            assert "salesperson <number>" in error.message
        assert rig.terminal.calls == []
        await rig.do(SetSalesperson(salesperson="2"))
        await refused(rig, SetSalesperson(salesperson=""), "salesperson_needed")  # cannot be cleared
        assert isinstance(await rig.do(Total()), SaleState)
        sold = await rig.do(CashTender(amount=2000))
        assert isinstance(sold, Receipt)

        # A refund needs one too: the commission goes back with it.
        await rig.do(RefundOf(receipt=f"S001-1-{sold.receipt_no}"))
        await rig.do(ReturnItem(code=MILK))
        await refused(rig, CashTender(amount=0), "salesperson_needed")
        await rig.do(SetSalesperson(salesperson="2"))
        assert rig.till.state is not None and rig.till.state.refund_of
        assert isinstance(await rig.do(CashTender(amount=0)), Receipt)
        sale, refund = await rig.journal()
        assert (sale.salesperson, refund.salesperson, refund.refund_of) == ("2", "2", f"S001-1-{sold.receipt_no}")


async def test_at_the_till_over_a_real_websocket(tmp_path: Path, nursery: trio.Nursery) -> None:
    config = msgspec.structs.replace(make_store_config(tmp_path), sales=SalesConfig(salesperson="required"))
    store = StoreNode(config, clock=FixedClock(T0))
    await nursery.start(store.run)
    with trio.fail_after(30):
        async with connect(store.url, lane=1, till="T1") as till:
            await till.request(Login(operator="1", pin="1234"))
            await till.request(Scan(code=MILK))
            error = await till.request(Total())
            assert isinstance(error, Error) and error.code == "salesperson_needed"
            command = parse("salesperson 2", "SEK", 0)
            assert command == SetSalesperson(salesperson="2") and parse("salesperson", "SEK", 0) == SetSalesperson(
                salesperson=""
            )
            state = await till.request(command)  # type: ignore[arg-type]
            assert isinstance(state, SaleState) and state.salesperson == "2"
            receipt = await till.request(CashTender(amount=2000))
            assert isinstance(receipt, Receipt) and "Salesperson 2" in receipt.text
    (sale,) = journal(store)
    assert sale.salesperson == "2"
