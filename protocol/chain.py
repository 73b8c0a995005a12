"""The journal's hash and signature rules, shared by the store that builds the chain and central that
re-checks it: hash = SHA-256(prev_hash || canonical record bytes), starting from 32 zero bytes, and each
record signed by the store's key over (store id, its hash) for Purpose.JOURNAL."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from protocol import identity
from protocol.identity import Purpose
from protocol.versions import shown

GENESIS = bytes(32)


def chain_hash(prev_hash: bytes, body: bytes) -> bytes:
    return hashlib.sha256(prev_hash + body).digest()


def signature_holds(public: bytes, sig: bytes, store: str, digest: bytes) -> bool:
    return identity.verify(public, sig, Purpose.JOURNAL, store, digest)


def signature_problem(keys: Mapping[str, bytes], key: str, sig: bytes, store: str, digest: bytes) -> str | None:
    """Why a stored record's signature does not vouch for it (None when it does): the audits of both
    nodes (`verify-journal`) say it the same way. An unsigned record is "not signed"; the caller says why
    that can be."""
    if not sig:
        return "not signed"
    if key not in keys:
        return f"signed by key {shown(key)!r}, which is not one the store holds or held"
    if not signature_holds(keys[key], sig, store, digest):
        return "its signature does not verify over the record's chain hash"
    return None
