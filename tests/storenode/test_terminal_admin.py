"""A supervisor setting aside a card payment the terminal cannot settle, and the terminal's end of day: a real
store node, the ZVT simulator over real TCP, a till over a real websocket."""

from __future__ import annotations

from pathlib import Path

import trio

from devices.sim.zvt import ZvtSimulator
from protocol.frames import (
    CardTender,
    EndOfDay,
    Error,
    Login,
    Receipt,
    ResolvePayment,
    SaleState,
    Scan,
    SetAside,
    TerminalReport,
)
from tests.kit.journal import journal
from tests.kit.nodes import start_store
from tests.kit.payments import COFFEE, MILK, selling, sim_terminal
from tests.kit.waits import next_receipt, until
from till.client import TillClient, connect


async def lost_and_unsettled(sim: ZvtSimulator, till: TillClient) -> None:
    """A card payment the terminal books while its answer is lost, and after which it cannot repeat its
    last receipt (a lost journal): the lane's own attempt to settle it ends "still unknown"."""
    sim.fail_next("drop_after_approval")
    sim.hold = trio.Event()
    await till.request(CardTender())
    await sim.wait_until(lambda: sim.holding)  # the lane learnt the terminal's last transaction before this
    sim.repeats_receipts = False
    sim.hold.set()
    sim.hold = None
    await until(till, lambda s: s.status == "paying" and "unknown" in s.message)


async def test_a_payment_the_terminal_cannot_settle_is_set_aside_by_a_supervisor_never_paid(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    sim = sim_terminal()
    store = await start_store(tmp_path, nursery, sim=sim)
    with trio.fail_after(25):
        async with connect(store.url, lane=1, till="T1") as till:
            await selling(till, MILK)
            nothing = await till.request(SetAside(operator="2", pin="4321", reason="x"))
            assert isinstance(nothing, Error) and nothing.code == "nothing_unresolved"

            await lost_and_unsettled(sim, till)
            still = await till.request(ResolvePayment())
            assert isinstance(still, SaleState) and still.status == "paying"
            for command, code in (
                (Scan(code=MILK), "payment_in_progress"),
                (SetAside(operator="2", pin="4321", reason="  "), "bad_request"),
                (SetAside(operator="2", pin="0000", reason="terminal replaced"), "wrong_pin"),
            ):
                answer = await till.request(command)
                assert isinstance(answer, Error) and answer.code == code, answer
                assert till.state is not None and till.state.status == "paying"

            state = await till.request(SetAside(operator="2", pin="4321", reason="terminal replaced"))
            assert isinstance(state, SaleState) and (state.status, state.paid, state.due) == ("open", 0, 1590)
            assert "set aside" in state.message and state.tenders == []

            sim.repeats_receipts = True  # the replacement: card payments go on
            await till.request(CardTender())
            await next_receipt(till)
    assert len(sim.payments) == 2  # the one set aside was charged: the journal says to check it
    (record,) = journal(store)
    assert [(t.kind, t.amount) for t in record.tenders] == [("card", 1590)]
    aside, paid = record.payments
    assert (aside.outcome, paid.outcome) == ("unknown", "approved")
    assert "set aside, outcome unknown: check the terminal's journal" in aside.message
    assert "terminal replaced" in aside.message and "supervisor 2" in aside.message


async def test_set_aside_settles_instead_when_the_terminal_can_answer(tmp_path: Path, nursery: trio.Nursery) -> None:
    sim = sim_terminal()
    store = await start_store(tmp_path, nursery, sim=sim)
    with trio.fail_after(25):
        async with connect(store.url, lane=1, till="T1") as till:
            await selling(till, MILK)
            await lost_and_unsettled(sim, till)
            sim.repeats_receipts = True  # the terminal is back to itself before the supervisor comes
            answer = await till.request(SetAside(operator="2", pin="4321", reason="impatient"))
            assert isinstance(answer, Receipt) and answer.tendered == 1590  # settled, not set aside
    (record,) = journal(store)
    assert [(t.kind, t.amount) for t in record.tenders] == [("card", 1590)]
    assert [p.outcome for p in record.payments] == ["approved"] and len(sim.payments) == 1


async def test_end_of_day_reports_the_terminals_totals(tmp_path: Path, nursery: trio.Nursery) -> None:
    sim = sim_terminal()
    store = await start_store(tmp_path, nursery, sim=sim)
    with trio.fail_after(25):
        async with connect(store.url, lane=1, till="T1") as till, connect(store.url, lane=2, till="T2") as other:
            await till.request(Login(operator="1", pin="1234"))
            await other.request(Login(operator="2", pin="4321"))
            no_terminal = await other.request(EndOfDay())
            assert isinstance(no_terminal, Error) and no_terminal.code == "no_terminal"
            for code in (COFFEE, MILK):
                await till.request(Scan(code=code))
                busy = await till.request(EndOfDay())
                assert isinstance(busy, Error) and busy.code == "sale_open"
                await till.request(CardTender())
                await until(till, lambda s: s.status == "ready")
            report = await till.request(EndOfDay(approver="2", approver_pin="4321"))
            assert isinstance(report, TerminalReport), report
            done = await until(till, lambda s: s.message.startswith("end of day done"))
            assert "2 card payments" in done.message
    assert report.ok and (report.count, report.total, report.currency) == (2, 6995 + 1590, "SEK")
    assert [(t.card, t.count, t.amount) for t in report.totals] == [("Visa", 2, 8585)]
    assert report.trace == sim.last.trace and sim.last.kind == "end_of_day"  # type: ignore[union-attr]
    assert "Kassenschnitt" in report.text
    assert [r.total for r in till.receipts] == [6995, 1590]  # both card sales closed with a receipt
