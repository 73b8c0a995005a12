"""The journal's hash rule, shared by the store that builds the chain and central that re-checks it:
hash = SHA-256(prev_hash || canonical record bytes), starting from 32 zero bytes."""

from __future__ import annotations

import hashlib

GENESIS = bytes(32)


def chain_hash(prev_hash: bytes, body: bytes) -> bytes:
    return hashlib.sha256(prev_hash + body).digest()
