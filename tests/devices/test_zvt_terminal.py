"""The ZVT driver against the simulated terminal, over real TCP loopback and a real pty.

For every point where a payment can fail, the outcome the till sees is checked against what the
simulator really booked, and so is what `last_transaction()` makes of it: money is never taken twice and
never recorded as paid without an approval.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from devices.serialport import SerialSettings
from devices.sim.pty import VirtualPort
from devices.sim.zvt import Fault, ZvtSimulator
from devices.terminal import (
    PaymentResult,
    PaymentTerminal,
    TerminalUnavailable,
    ZvtSerial,
    ZvtTcp,
    ZvtTerminal,
    resolve,
)
from devices.zvt import StatusInformation
from runtime.health import HealthBoard
from runtime.mailbox import Rejected
from runtime.supervision import ChildSpec, Supervisor
from tests.kit.devices import devices_supervisor

DEADLINE = 20
NAME = "terminal-1"
FULL_PAN = "4761739001010119"


def supervised(terminal: ZvtTerminal, board: HealthBoard) -> Supervisor:
    return devices_supervisor(board, ChildSpec(NAME, terminal.run))


@asynccontextmanager
async def zvt(
    sim: ZvtSimulator | None = None, **options: object
) -> AsyncIterator[tuple[ZvtTerminal, ZvtSimulator, HealthBoard]]:
    """A simulator on 127.0.0.1 port 0 and a supervised terminal connected to it."""
    board = HealthBoard()
    sim = sim if sim is not None else ZvtSimulator()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(sim.run)
        terminal = ZvtTerminal(NAME, ZvtTcp("127.0.0.1", port), board, **options)  # type: ignore[arg-type]
        await nursery.start(supervised(terminal, board).run)
        yield terminal, sim, board
        nursery.cancel_scope.cancel()


async def refused(call: Callable[[], object]) -> Rejected:
    with pytest.raises(Rejected) as info:
        await call()  # type: ignore[misc]
    return info.value


def test_the_zvt_terminal_is_a_payment_terminal() -> None:
    terminal: PaymentTerminal = ZvtTerminal(NAME, ZvtTcp("127.0.0.1"), HealthBoard())
    assert terminal.unresolved is None


# -- the good days -------------------------------------------------------------------------------------


async def test_approved_payment() -> None:
    heard: list[str] = []
    with trio.fail_after(DEADLINE):
        async with zvt(status_listener=heard.append) as (terminal, sim, board):
            await terminal.register()
            assert sim.registered and terminal.terminal_id == "52500001"
            result = await terminal.authorize(1234, "EUR", reference="sale-1")
            booked = sim.payments[-1]
            assert result.outcome == "approved" and result.settled
            assert (result.amount, result.currency, result.reference) == (1234, "EUR", "sale-1")
            assert result.terminal_txn == booked.trace and result.receipt_no == booked.receipt_no
            assert result.auth_code == booked.auth_code != ""
            assert result.masked_pan == "476173******0119"
            assert (result.card_type, result.terminal_id, result.result_code) == ("Visa", "52500001", 0)
            assert "Betrag EUR 12.34" in result.print_lines
            assert heard == ["insert card", "please watch PIN pad", "waiting for response from the host"]
            assert sim.charged == 1234
            assert board.get(NAME).state == "online"


async def test_intermediate_status_and_print_lines_are_each_acknowledged() -> None:
    with trio.fail_after(DEADLINE):
        async with zvt() as (terminal, sim, _):
            sim.intermediate = (0x0A, 0x0E, 0x0E, 0x01)
            result = await terminal.authorize(500, "EUR", reference="sale-1")
            assert result.outcome == "approved"
            # the baseline query (status + lines + completion) and the payment (4 statuses, the
            # Status-Information, the lines, the Completion): every message acknowledged
            copy = sim.receipt_lines(sim.journal[0], copy=True)
            expected = (1 + len(copy) + 1) + (4 + 1 + len(result.print_lines) + 1)
            await sim.wait_until(lambda: sim.acks_received >= expected)  # the last one may still be in flight
            assert sim.acks_received == expected
            assert result.print_lines == tuple(sim.receipt_lines(sim.payments[-1]))


async def test_receipt_as_text_block() -> None:
    with trio.fail_after(DEADLINE):
        async with zvt() as (terminal, sim, _):
            sim.text_blocks = True
            result = await terminal.authorize(700, "EUR", reference="sale-1")
            assert result.outcome == "approved"
            assert result.print_lines == tuple(sim.receipt_lines(sim.payments[-1]))


async def test_declined_payment_charges_nothing() -> None:
    with trio.fail_after(DEADLINE):
        async with zvt() as (terminal, sim, _):
            sim.decline_code = 0x71
            result = await terminal.authorize(1500, "EUR", reference="sale-1")
            assert result.outcome == "declined" and result.result_code == 0x71
            assert result.message == "credit not sufficient"
            assert "Vorgang nicht erfolgt" in result.print_lines
            assert sim.charged == 0 and not sim.payments
            assert terminal.unresolved is None
            sim.decline_code = None  # another card
            again = await terminal.authorize(1500, "EUR", reference="sale-1")
            assert again.outcome == "approved" and sim.charged == 1500


async def test_customer_abort() -> None:
    with trio.fail_after(DEADLINE):
        async with zvt() as (terminal, sim, _):
            sim.abort_next = True
            result = await terminal.authorize(1500, "EUR", reference="sale-1")
            assert result.outcome == "aborted" and result.result_code == 0x6C
            assert sim.charged == 0 and terminal.unresolved is None


async def test_reversal_after_approval() -> None:
    with trio.fail_after(DEADLINE):
        async with zvt() as (terminal, sim, _):
            paid = await terminal.authorize(2500, "EUR", reference="sale-1")
            reversed_ = await terminal.reverse(paid)
            assert reversed_.outcome == "approved" and reversed_.kind == "reversal"
            assert reversed_.amount == 2500 and reversed_.terminal_txn == sim.last.trace  # type: ignore[union-attr]
            assert sim.payments[0].reversed and sim.charged == 0
            commands = len(sim.commands)
            assert await terminal.reverse(paid) == reversed_  # not sent again
            assert len(sim.commands) == commands
            declined = await terminal.authorize(10, "EUR", reference="sale-2")
            sim.decline_code = 0x05
            declined = await terminal.authorize(20, "EUR", reference="sale-3")
            assert (await refused(lambda: terminal.reverse(declined))).code == "not_reversible"


async def test_refund() -> None:
    with trio.fail_after(DEADLINE):
        async with zvt() as (terminal, sim, _):
            await terminal.authorize(1000, "EUR", reference="sale-1")
            refund = await terminal.refund(300, "EUR", reference="return-1")
            assert refund.outcome == "approved" and refund.kind == "refund" and refund.amount == 300
            assert sim.last.kind == "refund" and sim.charged == 700  # type: ignore[union-attr]


async def test_end_of_day_totals() -> None:
    with trio.fail_after(DEADLINE):
        async with zvt() as (terminal, sim, _):
            await terminal.authorize(1000, "EUR", reference="sale-1")
            await terminal.authorize(2000, "EUR", reference="sale-2")
            mistake = await terminal.authorize(500, "EUR", reference="sale-3")
            await terminal.reverse(mistake)
            report = await terminal.end_of_day()
            assert report.ok and report.result_code == 0
            assert (report.total, report.count, report.currency) == (3000, 2, "EUR")
            visa = next(t for t in report.totals if t.card == "Visa")
            assert (visa.count, visa.amount) == (2, 3000)
            assert report.terminal_txn == sim.last.trace and sim.last.kind == "end_of_day"  # type: ignore[union-attr]
            assert "Kassenschnitt" in report.print_lines


async def test_status_enquiry() -> None:
    with trio.fail_after(DEADLINE):
        async with zvt() as (terminal, _, _):
            status = await terminal.status_enquiry()
            assert status.ready and status.code == 0 and status.sw_version == "storepos-zvt-sim 1.0"


async def test_last_transaction_without_anything_in_doubt() -> None:
    with trio.fail_after(DEADLINE):
        async with zvt() as (terminal, _, _):
            report = await terminal.last_transaction()
            assert report is not None and report.kind == "end_of_day"  # yesterday's, the simulator's history
            paid = await terminal.authorize(800, "EUR", reference="sale-1")
            last = await terminal.last_transaction()
            assert last is not None and last.outcome == "approved"
            assert (last.terminal_txn, last.amount, last.auth_code) == (paid.terminal_txn, 800, paid.auth_code)
            assert "*** KOPIE ***" in last.print_lines
        async with zvt(ZvtSimulator(history=False)) as (terminal, _, _):
            assert await terminal.last_transaction() is None


async def test_the_same_reference_is_never_charged_twice() -> None:
    with trio.fail_after(DEADLINE):
        async with zvt() as (terminal, sim, _):
            first = await terminal.authorize(1200, "EUR", reference="sale-1")
            second = await terminal.authorize(1200, "EUR", reference="sale-1")
            assert second == first and len(sim.payments) == 1 and sim.charged == 1200


async def test_one_transaction_at_a_time() -> None:
    with trio.fail_after(DEADLINE):
        async with zvt() as (terminal, sim, board):
            sim.hold = trio.Event()
            results: list[PaymentResult] = []

            async def pay() -> None:
                results.append(await terminal.authorize(900, "EUR", reference="sale-1"))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(pay)
                await sim.wait_until(lambda: sim.holding)
                assert board.get(NAME).state == "busy"
                assert (await refused(lambda: terminal.authorize(900, "EUR", reference="sale-2"))).code == (
                    "terminal_busy"
                )
                assert (await refused(terminal.last_transaction)).code == "terminal_busy"
                sim.hold.set()
            assert [r.outcome for r in results] == ["approved"]
            assert len(sim.payments) == 1
            assert board.get(NAME).state == "online"


async def test_bad_requests() -> None:
    with trio.fail_after(DEADLINE):
        async with zvt() as (terminal, sim, _):
            for amount, currency in ((0, "EUR"), (-5, "EUR"), (100, "XYZ")):
                call = lambda a=amount, c=currency: terminal.authorize(a, c, reference="x")  # noqa: E731
                assert (await refused(call)).code == ("bad_request")
            assert "Authorization" not in sim.commands


# -- every point of failure ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "booked"),
    [
        ("drop_before_ack", False),
        ("drop_after_ack", False),
        ("timeout_after_intermediate", False),
        ("drop_after_approval", True),
        ("drop_after_status", True),
    ],
)
async def test_each_point_of_failure_is_unknown_until_the_terminal_says(fault: Fault, booked: bool) -> None:
    with trio.fail_after(DEADLINE):
        async with zvt(message_timeout=0.5) as (terminal, sim, board):
            await terminal.register()
            sim.fail_next(fault)
            result = await terminal.authorize(1500, "EUR", reference="sale-1")
            assert result.outcome == "unknown" and not result.settled
            assert result.prior_txn == sim.journal[0].trace  # the terminal's last transaction before
            assert terminal.unresolved == result
            assert len(sim.payments) == (1 if booked else 0)
            if fault == "drop_after_status":  # its own Status-Information had arrived
                assert result.terminal_txn == sim.payments[0].trace
            assert "payment" in board.get(NAME).detail and "unknown" in board.get(NAME).detail

            # nothing that moves money (or replaces the evidence) until it is settled
            for call in (
                lambda: terminal.authorize(1500, "EUR", reference="sale-1"),
                lambda: terminal.authorize(200, "EUR", reference="sale-2"),
                lambda: terminal.refund(1500, "EUR", reference="sale-1"),
                terminal.end_of_day,
            ):
                assert (await refused(call)).code == "payment_unknown"

            settled = await terminal.last_transaction()
            assert settled is not None and terminal.unresolved is None
            assert (settled.reference, settled.amount) == ("sale-1", 1500)
            if booked:
                truth = sim.payments[0]
                assert settled.outcome == "approved"
                assert (settled.terminal_txn, settled.receipt_no, settled.auth_code) == (
                    truth.trace,
                    truth.receipt_no,
                    truth.auth_code,
                )
                assert settled.masked_pan == "476173******0119"
            else:
                assert settled.outcome == "aborted" and not sim.payments
                assert "nothing was booked" in settled.message
            assert sim.charged == (1500 if booked else 0)

            # only now may the cashier retry; an approved reference is not charged again
            again = await terminal.authorize(1500, "EUR", reference="sale-1")
            assert again.outcome == "approved"
            assert len(sim.payments) == 1 and sim.charged == 1500
            if booked:
                assert again == settled


async def test_connection_refused_sends_nothing() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    board = HealthBoard()
    terminal = ZvtTerminal(NAME, ZvtTcp("127.0.0.1", port), board, connect_wait=0.3)
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            await nursery.start(supervised(terminal, board).run)
            await board.wait_until(NAME, lambda h: h.restarts >= 1)
            result = await terminal.authorize(1500, "EUR", reference="sale-1")
            assert result.outcome == "aborted" and "nothing was sent" in result.message
            assert terminal.unresolved is None
            with pytest.raises(TerminalUnavailable):
                await terminal.last_transaction()
            # the terminal comes up on that port: it has nothing from this attempt
            sim = ZvtSimulator(port=port)
            await nursery.start(sim.run)
            await board.wait_until(NAME, lambda h: h.state == "online")
            last = await terminal.last_transaction()
            assert last is not None and last.kind == "end_of_day" and not sim.payments
            assert (await terminal.authorize(1500, "EUR", reference="sale-1")).outcome == "approved"
            nursery.cancel_scope.cancel()


async def test_the_callers_deadline_mid_payment_leaves_it_unknown() -> None:
    with trio.fail_after(DEADLINE):
        async with zvt() as (terminal, sim, _):
            sim.hold = trio.Event()
            async with trio.open_nursery() as nursery:
                scope = trio.CancelScope()

                async def pay() -> None:
                    with scope:
                        await terminal.authorize(4200, "EUR", reference="sale-1")
                    assert scope.cancelled_caught

                nursery.start_soon(pay)
                await sim.wait_until(lambda: sim.holding)  # the customer is at the PIN pad
                scope.cancel()  # the till gave up (its trio.fail_after fired)
            pending = terminal.unresolved
            assert pending is not None and pending.outcome == "unknown" and pending.reference == "sale-1"
            sim.hold.set()  # ...but the customer's card went through on the terminal
            await sim.wait_until(lambda: len(sim.payments) == 1)
            assert (await refused(lambda: terminal.authorize(4200, "EUR", reference="sale-1"))).code == (
                "payment_unknown"
            )
            settled = await terminal.last_transaction()
            assert settled is not None and settled.outcome == "approved"
            assert settled.terminal_txn == sim.payments[0].trace
            assert await terminal.authorize(4200, "EUR", reference="sale-1") == settled
            assert sim.charged == 4200


async def test_terminal_gone_and_back() -> None:
    with trio.fail_after(DEADLINE):
        async with zvt(connect_wait=0.3) as (terminal, sim, board):
            assert (await terminal.authorize(100, "EUR", reference="sale-1")).outcome == "approved"
            sim.stop()  # switched off: connections dropped, new ones refused
            await board.wait_until(NAME, lambda h: h.state in ("offline", "backoff") and h.restarts >= 2)
            result = await terminal.authorize(200, "EUR", reference="sale-2")
            assert result.outcome == "aborted" and terminal.unresolved is None
            with pytest.raises(TerminalUnavailable):
                await terminal.register()
            assert len(sim.payments) == 1
            async with trio.open_nursery() as nursery:
                await nursery.start(sim.run)  # on again, same port
                await board.wait_until(NAME, lambda h: h.state == "online")
                assert (await terminal.authorize(200, "EUR", reference="sale-2")).outcome == "approved"
                nursery.cancel_scope.cancel()
            assert sim.charged == 300


async def test_an_unreadable_result_is_never_an_approval() -> None:
    with trio.fail_after(DEADLINE):
        async with zvt() as (terminal, sim, _):
            await terminal.authorize(100, "EUR", reference="sale-0")  # learns the baseline
            sim.extra_bitmaps = b"\x99\x01"  # a bitmap of unknown length: nothing after it can be read
            result = await terminal.authorize(1500, "EUR", reference="sale-1")
            assert result.outcome == "unknown" and "could not be read" in result.message
            assert len(sim.payments) == 2  # the terminal did book it
            still = await terminal.last_transaction()  # its report is unreadable too
            assert still is not None and still.outcome == "unknown" and terminal.unresolved is not None
            sim.extra_bitmaps = b""  # e.g. a driver update that knows the bitmap
            settled = await terminal.last_transaction()
            assert settled is not None and settled.outcome == "approved"
            assert settled.terminal_txn == sim.payments[1].trace


async def test_bitmaps_of_known_length_are_skipped() -> None:
    with trio.fail_after(DEADLINE):
        async with zvt() as (terminal, sim, _):
            sim.extra_bitmaps = bytes.fromhex("17 0001 0E 2812 23 F0F2 EEEE")  # seq no, expiry, track 2
            result = await terminal.authorize(1500, "EUR", reference="sale-1")
            assert result.outcome == "approved"


async def test_a_full_card_number_never_leaves_the_decoder(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with trio.fail_after(DEADLINE):
        async with zvt() as (terminal, sim, _):
            sim.send_full_pan = True
            result = await terminal.authorize(1500, "EUR", reference="sale-1")
            last = await terminal.last_transaction()
    assert result.outcome == "approved" and result.masked_pan == "476173******0119"
    assert last is not None and last.masked_pan == "476173******0119"
    for text in (repr(result), repr(last), repr(vars(terminal)), caplog.text):
        assert FULL_PAN not in text


async def test_without_a_known_prior_transaction_a_person_decides() -> None:
    with trio.fail_after(DEADLINE):
        async with zvt(ZvtSimulator(history=False)) as (terminal, sim, _):
            sim.fail_next("drop_after_approval")
            result = await terminal.authorize(1500, "EUR", reference="sale-1")
            assert result.outcome == "unknown" and result.prior_txn is None
            still = await terminal.last_transaction()
            assert still is not None and still.outcome == "unknown" and "not known" in still.message
            assert (await refused(lambda: terminal.authorize(1500, "EUR", reference="sale-1"))).code == (
                "payment_unknown"
            )
            assert (await refused(lambda: terminal.abandon_unknown(" "))).code == "bad_request"  # type: ignore[arg-type,return-value]
            set_aside = terminal.abandon_unknown("approved on the terminal's printed journal, trace 000001")
            assert set_aside.outcome == "unknown" and "set aside by staff" in set_aside.message
            assert terminal.unresolved is None
            assert (await terminal.authorize(300, "EUR", reference="sale-2")).outcome == "approved"


async def test_an_unknown_payment_survives_a_restart() -> None:
    pending = PaymentResult(outcome="unknown", amount=1500, currency="EUR", reference="sale-1", prior_txn="000001")
    with trio.fail_after(DEADLINE):
        async with zvt(unresolved=pending) as (terminal, sim, _):
            assert (await refused(lambda: terminal.authorize(100, "EUR", reference="sale-2"))).code == (
                "payment_unknown"
            )
            settled = await terminal.last_transaction()  # the simulator's last is still 000001
            assert settled is not None and settled.outcome == "aborted"
            assert (await terminal.authorize(1500, "EUR", reference="sale-1")).outcome == "approved"
            assert sim.charged == 1500


# -- the resolution rule ----------------------------------------------------------------------------------


def _pending(**fields: object) -> PaymentResult:
    base: dict[str, object] = {"outcome": "unknown", "amount": 1500, "currency": "EUR", "prior_txn": "000007"}
    return PaymentResult(**(base | fields))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pending", "last", "outcome"),
    [
        (_pending(), None, None),
        (_pending(), StatusInformation(result_code=0, amount=1500), None),  # no trace
        (_pending(), StatusInformation(result_code=0, amount=900, trace="000007"), "aborted"),
        (_pending(), StatusInformation(result_code=0, amount=1500, trace="000008"), "approved"),
        (_pending(), StatusInformation(result_code=0x71, amount=1500, trace="000008"), "declined"),
        (_pending(), StatusInformation(result_code=0x6C, amount=1500, trace="000008"), "aborted"),
        (_pending(), StatusInformation(result_code=0, amount=1400, trace="000008"), None),  # another amount
        (_pending(), StatusInformation(result_code=0, amount=1500, currency="SEK", trace="000008"), None),
        (_pending(), StatusInformation(amount=1500, trace="000008"), None),  # no result code
        (_pending(prior_txn=None), StatusInformation(result_code=0, amount=1500, trace="000008"), None),
        (_pending(terminal_txn="000008"), StatusInformation(result_code=0, amount=1500, trace="000008"), "approved"),
        (_pending(terminal_txn="000008"), StatusInformation(result_code=0, amount=1500, trace="000009"), None),
    ],
)
def test_resolution_rule(pending: PaymentResult, last: StatusInformation | None, outcome: str | None) -> None:
    assert resolve(pending, last)[0] == outcome


# -- serial ----------------------------------------------------------------------------------------------


@asynccontextmanager
async def zvt_serial(tmp_path: Path, **options: object) -> AsyncIterator[tuple[ZvtTerminal, ZvtSimulator, HealthBoard]]:
    port = VirtualPort(tmp_path / "zvt")
    port.plug()
    board = HealthBoard()
    sim = ZvtSimulator()
    terminal = ZvtTerminal(NAME, ZvtSerial(SerialSettings(port.path)), board, **options)  # type: ignore[arg-type]
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(sim.run_serial, port)
            await nursery.start(supervised(terminal, board).run)
            yield terminal, sim, board
            nursery.cancel_scope.cancel()
    finally:
        port.close()


async def test_serial_payment_with_naks_and_damaged_frames(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE):
        async with zvt_serial(tmp_path) as (terminal, sim, _):
            await terminal.register()
            sim.nak_frames = 2  # the terminal refuses the till's next two frames: they are sent again
            sim.corrupt_frames = 2  # the terminal's next two frames arrive damaged: the till NAKs them
            result = await terminal.authorize(1000, "EUR", reference="sale-1")  # 10.00: a DLE in the amount
            assert result.outcome == "approved" and result.terminal_txn == sim.payments[0].trace
            assert sim.naks_sent == 2 and sim.naks_received == 2
            assert terminal.link_stats == {"bad_frames": 2, "resent": 2}
            assert sim.charged == 1000


async def test_serial_frames_refused_every_time_mean_nothing_was_started(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE):
        async with zvt_serial(tmp_path) as (terminal, sim, _):
            await terminal.last_transaction()  # learns the baseline
            sim.nak_frames = 4  # one try and three repetitions, all refused
            result = await terminal.authorize(1000, "EUR", reference="sale-1")
            assert result.outcome == "aborted" and "NAK" in result.message
            assert terminal.unresolved is None and not sim.payments
            assert (await terminal.authorize(1000, "EUR", reference="sale-1")).outcome == "approved"


async def test_serial_drop_after_approval(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE):
        async with zvt_serial(tmp_path) as (terminal, sim, board):
            sim.fail_next("drop_after_approval")  # the terminal restarts: its cable end is pulled and replugged
            result = await terminal.authorize(3300, "EUR", reference="sale-1")
            assert result.outcome == "unknown"
            settled = await terminal.last_transaction()
            assert settled is not None and settled.outcome == "approved"
            assert settled.terminal_txn == sim.payments[0].trace and sim.charged == 3300
            assert board.get(NAME).restarts >= 1


async def test_serial_acknowledgement_refused_after_the_command_is_unknown_not_aborted(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE):
        async with zvt_serial(tmp_path) as (terminal, sim, _):
            await terminal.last_transaction()  # learns the baseline
            sim.hold = trio.Event()
            async with trio.open_nursery() as nursery:
                results: list[PaymentResult] = []

                async def pay() -> None:
                    results.append(await terminal.authorize(1000, "EUR", reference="sale-1"))

                nursery.start_soon(pay)
                await sim.wait_until(lambda: sim.holding)
                sim.nak_frames = 4  # the till's acknowledgement of the result never gets through
                sim.hold.set()
            assert [r.outcome for r in results] == ["unknown"]  # the command was delivered and booked
            assert len(sim.payments) == 1
            while True:  # the terminal, still waiting for that acknowledgement, drops the first query
                try:
                    settled = await terminal.last_transaction()
                    break
                except TerminalUnavailable:
                    await trio.sleep(0.02)
            assert settled is not None and settled.outcome == "approved"
            assert settled.terminal_txn == sim.payments[0].trace
