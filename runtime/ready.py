"""Ready files: how a node started on port 0 tells its parent (the demo, a test) where it listens."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio


def write_ready_file(path: Path, **info: Any) -> None:
    """Written atomically once the node is fully up, so a reader never sees half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(info))
    tmp.replace(path)


async def wait_ready_file(path: Path, alive: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Poll for a ready file (bound it with trio.fail_after); `alive()` returning False, because the
    process died, stops the wait early."""
    target = trio.Path(path)
    while not await target.exists():
        if alive is not None and not alive():
            raise RuntimeError(f"process exited before writing {path}")
        await trio.sleep(0.05)
    info: dict[str, Any] = json.loads(await target.read_text())
    return info
