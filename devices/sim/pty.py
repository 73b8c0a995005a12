"""Pseudo-terminals standing in for serial cables, so device actors are tested through the real tty path.

The actor opens the slave side exactly as it opens /dev/ttyUSB0 (pyserial, termios, FdStream); the
simulator talks on the master side. Pulling the cable is closing the master: the actor's reads then hit
end of file, as with a USB adapter pulled out.

A new pty gets a new /dev/pts/N, while a device's configuration names one path for ever; VirtualPort
therefore publishes the slave under a stable symlink that it re-points on every plug and removes on
unplug. Removing it (instead of leaving it dangling) matters: pts numbers are reused, and a stale link
could lead a reconnecting actor into some other program's terminal.
"""

from __future__ import annotations

import fcntl
import os
import struct
import termios
import tty
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio


def open_pty() -> tuple[int, str]:
    """A new pseudo-terminal: (master fd, slave path), the slave already raw.

    Raw from the start, because a simulator may write before any actor has opened the slave, and a
    cooked tty would echo those bytes back to the simulator or translate its CRs.
    """
    master, slave = os.openpty()
    try:
        tty.setraw(slave)
        path = os.ttyname(slave)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    return master, path


class VirtualPort:
    """The device end of a virtual serial cable that can be unplugged and plugged again at `path`."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path)
        self._stream: trio.lowlevel.FdStream | None = None
        self._keeper = -1
        self._slave = ""
        self._plugged = trio.Event()

    @property
    def path(self) -> str:
        """Where the device appears; what the device actor is configured with."""
        return str(self._path)

    @property
    def slave(self) -> str:
        """The current /dev/pts/N behind `path` ("" while unplugged)."""
        return self._slave

    @property
    def plugged(self) -> bool:
        return self._stream is not None

    @property
    def stream(self) -> trio.lowlevel.FdStream:
        if self._stream is None:
            raise trio.ClosedResourceError(f"{self.path} is unplugged")
        return self._stream

    def plug(self) -> None:
        """Connect a fresh pty and make it appear at `path`."""
        if self._stream is not None:
            raise RuntimeError(f"{self.path} is already plugged")
        master, slave = open_pty()
        try:
            # Our own descriptor on the slave keeps the pty "connected" while the actor has it closed
            # (between its restarts): without one, reads on the master fail with EIO.
            self._keeper = os.open(slave, os.O_RDWR | os.O_NOCTTY)
            self._stream = trio.lowlevel.FdStream(master)
        except BaseException:
            os.close(master)
            if self._keeper >= 0:
                os.close(self._keeper)
                self._keeper = -1
            raise
        self._slave = slave
        staging = self._path.with_name(f".{self._path.name}.{os.getpid()}.new")
        staging.unlink(missing_ok=True)
        staging.symlink_to(slave)
        os.replace(staging, self._path)  # atomic: the path never points at nothing while plugged
        self._plugged.set()

    def unplug(self) -> None:
        """Pull the cable: the path disappears and the actor's open port reaches end of file."""
        if self._stream is None:
            return
        self._path.unlink(missing_ok=True)
        stream, self._stream = self._stream, None
        self._plugged = trio.Event()
        stream.close()  # wakes a simulator task blocked on it with ClosedResourceError
        os.close(self._keeper)
        self._keeper = -1
        self._slave = ""

    def close(self) -> None:
        self.unplug()

    async def wait_plugged(self) -> trio.lowlevel.FdStream:
        while self._stream is None:
            await self._plugged.wait()
        return self._stream

    async def send(self, data: bytes) -> None:
        """What the device transmits."""
        await self.stream.send_all(data)

    def unread(self) -> int:
        """Bytes the device sent that the actor has not read yet (the slave's input queue)."""
        if self._keeper < 0:
            return 0
        raw = fcntl.ioctl(self._keeper, termios.TIOCINQ, b"\0\0\0\0")
        return int(struct.unpack("i", raw)[0])

    async def wait_drained(self) -> None:
        """Until the actor has read everything sent so far, so a test can tell "the actor saw this" from
        "the bytes are still in the tty". The kernel has no notification for that, hence the polling."""
        while self.unread():  # noqa: ASYNC110
            await trio.sleep(0.005)


async def serve(port: VirtualPort, on_data: Callable[[trio.lowlevel.FdStream, bytes], Awaitable[None]]) -> None:
    """Feed what the actor sends to `on_data`, across any number of unplug/plug cycles, until cancelled."""
    while True:
        stream = await port.wait_plugged()
        try:
            while True:
                data = await stream.receive_some()
                if not data:
                    break
                await on_data(stream, data)
        except trio.ClosedResourceError:
            pass  # unplugged under us: wait for the next plug
        if port.plugged and port.stream is stream:
            raise RuntimeError(f"{port.path}: the master side ended while plugged")
