"""A 2 x 20 Epson DM-D customer display on a VirtualPort, with a model of its screen.

Tests assert on what the customer would read (Screen.lines), not on the bytes, so a change of how we
drive the display (say, clearing instead of overwriting) keeps passing as long as the screen is right.
The model follows the DM-D110 command reference for the commands it knows; unknown commands are
consumed at their documented length so they cannot print garbage.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from devices.sim.pty import VirtualPort, serve

COLUMNS, ROWS = 20, 2
CODE_TABLES = {0: "cp437", 2: "cp850", 3: "cp860", 4: "cp863", 5: "cp865", 16: "cp1252", 17: "cp866", 18: "cp852"}
# Total length of each ESC / US command by its second byte; anything else is taken as two bytes long.
_ESC_LENGTH = {ord("@"): 2, ord("t"): 3, ord("R"): 3, ord("="): 3, ord("%"): 3, ord("?"): 3}
_US_LENGTH = {ord("$"): 4, ord("#"): 4, ord("C"): 3, ord("X"): 3, ord("E"): 3, ord("r"): 3, ord("."): 3, ord(","): 3}
_US_LENGTH[ord(";")] = 3


class Screen:
    """What the display shows, driven by the bytes it receives (split anywhere)."""

    def __init__(self) -> None:
        self._pending = bytearray()
        self.initialise()

    def initialise(self) -> None:
        self.rows = [[" "] * COLUMNS for _ in range(ROWS)]
        self.x = self.y = 0
        self.codepage = CODE_TABLES[0]
        self.mode = "overwrite"
        self.cursor_visible = True

    @property
    def lines(self) -> tuple[str, str]:
        return "".join(self.rows[0]), "".join(self.rows[1])

    def feed(self, data: bytes) -> None:
        self._pending += data
        buf = self._pending
        i = 0
        while i < len(buf):
            used = self._step(buf, i)
            if used == 0:
                break  # an incomplete command: wait for the rest
            i += used
        del buf[:i]

    def _step(self, buf: bytearray, i: int) -> int:
        byte = buf[i]
        if byte in (0x1B, 0x1F):
            if i + 1 >= len(buf):
                return 0
            table = _ESC_LENGTH if byte == 0x1B else _US_LENGTH
            length = table.get(buf[i + 1], 2)
            if i + length > len(buf):
                return 0
            self._command(bytes(buf[i : i + length]))
            return length
        if byte >= 0x20:
            self._put(bytes([byte]).decode(self.codepage, errors="replace"))
        elif byte == 0x0C:  # CLR
            self.rows = [[" "] * COLUMNS for _ in range(ROWS)]
            self.x = self.y = 0
        elif byte == 0x0B:  # HOM
            self.x = self.y = 0
        elif byte == 0x0D:  # CR
            self.x = 0
        elif byte == 0x0A:  # LF
            self.y = (self.y + 1) % ROWS
        elif byte == 0x08:  # BS
            self.x = max(0, self.x - 1)
        elif byte == 0x09:  # HT
            self._advance()
        elif byte == 0x18:  # CAN: clear the cursor line
            self.rows[self.y] = [" "] * COLUMNS
        return 1

    def _command(self, cmd: bytes) -> None:
        if cmd == b"\x1b@":
            self.initialise()
        elif cmd[:2] == b"\x1bt":
            self.codepage = CODE_TABLES.get(cmd[2], CODE_TABLES[0])
        elif cmd[:2] == b"\x1f$":
            x, y = cmd[2], cmd[3]
            if 1 <= x <= COLUMNS and 1 <= y <= ROWS:  # out of range: ignored, as the display does
                self.x, self.y = x - 1, y - 1
        elif cmd in (b"\x1f\x01", b"\x1f\x02", b"\x1f\x03"):
            self.mode = {1: "overwrite", 2: "vertical", 3: "horizontal"}[cmd[1]]
        elif cmd[:2] == b"\x1fC":
            self.cursor_visible = bool(cmd[2])

    def _put(self, ch: str) -> None:
        self.rows[self.y][self.x] = ch
        self._advance()

    def _advance(self) -> None:
        self.x += 1
        if self.x == COLUMNS:
            self.x = 0
            if self.mode == "vertical" and self.y == ROWS - 1:
                self.rows = [self.rows[1], [" "] * COLUMNS]
            else:
                self.y = (self.y + 1) % ROWS


class DisplaySim:
    """Records every byte received and keeps the screen model up to date."""

    def __init__(self, port: VirtualPort) -> None:
        self.port = port
        self.screen = Screen()
        self.received = bytearray()
        self._changed = trio.Event()

    @property
    def lines(self) -> tuple[str, str]:
        return self.screen.lines

    def power_cycle(self) -> None:
        """A display unplugged and plugged again has forgotten everything it was told."""
        self.screen = Screen()
        self.received.clear()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await serve(self.port, self._on_data)

    async def _on_data(self, stream: trio.abc.Stream, data: bytes) -> None:
        self.received += data
        self.screen.feed(data)
        self._changed.set()
        self._changed = trio.Event()

    async def wait_until(self, predicate: Callable[[tuple[str, str]], bool]) -> tuple[str, str]:
        """The screen once `predicate` holds for it; bound the wait with trio.fail_after."""
        while not predicate(self.lines):
            await self._changed.wait()
        return self.lines

    async def wait_received(self, count: int) -> None:
        """Wait until at least `count` bytes have arrived in all."""
        while len(self.received) < count:
            await self._changed.wait()

    async def wait_for(self, line1: str, line2: str) -> tuple[str, str]:
        """Wait until the screen reads exactly these lines (each compared padded to 20 columns)."""
        want = (line1.ljust(COLUMNS), line2.ljust(COLUMNS))
        return await self.wait_until(lambda lines: lines == want)
