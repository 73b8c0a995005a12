"""open_serial over real pseudo-terminals, and the VirtualPort cable that tests unplug and replug."""

from __future__ import annotations

import os
import termios
from pathlib import Path

import pytest
import trio
import trio.testing

from devices.serialport import PortLost, PortNotFound, SerialPortError, open_serial, read_some, write_all
from devices.sim.pty import VirtualPort, open_pty

DEADLINE = 10


async def receive_exactly(stream: trio.abc.ReceiveStream, n: int) -> bytes:
    data = b""
    while len(data) < n:
        data += await stream.receive_some()
    return data


async def test_open_pty_gives_a_raw_slave() -> None:
    master, slave = open_pty()
    try:
        fd = os.open(slave, os.O_RDWR | os.O_NOCTTY)
        try:
            lflag = termios.tcgetattr(fd)[3]
            assert not lflag & (termios.ICANON | termios.ECHO)
        finally:
            os.close(fd)
    finally:
        os.close(master)


async def test_bytes_flow_both_ways_unchanged(port: VirtualPort) -> None:
    with trio.fail_after(DEADLINE):
        async with await open_serial(port.path) as stream:
            everything = bytes(range(256))  # raw: no CR/LF translation, no echo, no stripped bit 8
            await port.send(everything)
            assert await receive_exactly(stream, 256) == everything
            await stream.send_all(b"W\r\n\x00\xff")
            assert await receive_exactly(port.stream, 5) == b"W\r\n\x00\xff"


async def test_line_settings_reach_the_tty(port: VirtualPort) -> None:
    with trio.fail_after(DEADLINE):
        async with await open_serial(port.path, baudrate=19200, bytesize=7, parity="E", stopbits=2) as stream:
            assert isinstance(stream, trio.lowlevel.FdStream)
            iflag, _oflag, cflag, lflag, ispeed, _ospeed, _cc = termios.tcgetattr(stream.fileno())
            assert ispeed == termios.B19200
            assert cflag & termios.CSTOPB
            # Character size and parity cannot be checked here: Linux ptys force CS8 without parity.
            assert not lflag & (termios.ICANON | termios.ECHO | termios.ISIG)
            assert not iflag & (termios.ICRNL | termios.IXON)


async def test_missing_port_is_a_clear_file_not_found(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE):
        with pytest.raises(PortNotFound) as info:
            await open_serial(str(tmp_path / "ttyUSB7"))
        assert isinstance(info.value, FileNotFoundError)
        assert isinstance(info.value, OSError)
        assert "ttyUSB7" in str(info.value) and "not found" in str(info.value)


async def test_a_port_in_use_is_refused(port: VirtualPort) -> None:
    with trio.fail_after(DEADLINE):
        async with await open_serial(port.path):
            with pytest.raises(SerialPortError, match="lock"):
                await open_serial(port.path)
        async with await open_serial(port.path):  # released on close
            pass


async def test_not_a_tty_is_refused(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE):
        plain = tmp_path / "file"
        plain.write_bytes(b"")
        with pytest.raises(SerialPortError):
            await open_serial(str(plain))


async def test_bad_settings_are_a_value_error(port: VirtualPort) -> None:
    with trio.fail_after(DEADLINE):
        with pytest.raises(ValueError):
            await open_serial(port.path, parity="X")


async def test_unplug_is_port_lost_for_reader_and_writer(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE):
        port = VirtualPort(tmp_path / "cable")
        port.plug()
        async with await open_serial(port.path) as stream:
            async with trio.open_nursery() as nursery:
                lost: list[BaseException] = []

                async def reader() -> None:
                    try:
                        await read_some(stream, port.path)
                    except PortLost as exc:
                        lost.append(exc)

                nursery.start_soon(reader)
                await trio.testing.wait_all_tasks_blocked()
                port.unplug()
            assert len(lost) == 1
            with pytest.raises(PortLost):
                await write_all(stream, b"x", port.path)
        assert not await trio.Path(port.path).is_symlink()  # gone while unplugged, never dangling


async def test_replug_appears_at_the_same_path_on_a_new_pty(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE):
        port = VirtualPort(tmp_path / "scanner")
        port.plug()
        first = port.slave
        port.unplug()
        with pytest.raises(PortNotFound):
            await open_serial(port.path)
        port.plug()
        try:
            assert str(await trio.Path(port.path).resolve()) == port.slave
            async with await open_serial(port.path) as stream:
                await port.send(b"back")
                assert await receive_exactly(stream, 4) == b"back"
            assert first  # the old slave was a real pts path
        finally:
            port.close()


async def test_unread_counts_what_the_actor_has_not_read(port: VirtualPort) -> None:
    with trio.fail_after(DEADLINE):
        async with await open_serial(port.path) as stream:
            await port.send(b"12345")
            while port.unread() < 5:  # noqa: ASYNC110 - the bytes cross the pty asynchronously
                await trio.sleep(0.005)
            assert await receive_exactly(stream, 5) == b"12345"
            await port.wait_drained()
            assert port.unread() == 0
