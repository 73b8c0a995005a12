"""End-to-end fixtures: real `storepos` processes, all stopped at teardown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from devtools.processes import Processes


@pytest.fixture
async def procs(tmp_path: Path) -> AsyncIterator[Processes]:
    p = Processes(tmp_path)
    try:
        yield p
    finally:
        await p.stop_all()
