"""The scanner actor through a real pty: scans reach on_scan, in order, across noise and unplugging."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from devices.scanner import ScanEvent, Scanner
from devices.serialport import PortLost, PortNotFound, SerialSettings
from devices.sim.pty import VirtualPort
from devices.sim.scanner import ScannerSim
from runtime.health import HealthBoard
from runtime.supervision import ChildSpec
from tests.kit.devices import devices_supervisor

DEADLINE = 10


class Inbox:
    """Stands in for the lane: records what on_scan receives and lets the test wait for it."""

    def __init__(self) -> None:
        self.send, self.receive = trio.open_memory_channel[ScanEvent](math.inf)
        self.seen: list[ScanEvent] = []

    async def on_scan(self, event: ScanEvent) -> None:
        self.seen.append(event)
        self.send.send_nowait(event)

    async def next(self) -> ScanEvent:
        return await self.receive.receive()


@asynccontextmanager
async def running(scanner: Scanner) -> AsyncIterator[None]:
    """The actor for the duration of a block, stopped before the port fixture unplugs anything."""
    async with trio.open_nursery() as nursery:
        await nursery.start(scanner.run)
        yield
        nursery.cancel_scope.cancel()


async def test_scans_arrive_in_order_with_symbology(port: VirtualPort) -> None:
    board, inbox = HealthBoard(), Inbox()
    scanner = Scanner("scanner-1", SerialSettings(port.path), board, inbox.on_scan, terminator="CRLF", aim=True)
    with trio.fail_after(DEADLINE):
        async with running(scanner):
            assert board.get("scanner-1").state == "online"
            sim = ScannerSim(port, terminator="CRLF", aim=True)
            wanted = [("4006381333931", "E0"), ("7310865004703", "E0"), ("96385074", "E4"), ("ABC-123", "C0")]
            await sim.send_raw(b"".join(sim.line(code, sym) for code, sym in wanted))
            got = [await inbox.next() for _ in wanted]
    assert got == [
        ScanEvent("4006381333931", "EAN-13"),
        ScanEvent("7310865004703", "EAN-13"),
        ScanEvent("96385074", "EAN-8"),
        ScanEvent("ABC-123", "Code 128"),
    ]


async def test_scans_split_across_writes(port: VirtualPort) -> None:
    inbox = Inbox()
    with trio.fail_after(DEADLINE):
        async with running(Scanner("s", SerialSettings(port.path), HealthBoard(), inbox.on_scan)):
            for piece in (b"40063", b"81333931\r", b"\n7310", b"865004703\r\n"):
                await port.send(piece)
                await trio.sleep(0.01)
            got = [(await inbox.next()).code for _ in range(2)]
    assert got == ["4006381333931", "7310865004703"]


async def test_garbage_is_skipped_and_the_next_scan_arrives(port: VirtualPort) -> None:
    board, inbox = HealthBoard(), Inbox()
    scanner = Scanner("s", SerialSettings(port.path), board, inbox.on_scan, max_gap=0.1)
    sim = ScannerSim(port)
    with trio.fail_after(DEADLINE):
        async with running(scanner):
            await sim.noise()  # idle-line noise
            await sim.send_raw(b"4006\x00\xff381333931\r")  # a damaged scan
            await sim.send_raw(b"9" * 300 + b"\r")  # a runaway line
            await sim.scan("1111111111116")
            await sim.truncated("2222222222222")  # its tail never comes...
            await port.wait_drained()
            await trio.sleep(0.3)  # ...and the scanner falls silent for longer than max_gap
            await sim.scan("7310865004703")
            assert (await inbox.next()).code == "1111111111116"
            assert (await inbox.next()).code == "7310865004703"
            assert board.get("s").state == "online"
    assert inbox.seen == [ScanEvent("1111111111116"), ScanEvent("7310865004703")]


async def test_a_failing_lane_does_not_kill_the_scanner(port: VirtualPort) -> None:
    inbox = Inbox()

    async def on_scan(event: ScanEvent) -> None:
        if event.code == "bad":
            raise RuntimeError("lane refused")
        await inbox.on_scan(event)

    sim = ScannerSim(port)
    with trio.fail_after(DEADLINE):
        async with running(Scanner("s", SerialSettings(port.path), HealthBoard(), on_scan)):
            await sim.scan("bad")
            await sim.scan("good")
            assert (await inbox.next()).code == "good"


async def test_a_slow_lane_still_gets_every_scan_in_order(port: VirtualPort) -> None:
    inbox = Inbox()

    async def on_scan(event: ScanEvent) -> None:
        await trio.sleep(0.05)  # slower than the scans come: they queue, none is lost or reordered
        await inbox.on_scan(event)

    sim = ScannerSim(port)
    codes = [f"{n:013d}" for n in range(10)]
    with trio.fail_after(DEADLINE):
        async with running(Scanner("s", SerialSettings(port.path), HealthBoard(), on_scan)):
            for code in codes:
                await sim.scan(code)
            got = [(await inbox.next()).code for _ in codes]
    assert got == codes


async def test_unplug_fails_the_actor_and_shows_offline(port: VirtualPort) -> None:
    board, inbox = HealthBoard(), Inbox()
    scanner = Scanner("scanner-1", SerialSettings(port.path), board, inbox.on_scan)
    lost: list[PortLost] = []

    async def life(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await scanner.run(task_status=task_status)
        except PortLost as exc:
            lost.append(exc)

    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            await nursery.start(life)
            await ScannerSim(port).scan("4006381333931")
            assert (await inbox.next()).code == "4006381333931"
            port.unplug()
    assert len(lost) == 1  # the actor ended by itself, with PortLost, not by our cancelling it
    health = board.get("scanner-1")
    assert health.state == "offline"
    assert health.detail.startswith("offline")
    assert "PortLost" in health.last_error


async def test_starting_without_the_device_fails_clearly(tmp_path: Path) -> None:
    board = HealthBoard()
    scanner = Scanner("s", SerialSettings(str(tmp_path / "absent")), board, Inbox().on_scan)
    with trio.fail_after(DEADLINE), pytest.raises(PortNotFound):
        await scanner.run()
    assert board.get("s").state == "offline"


async def test_supervised_scanner_reconnects_and_the_lane_keeps_going(tmp_path: Path) -> None:
    port = VirtualPort(tmp_path / "scanner")
    port.plug()
    board, inbox = HealthBoard(), Inbox()
    lane_ticks = 0

    async def lane(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        nonlocal lane_ticks
        task_status.started()
        while True:
            lane_ticks += 1
            await trio.sleep(0.01)

    scanner = Scanner("scanner-1", SerialSettings(port.path), board, inbox.on_scan)
    devices = devices_supervisor(board, ChildSpec("lane-1", lane), ChildSpec("scanner-1", scanner.run))
    sim = ScannerSim(port)
    try:
        with trio.fail_after(DEADLINE):
            async with trio.open_nursery() as nursery:
                await nursery.start(devices.run)
                await board.wait_until("scanner-1", lambda h: h.state == "online")
                await sim.scan("1")
                assert (await inbox.next()).code == "1"

                port.unplug()
                down = await board.wait_until("scanner-1", lambda h: h.restarts >= 2)
                assert down.state in ("offline", "backoff", "starting")
                assert down.detail.startswith("offline")
                ticks_before = lane_ticks
                await board.wait_until("scanner-1", lambda h: h.restarts >= 4)  # still retrying
                assert lane_ticks > ticks_before  # the lane kept working through the outage

                port.plug()
                await board.wait_until("scanner-1", lambda h: h.state == "online")
                await sim.scan("2")
                assert (await inbox.next()).code == "2"
                assert board.get("lane-1").restarts == 0
                assert board.get("devices").state == "running"
                nursery.cancel_scope.cancel()
    finally:
        port.close()
    assert inbox.seen == [ScanEvent("1"), ScanEvent("2")]
