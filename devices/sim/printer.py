"""A virtual ESC/POS receipt printer on TCP (the "port 9100" raw protocol), for tests and benchmarks.

It behaves like an Epson TM in the ways our actor depends on: real-time commands (DLE EOT status requests,
DLE DC4 drawer pulses) are answered as they arrive, even while offline; everything else is buffered and
comes out on the paper only while the printer is online, so data sent into an open cover or an empty roll
is held and printed after recovery, as a real printer does. Faults are injected from the test: paper near
end / out, cover open, noise before a status reply, a lost reply, a connection reset after N bytes of print
data, and unplugging (stop serving, connections dropped) and plugging back in on the same port.

`received` is every byte that arrived (in total, and per connection in `connections`); `printed` is what
reached the paper, which `text()` turns into readable lines.
"""

from __future__ import annotations

import logging
import socket
import struct
from collections.abc import Callable
from typing import Literal

import trio
import trio.testing

from devices.escpos import PrinterStatus, status_byte
from devices.escpos_decode import Command, decode, split_commands

log = logging.getLogger(__name__)

Paper = Literal["ok", "near-end", "out"]
Fault = Literal["reset", "paper-out", "cover-open"]


class VirtualPrinter:
    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, open_level_high: bool = True) -> None:
        self.host = host
        self.port = port  # 0 until the first run binds; then kept, so a restart comes back on the same port
        self.open_level_high = open_level_high  # drawer sensor: pin 3 HIGH means open (as CashDrawer assumes)
        self.kick_opens_drawer = True  # a drawer kick springs the drawer open, as a real one does
        self.received = bytearray()
        self.connections: list[bytearray] = []
        self.printed = bytearray()
        self.kicks = 0
        self.status_queries: list[int] = []
        self.paper: Paper = "ok"
        self.cover_open = False
        self.drawer_open = False
        self._held: list[tuple[bytes, bool]] = []  # (data, is a drawer kick) accepted while offline
        self._noise = b""
        self._mute = 0
        self._fault: tuple[int, Fault] | None = None
        self._serving = False
        self._scope: trio.CancelScope | None = None
        self._conn_scopes: set[trio.CancelScope] = set()
        self._changed = trio.lowlevel.ParkingLot()

    # -- what the printer reports ---------------------------------------------------------------

    @property
    def online(self) -> bool:
        return not self.cover_open and self.paper != "out"

    @property
    def status(self) -> PrinterStatus:
        out = self.paper == "out"
        return PrinterStatus(
            online=self.online,
            drawer_pin3_high=self.drawer_open == self.open_level_high,
            cover_open=self.cover_open,
            paper_end_stop=out,
            paper_near_end=self.paper != "ok",
            paper_end=out,
        )

    def text(self, *, width: int | None = None) -> str:
        return decode(bytes(self.printed), width=width)

    # -- fault injection --------------------------------------------------------------------------

    def set_paper(self, paper: Paper) -> None:
        self.paper = paper
        self._maybe_resume()

    def set_cover(self, open_: bool) -> None:
        self.cover_open = open_
        self._maybe_resume()

    def set_drawer(self, open_: bool) -> None:
        self.drawer_open = open_
        self._notify()

    def inject_noise(self, data: bytes) -> None:
        """Send these bytes just before the next status reply (a noisy line, a confused printer)."""
        self._noise += data

    def mute_replies(self, count: int = 1) -> None:
        """Swallow the next `count` status requests without answering (a reply lost on the way)."""
        self._mute += count

    def fault_after(self, nbytes: int, fault: Fault = "reset") -> None:
        """After `nbytes` more bytes of print data (real-time commands do not count): reset the connection,
        or run out of paper / open the cover (the rest is held until the fault is cleared)."""
        self._fault = (nbytes, fault)

    def unplug(self) -> None:
        """Stop serving and drop every connection, as a printer that is switched off."""
        self._serving = False
        if self._scope is not None:
            self._scope.cancel()
        for scope in list(self._conn_scopes):
            scope.cancel()

    # -- serving ------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve TCP until unplugged or cancelled; reports the port (the same one again on a restart)."""
        listeners = await trio.open_tcp_listeners(self.port, host=self.host)
        self.port = listeners[0].socket.getsockname()[1]
        self._serving = True
        with trio.CancelScope() as self._scope:
            task_status.started(self.port)
            await trio.serve_listeners(self.serve_stream, listeners)
        self._serving = False
        for listener in listeners:
            await trio.aclose_forcefully(listener)

    async def connect_memory(self, nursery: trio.Nursery) -> trio.abc.Stream:
        """A connection without sockets (for virtual-time tests): served in `nursery`, refused if unplugged."""
        if not self._serving:
            raise ConnectionRefusedError("virtual printer is unplugged")
        ours, theirs = trio.testing.memory_stream_pair()
        nursery.start_soon(self.serve_stream, theirs)
        return ours

    def plug_in(self) -> None:
        """Accept memory connections (`connect_memory`) without a TCP listener; `run` does this for TCP."""
        self._serving = True

    async def serve_stream(self, stream: trio.abc.Stream) -> None:
        """One connection: record, answer real-time commands, print or hold the rest."""
        record = bytearray()
        self.connections.append(record)
        pending = b""
        with trio.CancelScope() as scope:
            self._conn_scopes.add(scope)
            try:
                async with stream:
                    while True:
                        data = await stream.receive_some(65536)
                        if not data:
                            return
                        record += data
                        self.received += data
                        commands, used = split_commands(pending + data)
                        pending = (pending + data)[used:]
                        if not await self._handle(stream, commands):
                            await self._reset(stream)
                            return
                        self._notify()
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                log.info("virtual printer: connection ended: %r", exc)
            finally:
                self._conn_scopes.discard(scope)
                self._notify()

    async def _handle(self, stream: trio.abc.Stream, commands: list[Command]) -> bool:
        """Process commands in order; False when an injected reset cuts the connection."""
        for cmd in commands:
            if cmd.name == "DLE EOT":
                await self._answer(stream, cmd.params[0])
            elif cmd.name == "DLE DC4":
                if cmd.params[:1] == b"\x01":
                    self._kick()
            elif self._fault is not None and len(cmd.raw) >= self._fault[0]:
                cut, fault = self._fault
                self._fault = None
                self._feed(cmd.raw[:cut], kick=False)
                if fault == "reset":
                    return False
                if fault == "paper-out":
                    self.paper = "out"
                else:
                    self.cover_open = True
                self._feed(cmd.raw[cut:], kick=False)
            else:
                if self._fault is not None:
                    self._fault = (self._fault[0] - len(cmd.raw), self._fault[1])
                self._feed(cmd.raw, kick=cmd.name == "ESC p")
        return True

    async def _answer(self, stream: trio.abc.Stream, n: int) -> None:
        self.status_queries.append(n)
        if self._mute:
            self._mute -= 1
            return
        noise, self._noise = self._noise, b""
        reply = bytes((status_byte(n, self.status),)) if 1 <= n <= 4 else b""
        await stream.send_all(noise + reply)

    def _feed(self, raw: bytes, *, kick: bool) -> None:
        """Buffered data: onto the paper while online, else held until the printer is back online."""
        if not raw:
            return
        if not self.online:
            self._held.append((raw, kick))
            return
        self.printed += raw
        if kick:
            self._kick()

    def _maybe_resume(self) -> None:
        if self.online and self._held:
            held, self._held = self._held, []
            for raw, kick in held:
                self._feed(raw, kick=kick)
        self._notify()

    def _kick(self) -> None:
        self.kicks += 1
        if self.kick_opens_drawer:
            self.drawer_open = True

    async def _reset(self, stream: trio.abc.Stream) -> None:
        """Abort the connection: a TCP reset where there is a socket, a plain close otherwise."""
        sock = getattr(stream, "socket", None)
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await trio.aclose_forcefully(stream)

    # -- waiting in tests ---------------------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.unpark_all()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once `predicate()` holds; it is checked after every change. Bound it with trio.fail_after."""
        while not predicate():
            await self._changed.park()
