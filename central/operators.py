"""The operator's credential for central's admin subprotocol (`storepos central reconcile`).

Whoever reaches central's port is not thereby an operator: an admin connection first presents the token
kept in central's folder (the parent of its database), `operator.token`, readable by its owner only. The
operator's tools on that machine (or wherever the file is copied, as carefully as a key) read it; central
reads it again at every admin connection, so replacing the file changes the credential without a restart,
and a central without one refuses every admin connection rather than letting anyone in.

The token is 32 random bytes (URL-safe text), compared in constant time, so a wrong guess learns nothing
of how close it came.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

TOKEN_FILE = "operator.token"
MAX_TOKEN = 256  # characters: a token is 43; anything much longer is not one and is not compared


class TokenError(Exception):
    """No usable operator token: the text says which file and why."""


def token_path(folder: Path) -> Path:
    return folder / TOKEN_FILE


def ensure_token(folder: Path) -> Path:
    """Central's operator token, made (0600) when there is none; an existing one is kept as it is.

    Written beside its final name and linked into place, so a reader never sees a half-written token and
    two starts racing cannot make two different ones."""
    path = token_path(folder)
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / f".{TOKEN_FILE}.{secrets.token_hex(8)}"
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(staging, 0o600)  # whatever the umask was
        try:
            os.link(staging, path)
        except FileExistsError:
            pass  # another start made it first: theirs stands
    finally:
        staging.unlink(missing_ok=True)
    return path


def read_token(folder: Path) -> str:
    """The operator token in `folder`; TokenError saying why there is none to use."""
    path = token_path(folder)
    try:
        with path.open("rb") as held:
            raw = held.read(MAX_TOKEN + 2)
    except FileNotFoundError:
        raise TokenError(f"{path}: no operator token (storepos central init or central run makes it)") from None
    except OSError as exc:
        raise TokenError(f"{path}: cannot read the operator token: {exc.strerror or exc}") from None
    try:
        token = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise TokenError(f"{path}: not an operator token (not plain text)") from None
    if not token or len(token) > MAX_TOKEN or any(c.isspace() for c in token):
        raise TokenError(f"{path}: not an operator token (empty, too long or more than one word)")
    return token


def matches(expected: str, given: str) -> bool:
    """Whether `given` is the operator token, in time that does not depend on where they differ."""
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))
