"""Serial ports as Trio streams: pyserial sets the line up, Trio does the I/O.

pyserial knows every platform's termios quirks (baud constants, parity flags, raw mode) but its I/O is
blocking or thread-based; Trio's FdStream does non-blocking I/O on a file descriptor without a thread per
port. So pyserial opens and configures the tty, we keep a duplicate of its descriptor and close pyserial
(setting one more termios value that pyserial's select-based reads do not need, see _read_at_least_one).
Line settings live in the tty, not in the descriptor, so they survive pyserial's close; so does the
exclusive lock (flock belongs to the open file description, which the duplicate shares), which keeps a
second process (or a second actor by mistake) off a port that is in use.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import termios
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import serial
import trio

from runtime.health import HealthBoard

BYTESIZES = (5, 6, 7, 8)
PARITIES = ("N", "E", "O", "M", "S")
STOPBITS = (1, 1.5, 2)


class SerialPortError(OSError):
    """The port exists but cannot be used: busy (locked by someone else), not a tty, refused settings."""


class PortNotFound(SerialPortError, FileNotFoundError):
    """Nothing at the configured path: the device is unplugged or the path is wrong."""


class PortLost(ConnectionError):
    """A port that was open went away (end of file or I/O error): the device was unplugged or powered off.

    Device actors raise it so their supervisor restarts them with backoff until the device is back.
    """


def _open_fd(port: str, baudrate: int, bytesize: int, parity: str, stopbits: float) -> int:
    if not os.path.exists(port):
        raise PortNotFound(errno.ENOENT, f"serial port {port} not found (unplugged?)", port)
    try:
        ser = serial.Serial(
            port=port,
            baudrate=baudrate,
            bytesize=bytesize,
            parity=parity,
            stopbits=stopbits,
            timeout=0,
            exclusive=True,
        )
    except (serial.SerialException, termios.error) as exc:
        code = getattr(exc, "errno", None)
        code = code if isinstance(code, int) else errno.EIO
        if code == errno.ENOENT:  # vanished between the check and the open
            raise PortNotFound(code, f"serial port {port} not found (unplugged?)", port) from exc
        raise SerialPortError(code, f"cannot open serial port {port}: {exc}", port) from exc
    try:
        fd = os.dup(ser.fileno())
    finally:
        ser.close()
    try:
        _read_at_least_one(fd)
    except termios.error as exc:
        os.close(fd)
        raise SerialPortError(errno.EIO, f"cannot configure serial port {port}: {exc}", port) from exc
    except BaseException:
        os.close(fd)
        raise
    return fd


def _read_at_least_one(fd: int) -> None:
    """VMIN 1, VTIME 0. pyserial leaves VMIN at 0 because it select()s before reading; but a raw tty
    with VMIN 0 answers a read with nothing to read by returning zero bytes, which a stream reports as end
    of file. With VMIN 1 a non-blocking read with nothing to read fails with EAGAIN and Trio waits, and
    zero bytes keep their one meaning: the device hung up."""
    attrs = termios.tcgetattr(fd)
    attrs[6][termios.VMIN] = 1
    attrs[6][termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


async def open_serial(
    port: str,
    *,
    baudrate: int = 9600,
    bytesize: int = 8,
    parity: str = "N",
    stopbits: float = 1,
) -> trio.abc.Stream:
    """Open `port` configured raw at the given line settings, as a Trio stream the caller must close.

    Raises PortNotFound (a FileNotFoundError) when nothing is at `port`, SerialPortError (an OSError) when
    it cannot be opened or locked, ValueError for settings pyserial does not know. Opening runs in a worker
    thread because a USB-serial adapter's open can stall for a moment, and a lane must not stall with it.
    """
    fd = await trio.to_thread.run_sync(_open_fd, port, baudrate, bytesize, parity, stopbits)
    try:
        return trio.lowlevel.FdStream(fd)
    except BaseException:
        os.close(fd)
        raise


async def read_some(stream: trio.abc.ReceiveStream, port: str) -> bytes:
    """Receive what the device sent, turning every way a port can disappear into PortLost.

    A tty whose device is gone reports end of file (a closed pty, a USB adapter pulled out) or an I/O
    error; either way nothing more will come from this descriptor, and only reopening the path can help.
    """
    try:
        data = await stream.receive_some()
    except trio.BrokenResourceError as exc:
        raise PortLost(f"{port}: {exc.__cause__ or 'broken'}") from exc
    if not data:
        raise PortLost(f"{port}: end of file (device unplugged?)")
    return bytes(data)


async def write_all(stream: trio.abc.SendStream, data: bytes, port: str) -> None:
    """Send to the device, turning a vanished port into PortLost (see read_some)."""
    try:
        await stream.send_all(data)
    except trio.BrokenResourceError as exc:
        raise PortLost(f"{port}: {exc.__cause__ or 'broken'}") from exc


@dataclass(frozen=True)
class SerialSettings:
    """Where a serial device is and how its line is set: what every serial device actor is built from.

    Framing left as None is the device's usual one, filled in by the actor (`usually`): a configuration
    names the port and maybe the speed, while 7E1 for an 8217 scale or 8N2 for a ZVT terminal is
    knowledge about the device, kept with its driver. Checked on construction, so a bad setting is a
    clear error when the store starts rather than a device that fails on every restart.
    """

    port: str
    baudrate: int = 9600
    bytesize: int | None = None
    parity: str | None = None
    stopbits: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.baudrate, int) or self.baudrate <= 0:
            raise ValueError(f"{self.port}: baudrate must be a positive whole number, not {self.baudrate!r}")
        if self.bytesize is not None and self.bytesize not in BYTESIZES:
            raise ValueError(f"{self.port}: bytesize must be one of {BYTESIZES}, not {self.bytesize!r}")
        if self.parity is not None and self.parity not in PARITIES:
            raise ValueError(f"{self.port}: parity must be one of {', '.join(PARITIES)}, not {self.parity!r}")
        if self.stopbits is not None and self.stopbits not in STOPBITS:
            raise ValueError(f"{self.port}: stopbits must be one of {STOPBITS}, not {self.stopbits!r}")

    def usually(self, *, bytesize: int = 8, parity: str = "N", stopbits: float = 1) -> SerialSettings:
        """These settings with the framing they leave open set to a device's usual one (8N1 by default)."""
        return dataclasses.replace(
            self,
            bytesize=bytesize if self.bytesize is None else self.bytesize,
            parity=parity if self.parity is None else self.parity,
            stopbits=stopbits if self.stopbits is None else self.stopbits,
        )

    def describe(self) -> str:
        return f"serial {self.port}"

    async def open(self) -> trio.abc.Stream:
        """The port as a stream (see open_serial); framing still left open is 8N1."""
        return await open_serial(
            self.port,
            baudrate=self.baudrate,
            bytesize=8 if self.bytesize is None else self.bytesize,
            parity="N" if self.parity is None else self.parity,
            stopbits=1 if self.stopbits is None else self.stopbits,
        )


class SerialSession:
    """One life of a device actor on its open port: the stream, and the port's name bound into every
    read and write so that losing the port always surfaces as PortLost naming it."""

    def __init__(self, name: str, settings: SerialSettings, health: HealthBoard, stream: trio.abc.Stream) -> None:
        self.name = name
        self.settings = settings
        self.stream = stream
        self._health = health

    def online(self) -> None:
        """Publish that the device is up: the actor calls it once it is really usable (after its
        task_status.started(), and after any greeting the device needs), not merely when the port opened."""
        self._health.set(self.name, "online", detail=f"online at {self.settings.port}")

    async def receive(self) -> bytes:
        return await read_some(self.stream, self.settings.port)

    async def send(self, data: bytes) -> None:
        await write_all(self.stream, data, self.settings.port)


def _offline(health: HealthBoard, name: str, exc: BaseException) -> None:
    """The device's health entry says offline and why, before its supervisor backs off and retries."""
    health.set(name, "offline", error=f"{type(exc).__name__}: {exc}", detail=f"offline: {exc}")


@asynccontextmanager
async def serial_session(name: str, settings: SerialSettings, health: HealthBoard) -> AsyncIterator[SerialSession]:
    """One life of a serial device actor: open the port, hand it over, close it; offline with the reason
    when the port cannot be opened (PortNotFound, SerialPortError) or is lost (PortLost), re-raised.

    Retrying is not done here: the actor's `run` raises and the devices supervisor restarts it with its
    backoff (and counts the restarts on the health board), the same as for every other actor. Settings
    pyserial refuses (ValueError) and cancellation pass through without touching the health entry.
    """
    try:
        stream = await settings.open()
    except OSError as exc:
        _offline(health, name, exc)
        raise
    async with stream:
        try:
            yield SerialSession(name, settings, health, stream)
        except PortLost as exc:
            _offline(health, name, exc)
            raise
