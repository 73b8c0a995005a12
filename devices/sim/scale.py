"""A Mettler Toledo 8217 scale on a VirtualPort: answers W with whatever the test puts on it.

Each W is answered in turn with the state at the moment the W is read (a real scale latches the weight
when asked), after `delay`, so a test can make an answer arrive late and check it is not mistaken for
the answer to a later request.
"""

from __future__ import annotations

import trio

from devices.scale import MOTION, OUTSIDE_ZERO, OVER_CAPACITY, UNDER_ZERO
from devices.sim.pty import VirtualPort, serve


class ScaleSim:
    def __init__(self, port: VirtualPort, *, capacity_grams: int = 15_000) -> None:
        self.port = port
        self.capacity_grams = capacity_grams
        self.grams = 0
        self.motion = False
        self.zero_error = False
        self.silent = False  # reads requests, never answers (a scale in a menu, a broken TX wire)
        self.delay = 0.0  # seconds between reading a W and answering it
        self.garbage = b""  # sent just before each answer (line noise, a stray partial frame)
        self.truncate = False  # answers lose their CR (a frame cut short)
        self.requests = 0

    def frame(self) -> bytes:
        """The answer to a W in the current state."""
        bits = 0
        if self.grams > self.capacity_grams:
            bits |= OVER_CAPACITY
        if self.grams < 0:
            bits |= UNDER_ZERO
        if self.zero_error:
            bits |= OUTSIDE_ZERO
        if self.motion:
            bits |= MOTION
        if bits:
            return b"\x02?" + bytes([0x40 | bits]) + b"\r"
        kg, g = divmod(self.grams, 1000)
        return f"\x02{kg:02d}.{g:03d}\r".encode("ascii")

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await serve(self.port, self._on_data)

    async def _on_data(self, stream: trio.abc.Stream, data: bytes) -> None:
        for byte in data:
            if byte != ord("W"):
                continue  # the 8217 ignores what it does not understand on this link
            self.requests += 1
            if self.silent:
                continue
            answer = self.frame()
            if self.truncate:
                answer = answer[:-1]
            if self.delay:
                await trio.sleep(self.delay)
            await stream.send_all(self.garbage + answer)
