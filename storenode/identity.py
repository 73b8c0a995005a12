"""The store's identity on disk: its key, its enrolment token until central took it, and a new key
being rotated in until central took that.

    <data_dir>/identity/            0700
        store.key                   the current Ed25519 key (0600)
        enrolment.token             `storepos store init --token`'s one-time token, until a welcome (0600)
        next.key                    a key `storepos store rotate-key` prepared, until a welcome
        retired/<key id>.key        keys central has replaced, kept for reference

Read again at every connect, so `store init --token` or `rotate-key` run beside a running store are
taken at its next hello. Every file is written whole (temporary file, fsync, rename) and a step is
undone by nothing but the next one, so a crash anywhere leaves a store that can still connect: until
central welcomes a rotation the store keeps both keys and asks again (central accepts the same
rotation twice: the second time the new key is already current), and the old key is copied to
retired/ before next.key replaces store.key.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol import identity
from protocol.frames import LINK_VERSION, LinkHello
from protocol.identity import IdentityError, Purpose, key_id, public_bytes
from runtime.files import SECRET, replace_file

log = logging.getLogger(__name__)

FOLDER = "identity"
KEY = "store.key"
TOKEN = "enrolment.token"
NEXT = "next.key"
RETIRED = "retired"


def folder(data_dir: Path) -> Path:
    return data_dir / FOLDER


@dataclass(frozen=True)
class StoreIdentity:
    store: str
    folder: Path
    key: Ed25519PrivateKey
    next: Ed25519PrivateKey | None = None  # a rotation central has not accepted yet
    token: str = ""  # an enrolment token central has not accepted yet

    @property
    def key_id(self) -> str:
        return key_id(public_bytes(self.key))

    @property
    def proving(self) -> Ed25519PrivateKey:
        """The key the hello presents and proves: the new one while a rotation is open."""
        return self.next or self.key

    def hello(self, version: int = LINK_VERSION) -> LinkHello:
        public = public_bytes(self.proving)
        if self.next is None:
            return LinkHello(node=self.store, role="store", version=version, key=public, token=self.token)
        previous = public_bytes(self.key)
        rotation = identity.sign(self.key, Purpose.ROTATION, self.store, public)
        return LinkHello(
            node=self.store,
            role="store",
            version=version,
            key=public,
            token=self.token,
            rotation=rotation,
            previous=previous,
        )

    def accepted(self) -> None:
        """Central welcomed the hello: the token is spent and a rotation is done. The old key goes to
        retired/ before the new one takes its file, so a crash between leaves a store that rotates again."""
        if self.next is not None:
            identity.save_private(self.folder / RETIRED / f"{self.key_id}.key", self.key)
            os.replace(self.folder / NEXT, self.folder / KEY)
            _sync_folder(self.folder)
            log.info(
                "central accepted the new store key %s; the old key %s is retired",
                key_id(public_bytes(self.next)),
                self.key_id,
            )
        if self.token:
            (self.folder / TOKEN).unlink(missing_ok=True)
            log.info("central accepted the enrolment of store %s; the token is deleted", self.store)


def load(data_dir: Path, store: str) -> tuple[StoreIdentity, bool]:
    """The store's identity, its key made (and logged) when there is none; True when made now."""
    where = folder(data_dir)
    key, made = identity.load_or_create(where / KEY)
    if made:
        log.warning("store %s has a new key %s in %s: central must enrol it", store, key_id(public_bytes(key)), where)
    nxt = identity.load_private(where / NEXT) if (where / NEXT).exists() else None
    return StoreIdentity(store, where, key, nxt, read_token(data_dir)), made


def read_token(data_dir: Path) -> str:
    try:
        return (folder(data_dir) / TOKEN).read_text().strip()
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise IdentityError(f"cannot read the enrolment token: {exc.strerror or exc}") from None


def save_token(data_dir: Path, token: str) -> None:
    """Keep the one-time enrolment token (0600) until central accepts it."""
    token = token.strip()
    if not token or len(token) > identity.TOKEN_CHARS or not token.isascii() or not token.isprintable():
        raise IdentityError("that is not an enrolment token (storepos central store enroll prints one)")
    where = folder(data_dir)
    where.mkdir(parents=True, exist_ok=True, mode=0o700)
    replace_file(where / TOKEN, token.encode() + b"\n", mode=SECRET)


def prepare_rotation(data_dir: Path, store: str) -> tuple[StoreIdentity, bool]:
    """Make the next key (kept beside the current one until central accepts it); False when one was
    prepared already and not yet accepted."""
    current, _ = load(data_dir, store)
    nxt, made = identity.load_or_create(folder(data_dir) / NEXT)
    return StoreIdentity(store, current.folder, current.key, nxt, current.token), made


def _sync_folder(path: Path) -> None:
    """Make a rename in `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
