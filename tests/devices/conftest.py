"""What the serial device actor tests share: the virtual cable they plug the actor into."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from devices.sim.pty import VirtualPort


@pytest.fixture
async def port(tmp_path: Path) -> AsyncIterator[VirtualPort]:
    """A plugged virtual serial port at a stable path; closed (unplugged) after the test."""
    vp = VirtualPort(tmp_path / "ttyUSB0")
    vp.plug()
    yield vp
    vp.close()
