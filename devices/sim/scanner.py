"""A serial barcode scanner on a VirtualPort: sends scans as a real one would, and the faults real ones have."""

from __future__ import annotations

from devices.sim.pty import VirtualPort

TERMINATOR_BYTES = {"CR": b"\r", "LF": b"\n", "CRLF": b"\r\n"}
NOISE = b"\x00\xff\x13\x7f\x1b\x80"  # a plug-in glitch: NUL, 0xFF, XOFF, DEL, ESC, a high byte


class ScannerSim:
    """The scanner is programmed once (terminator, AIM prefix), as in a store; tests then scan through it."""

    def __init__(self, port: VirtualPort, *, terminator: str = "CR", aim: bool = False) -> None:
        self.port = port
        self.terminator = TERMINATOR_BYTES[terminator]
        self.aim = aim

    def line(self, code: str, symbology: str = "E0") -> bytes:
        """The bytes a scan of `code` puts on the wire; `symbology` is the AIM identifier without "]"."""
        prefix = f"]{symbology}".encode("ascii") if self.aim else b""
        return prefix + code.encode("ascii") + self.terminator

    async def scan(self, code: str, symbology: str = "E0") -> None:
        await self.port.send(self.line(code, symbology))

    async def send_raw(self, data: bytes) -> None:
        await self.port.send(data)

    async def noise(self, data: bytes = NOISE) -> None:
        await self.port.send(data)

    async def truncated(self, code: str, keep: int = 5) -> None:
        """A scan whose tail was lost: its first `keep` bytes and no terminator."""
        await self.port.send(self.line(code)[:keep])
