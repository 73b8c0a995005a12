"""The cash drawer through the printer, in virtual time: the kick reaches the printer, the sensor is read
from the printer's status, and a drawer left open raises an alert that closing it clears."""

from __future__ import annotations

import logging

import pytest
import trio

from devices.drawer import CashDrawer
from devices.escpos import drawer_kick, drawer_pulse_now
from devices.receipt_printer import ReceiptPrinter
from devices.sim.printer import VirtualPrinter
from runtime.health import HealthBoard
from tests.kit.printing import make_record, memory_printer

DEADLINE = 600  # virtual seconds: the autojump clock makes waiting free


@pytest.fixture
def health() -> HealthBoard:
    return HealthBoard()


@pytest.fixture
def sim() -> VirtualPrinter:
    return VirtualPrinter()


@pytest.fixture
def printer(sim: VirtualPrinter, health: HealthBoard, nursery: trio.Nursery) -> ReceiptPrinter:
    return memory_printer(sim, health, nursery)


async def test_open_sends_the_kick_and_the_sensor_shows_open(
    autojump_clock: trio.abc.Clock,
    sim: VirtualPrinter,
    printer: ReceiptPrinter,
    health: HealthBoard,
    nursery: trio.Nursery,
) -> None:
    drawer = CashDrawer("drawer", printer, health)
    with trio.fail_after(DEADLINE):
        await nursery.start(printer.run)
        await nursery.start(drawer.run)
        await health.wait_until("drawer", lambda h: h.state == "closed")
        assert drawer.is_open is False
        drawer.open()
        await sim.wait_until(lambda: sim.kicks == 1)
        await health.wait_until("drawer", lambda h: h.state == "open")
    assert drawer_kick(0) in sim.printed  # ESC p through the printer's normal (buffered) path
    assert drawer.is_open is True


async def test_left_open_too_long_alerts_and_closing_clears_it(
    autojump_clock: trio.abc.Clock,
    sim: VirtualPrinter,
    printer: ReceiptPrinter,
    health: HealthBoard,
    nursery: trio.Nursery,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="devices.drawer")
    drawer = CashDrawer("drawer", printer, health, alert_after=30.0)
    with trio.fail_after(DEADLINE):
        await nursery.start(printer.run)
        await nursery.start(drawer.run)
        drawer.open()
        await health.wait_until("drawer", lambda h: h.state == "open")
        opened = trio.current_time()
        await trio.sleep(25)
        assert health.get("drawer").state == "open"  # not yet
        await health.wait_until("drawer", lambda h: h.state == "open-too-long")
        assert 30 <= trio.current_time() - opened <= 30 + printer.idle_poll + drawer.check_every
        assert "longer than 30 s" in health.get("drawer").detail
        assert "drawer drawer: open 30 s, longer than 30 s" in caplog.text
        await trio.sleep(60)
        assert caplog.text.count("longer than 30 s") == 1  # one warning per opening, not one per check
        sim.set_drawer(False)
        await health.wait_until("drawer", lambda h: h.state == "closed")
    assert "closed after" in caplog.text
    assert drawer.open_for == 0.0


async def test_the_kick_goes_ahead_of_waiting_receipts_and_works_without_paper(
    autojump_clock: trio.abc.Clock,
    sim: VirtualPrinter,
    printer: ReceiptPrinter,
    health: HealthBoard,
    nursery: trio.Nursery,
) -> None:
    """Out of paper, the receipt waits; the cashier must still be able to give change."""
    sim.set_paper("out")
    drawer = CashDrawer("drawer", printer, health)
    with trio.fail_after(DEADLINE):
        await nursery.start(printer.run)
        printer.print_receipt(make_record())
        await health.wait_until("printer", lambda h: h.state == "paper-out")
        drawer.open()
        await sim.wait_until(lambda: sim.kicks == 1)
        assert drawer_pulse_now(0) in sim.received  # the real-time pulse, which an offline printer executes
        assert drawer_kick(0) not in sim.received
        assert printer.pending == ["S001-1-42"]
        sim.set_paper("ok")
        await printer.drained()
    assert sim.kicks == 1 and sim.text().count("[QR: S001-1-42]") == 1


async def test_a_kick_nobody_waits_for_any_more_is_dropped(
    autojump_clock: trio.abc.Clock,
    sim: VirtualPrinter,
    printer: ReceiptPrinter,
    health: HealthBoard,
    nursery: trio.Nursery,
    caplog: pytest.LogCaptureFixture,
) -> None:
    drawer = CashDrawer("drawer", printer, health, kick_ttl=10.0)
    drawer.open()  # the printer is not running: the kick waits in its queue
    await trio.sleep(11)
    with trio.fail_after(DEADLINE):
        await nursery.start(printer.run)
        await printer.drained()
    assert sim.kicks == 0 and not sim.drawer_open
    assert "expired unsent" in caplog.text


async def test_the_same_open_command_twice_kicks_once(
    autojump_clock: trio.abc.Clock,
    sim: VirtualPrinter,
    printer: ReceiptPrinter,
    health: HealthBoard,
    nursery: trio.Nursery,
) -> None:
    drawer = CashDrawer("drawer", printer, health)
    with trio.fail_after(DEADLINE):
        await nursery.start(printer.run)
        assert drawer.open("kick-sale-7") == drawer.open("kick-sale-7") == "kick-sale-7"
        assert printer.queue_depth == 1
        await sim.wait_until(lambda: sim.kicks == 1)
        drawer.open("kick-sale-7")  # a retry after it went out: still the same kick
        assert printer.queue_depth == 0
        await trio.sleep(10)
    assert sim.kicks == 1


async def test_sensor_level_is_per_drawer(
    autojump_clock: trio.abc.Clock, health: HealthBoard, nursery: trio.Nursery
) -> None:
    sim = VirtualPrinter(open_level_high=False)  # this drawer pulls pin 3 low when open
    printer = memory_printer(sim, health, nursery)
    drawer = CashDrawer("drawer", printer, health, open_level_high=False)
    with trio.fail_after(DEADLINE):
        await nursery.start(printer.run)
        await nursery.start(drawer.run)
        await health.wait_until("drawer", lambda h: h.state == "closed")
        assert printer.status is not None and printer.status.drawer_pin3_high
        sim.set_drawer(True)
        await health.wait_until("drawer", lambda h: h.state == "open")


async def test_unknown_while_the_printer_is_away(
    autojump_clock: trio.abc.Clock,
    sim: VirtualPrinter,
    printer: ReceiptPrinter,
    health: HealthBoard,
    nursery: trio.Nursery,
) -> None:
    drawer = CashDrawer("drawer", printer, health)
    with trio.fail_after(DEADLINE):
        await nursery.start(drawer.run)
        await health.wait_until("drawer", lambda h: h.state == "unknown")
        assert drawer.is_open is None
        await nursery.start(printer.run)
        await health.wait_until("drawer", lambda h: h.state == "closed")
