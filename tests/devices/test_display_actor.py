"""The customer display actor through a real pty, checked on the simulator's screen model."""

from __future__ import annotations

from pathlib import Path

import trio

from devices.display import CustomerDisplay, change_lines, initialise, item_lines, render, total_lines
from devices.serialport import PortLost, SerialSettings
from devices.sim.display import DisplaySim
from devices.sim.pty import VirtualPort
from runtime.health import HealthBoard
from runtime.supervision import ChildSpec
from tests.kit.devices import devices_supervisor

DEADLINE = 10
FIRST = initialise() + render("", "")


async def test_item_total_and_change_reach_the_customer(port: VirtualPort) -> None:
    sim, board = DisplaySim(port), HealthBoard()
    display = CustomerDisplay("display-1", SerialSettings(port.path), board)
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            await nursery.start(sim.run)
            await nursery.start(display.run)
            assert board.get("display-1").state == "online"
            await sim.wait_received(len(FIRST))
            assert sim.received == FIRST  # initialised, then a blank frame
            assert sim.screen.codepage == "cp850"

            display.show(*item_lines("Smörgåsgurka 500 g", "24.90"))
            await sim.wait_for("Smörgåsgurka 500 g", "24.90".rjust(20))
            display.show(*total_lines("1 024.90"))
            await sim.wait_for("TOTAL", "1 024.90".rjust(20))
            display.show(*change_lines("1 100.00", "75.10"))
            await sim.wait_for("PAID        1 100.00", "CHANGE         75.10")
            nursery.cancel_scope.cancel()


async def test_latest_lines_win(port: VirtualPort) -> None:
    sim = DisplaySim(port)
    display = CustomerDisplay("d", SerialSettings(port.path), HealthBoard())
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            await nursery.start(sim.run)
            await nursery.start(display.run)
            await sim.wait_received(len(FIRST))  # the actor is idle now, waiting for lines
            for n in range(100):  # no checkpoint between them: only the last can be drawn
                display.show(f"item {n}", f"{n}.00")
            await sim.wait_for("item 99", "99.00")
            assert b"item 98" not in sim.received
            nursery.cancel_scope.cancel()


async def test_show_never_waits_for_a_stuck_display(port: VirtualPort) -> None:
    # The simulator is not reading: the pty fills up and the actor's writes block, as with a display that
    # holds the line busy. show() still returns at once, and when the display catches up it shows the
    # newest lines, having skipped the ones that were overtaken meanwhile.
    display = CustomerDisplay("d", SerialSettings(port.path), HealthBoard())
    shows = 3000
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            await nursery.start(display.run)
            for n in range(shows):
                display.show(f"item {n}", f"{n}.00")
                await trio.lowlevel.checkpoint()
            stuck_at = display.frames
            assert stuck_at < shows  # the actor is blocked in a write
            sim = DisplaySim(port)
            await nursery.start(sim.run)
            await sim.wait_for(f"item {shows - 1}", f"{shows - 1}.00")
            assert display.frames <= stuck_at + 2
            nursery.cancel_scope.cancel()


async def test_lines_shown_while_offline_appear_on_connect(port: VirtualPort) -> None:
    sim = DisplaySim(port)
    display = CustomerDisplay("d", SerialSettings(port.path), HealthBoard())
    display.show("Welcome", "Lane 3")  # before the actor runs: nothing to wait for, nothing lost
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            await nursery.start(sim.run)
            await nursery.start(display.run)
            await sim.wait_for("Welcome", "Lane 3")
            nursery.cancel_scope.cancel()


async def test_unplugged_idle_display_fails_and_shows_offline(port: VirtualPort) -> None:
    board = HealthBoard()
    display = CustomerDisplay("display-1", SerialSettings(port.path), board)
    lost: list[PortLost] = []
    ended = trio.Event()

    async def life(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await display.run(task_status=task_status)
        except PortLost as exc:
            lost.append(exc)
        ended.set()

    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            await nursery.start(DisplaySim(port).run)
            await nursery.start(life)
            port.unplug()  # nothing is being shown: only the actor's reader can notice
            await ended.wait()
            nursery.cancel_scope.cancel()
    assert len(lost) == 1
    assert board.get("display-1").state == "offline"
    assert "PortLost" in board.get("display-1").last_error


async def test_supervised_display_comes_back_showing_the_current_lines(tmp_path: Path) -> None:
    port = VirtualPort(tmp_path / "display")
    port.plug()
    board, sim = HealthBoard(), None
    display = CustomerDisplay("display-1", SerialSettings(port.path), board)
    devices = devices_supervisor(board, ChildSpec("display-1", display.run))
    try:
        with trio.fail_after(DEADLINE):
            async with trio.open_nursery() as nursery:
                sim = DisplaySim(port)
                await nursery.start(sim.run)
                await nursery.start(devices.run)
                display.show(*item_lines("Milk", "12.50"))
                await sim.wait_for("Milk", "12.50".rjust(20))

                port.unplug()
                await board.wait_until("display-1", lambda h: h.restarts >= 2)
                display.show(*total_lines("40.00"))  # the lane carries on while the display is away
                sim.power_cycle()
                port.plug()
                await board.wait_until("display-1", lambda h: h.state == "online")
                await sim.wait_for("TOTAL", "40.00".rjust(20))
                assert sim.received.startswith(b"\x1b@")  # initialised again on reconnect
                nursery.cancel_scope.cancel()
    finally:
        port.close()
