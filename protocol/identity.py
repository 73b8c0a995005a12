"""A store's identity: its Ed25519 key pair, and the three things it signs.

One key signs everything a store vouches for, each under its own purpose prefix (domain separation),
so a signature made for one purpose can never be replayed as another: a hello proof over central's
fresh nonce, a journal record's chain hash, and a new key during rotation. Both nodes import this
module, so the signed bytes are built in one place and cannot drift between signer and verifier.

Keys live in PKCS#8 PEM files written 0600 (in a 0700 folder) by `save_private`; a key is named on
the wire by its key id (the first 16 hex digits of the SHA-256 of its raw public key), so central can
keep every key a store ever had and still verify records signed before a rotation.
"""

from __future__ import annotations

import hashlib
import re
from enum import Enum
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from runtime.files import SECRET, replace_file

PUBLIC_BYTES = 32
SIGNATURE_BYTES = 64
NONCE_BYTES = 32
TOKEN_CHARS = 64  # an enrolment token (secrets.token_urlsafe(32) is 43): longer is refused unread

# What a store may call itself: printable ASCII that is safe in a log, a file name and a terminal, and
# short. A store id is a key in every register and every log line, so NUL, RTL marks, emoji or a
# megabyte of name are refused at the door rather than escaped everywhere after it.
STORE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")


class Purpose(Enum):
    """What a signature is for; its value prefixes the signed bytes."""

    PROOF = b"storepos/link-proof/v1\x00"  # nonce || central node || store id || public key
    JOURNAL = b"storepos/journal/v1\x00"  # store id || chain hash
    ROTATION = b"storepos/key-rotation/v1\x00"  # store id || new public key


class IdentityError(ValueError):
    """A key file or key bytes that cannot be used; the text says which and why."""


def valid_store_id(s: str) -> bool:
    return STORE_ID.fullmatch(s) is not None


def generate() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_bytes(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public: bytes) -> str:
    return hashlib.sha256(public).hexdigest()[:16]


def save_private(path: Path, key: Ed25519PrivateKey) -> None:
    """Write the key 0600, whole or not at all (runtime.files.replace_file)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    replace_file(path, data, mode=SECRET)


def load_private(path: Path) -> Ed25519PrivateKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IdentityError(f"{path}: cannot read the store key: {exc.strerror or exc}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise IdentityError(f"{path}: not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise IdentityError(f"{path}: not an Ed25519 key")
    return key


def load_or_create(path: Path) -> tuple[Ed25519PrivateKey, bool]:
    """The key at `path`, made (0600) when there is none; True when it was made now."""
    if path.exists():
        return load_private(path), False
    key = generate()
    save_private(path, key)
    return key, True


def public_key(public: bytes) -> Ed25519PublicKey:
    if len(public) != PUBLIC_BYTES:
        raise IdentityError(f"a public key is {PUBLIC_BYTES} bytes, not {len(public)}")
    return Ed25519PublicKey.from_public_bytes(public)


def _message(purpose: Purpose, parts: tuple[bytes | str, ...]) -> bytes:
    """Length-prefixed parts after the purpose: no two different tuples give the same bytes."""
    out = bytearray(purpose.value)
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        out += len(data).to_bytes(4, "big") + data
    return bytes(out)


def sign(key: Ed25519PrivateKey, purpose: Purpose, *parts: bytes | str) -> bytes:
    return key.sign(_message(purpose, parts))


def verify(public: bytes, signature: bytes, purpose: Purpose, *parts: bytes | str) -> bool:
    """True only for a good signature by `public` over exactly these parts for this purpose; bad
    lengths and malformed keys are False, never an exception: the caller refuses either way."""
    if len(signature) != SIGNATURE_BYTES or len(public) != PUBLIC_BYTES:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, _message(purpose, parts))
    except (InvalidSignature, ValueError):
        return False
    return True
