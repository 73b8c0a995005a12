"""A lane's worth of simulated peripherals, for the demo, integration tests and benchmarks.

A virtual receipt printer on TCP (with the drawer behind it), a ZVT card terminal on TCP, and a scanner,
customer display and scale each behind a pseudo-terminal published at a stable path in `folder`. `devices_toml` is the
[[devices]] block that points a store node at them, exactly as real hardware would be configured.
"""

from __future__ import annotations

from pathlib import Path

import trio

from devices.sim.display import DisplaySim
from devices.sim.printer import VirtualPrinter
from devices.sim.pty import VirtualPort
from devices.sim.scale import ScaleSim
from devices.sim.scanner import ScannerSim
from devices.sim.zvt import ZvtSimulator


class LaneKit:
    def __init__(self, folder: Path, lane: int, currency: str = "SEK") -> None:
        self.lane = lane
        self.printer = VirtualPrinter()
        self.terminal = ZvtSimulator(currency=currency)
        self.scanner_port = VirtualPort(folder / f"scanner-{lane}")
        self.display_port = VirtualPort(folder / f"display-{lane}")
        self.scale_port = VirtualPort(folder / f"scale-{lane}")
        self.scanner = ScannerSim(self.scanner_port, terminator="CRLF")
        self.display = DisplaySim(self.display_port)
        self.scale = ScaleSim(self.scale_port)
        self._nursery: trio.Nursery | None = None

    def unplug_printer(self) -> None:
        self.printer.unplug()

    async def replug_printer(self) -> None:
        """Switch the printer back on, listening on the same port as before."""
        assert self._nursery is not None
        await self._nursery.start(self.printer.run)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(self.printer.run)
            await nursery.start(self.terminal.run)
            for port in (self.scanner_port, self.display_port, self.scale_port):
                port.plug()
            await nursery.start(self.display.run)
            await nursery.start(self.scale.run)
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                for port in (self.scanner_port, self.display_port, self.scale_port):
                    port.close()

    def devices_toml(self) -> str:
        lane = self.lane
        return f"""
[[devices]]
kind = "printer"
lane = {lane}
port = "tcp://127.0.0.1:{self.printer.port}"

[[devices]]
kind = "drawer"
lane = {lane}
alert_after = 60

[[devices]]
kind = "scanner"
lane = {lane}
port = "{self.scanner_port.path}"

[[devices]]
kind = "display"
lane = {lane}
port = "{self.display_port.path}"

[[devices]]
kind = "scale"
lane = {lane}
port = "{self.scale_port.path}"

[[devices]]
kind = "terminal"
lane = {lane}
port = "tcp://127.0.0.1:{self.terminal.port}"
"""
