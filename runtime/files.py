"""Files a node writes whole: keys, certificates, exports. One way to write them, because each of the
ways it can go wrong has bitten a point-of-sale system somewhere: a crash leaving half a file (written
to `NAME.partial`, flushed, then renamed over the name), a secret readable by others for a moment
(created with its final mode, never chmod-ed after), and a planted symlink redirecting the write
(the partial is created exclusively with O_NOFOLLOW after removing whatever had its name, and the
rename replaces a link at the final name rather than writing through it)."""

from __future__ import annotations

import os
from pathlib import Path

SECRET = 0o600
PUBLIC = 0o644


def replace_file(path: Path, data: bytes, *, mode: int = PUBLIC) -> None:
    """Make `path` hold exactly `data`, all or nothing. Raises OSError (the caller says it in words)."""
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)  # unlinks a planted symlink itself, never its target
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
