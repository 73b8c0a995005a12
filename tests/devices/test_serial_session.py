"""serial_session over real pseudo-terminals: offline with the reason while the port is missing or lost,
online again when it is back, with the devices supervisor doing the retrying."""

from __future__ import annotations

import termios

import pytest
import trio

from devices.display import CustomerDisplay
from devices.scale import Scale
from devices.scanner import Scanner
from devices.serialport import PortLost, PortNotFound, SerialSettings, serial_session
from devices.sim.pty import VirtualPort
from devices.terminal import ZvtSerial
from runtime.health import Health, HealthBoard
from runtime.supervision import ChildSpec
from tests.kit.devices import devices_supervisor

DEADLINE = 10
NAME = "echo-1"


class Echo:
    """The smallest serial device actor: one life on the port through serial_session, echoing what the
    device sends, so a test can see that the port it was handed really is the device's."""

    def __init__(self, settings: SerialSettings, board: HealthBoard) -> None:
        self.settings = settings
        self.board = board
        self.lives = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with serial_session(NAME, self.settings, self.board) as port:
            self.lives += 1
            task_status.started()
            port.online()
            while True:
                await port.send(await port.receive())


class States:
    """Every state the entry passes through, in order (the board keeps only the latest)."""

    def __init__(self, board: HealthBoard) -> None:
        self.seen: list[str] = []
        board.listeners.append(self._heard)

    def _heard(self, entry: Health) -> None:
        if entry.name == NAME:
            self.seen.append(entry.state)


async def echoed(port: VirtualPort, data: bytes) -> bytes:
    await port.send(data)
    got = b""
    while len(got) < len(data):
        got += await port.stream.receive_some()
    return got


async def test_a_missing_port_is_offline_with_the_reason(port: VirtualPort) -> None:
    board = HealthBoard()
    port.unplug()
    with trio.fail_after(DEADLINE), pytest.raises(PortNotFound):
        await Echo(SerialSettings(port.path), board).run()
    health = board.get(NAME)
    assert health.state == "offline"
    assert health.detail.startswith("offline:") and "not found" in health.detail and port.path in health.detail
    assert health.last_error.startswith("PortNotFound")


async def test_a_port_that_appears_comes_online(port: VirtualPort) -> None:
    board = HealthBoard()
    states = States(board)
    echo = Echo(SerialSettings(port.path), board)
    port.unplug()
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            await nursery.start(devices_supervisor(board, ChildSpec(NAME, echo.run)).run)
            await board.wait_until(NAME, lambda h: h.restarts >= 2)  # retried with backoff, still missing
            assert "offline" in states.seen and "online" not in states.seen
            assert echo.lives == 0
            port.plug()
            health = await board.wait_until(NAME, lambda h: h.state == "online")
            assert health.detail == f"online at {port.path}"
            assert await echoed(port, b"hello") == b"hello"
            nursery.cancel_scope.cancel()


async def test_a_port_that_vanishes_goes_offline_then_comes_back(port: VirtualPort) -> None:
    board = HealthBoard()
    states = States(board)
    echo = Echo(SerialSettings(port.path), board)
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            await nursery.start(devices_supervisor(board, ChildSpec(NAME, echo.run)).run)
            await board.wait_until(NAME, lambda h: h.state == "online")
            assert await echoed(port, b"one") == b"one"

            port.unplug()  # the actor is blocked reading: the loss reaches it as end of file
            down = await board.wait_until(NAME, lambda h: h.restarts >= 1)
            assert down.detail.startswith("offline:")
            assert states.seen[states.seen.index("online") + 1] == "offline"  # said before any retry
            assert "PortLost" in down.last_error or "PortNotFound" in down.last_error

            port.plug()
            await board.wait_until(NAME, lambda h: h.state == "online")
            assert await echoed(port, b"two") == b"two"  # a fresh port on the new pty
            assert echo.lives == 2
            nursery.cancel_scope.cancel()


async def test_loss_inside_the_session_is_reported_and_raised_as_itself(port: VirtualPort) -> None:
    board = HealthBoard()
    with trio.fail_after(DEADLINE), pytest.raises(PortLost, match="gone"):
        async with serial_session(NAME, SerialSettings(port.path), board) as session:
            session.online()
            raise PortLost(f"{port.path}: gone")
    health = board.get(NAME)
    assert health.state == "offline" and health.last_error == f"PortLost: {port.path}: gone"


async def test_cancelling_a_session_leaves_the_entry_alone(port: VirtualPort) -> None:
    board = HealthBoard()
    with trio.fail_after(DEADLINE):
        with trio.move_on_after(0.05):
            async with serial_session(NAME, SerialSettings(port.path), board) as session:
                session.online()
                await session.receive()  # nothing comes: the deadline cancels us here
        assert board.get(NAME).state == "online"  # being stopped is not the device going away
        async with await SerialSettings(port.path).open():  # and the port was closed (its lock released)
            pass


@pytest.mark.parametrize(
    ("field", "value"),
    [("baudrate", 0), ("baudrate", -9600), ("bytesize", 9), ("parity", "X"), ("stopbits", 3)],
)
def test_settings_no_port_takes_are_refused_on_construction(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        SerialSettings("/dev/ttyUSB0", **{field: value})  # type: ignore[arg-type]


async def _no_scan(event: object) -> None:
    pass


def test_framing_left_open_is_the_drivers_and_configured_framing_wins() -> None:
    board, path = HealthBoard(), "/dev/ttyUSB0"
    assert Scale("s", SerialSettings(path), board).serial == SerialSettings(path, 9600, 7, "E", 1)
    assert CustomerDisplay("d", SerialSettings(path), board).serial == SerialSettings(path, 9600, 8, "N", 1)
    assert Scanner("c", SerialSettings(path), board, _no_scan).serial == SerialSettings(path, 9600, 8, "N", 1)
    own = SerialSettings(path, 19200, 8, "N", 2)
    assert Scale("s", own, board).serial == own


async def test_a_zvt_terminal_line_gets_two_stop_bits(port: VirtualPort) -> None:
    with trio.fail_after(DEADLINE):
        async with await ZvtSerial(SerialSettings(port.path)).connect() as stream:
            assert isinstance(stream, trio.lowlevel.FdStream)
            assert termios.tcgetattr(stream.fileno())[2] & termios.CSTOPB
