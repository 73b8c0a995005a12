"""Operator PINs: the policy central enforces at import, and the one slow hash central stores and stores verify.

A PIN is short by nature (a cashier types it many times a day), so what protects it is that its hash is
slow and never shown: scrypt (hashlib, OpenSSL) with n = 2**14, r = 8, p = 1, a 16-byte random salt per
operator and a 32-byte key: 16 MiB of memory and some 60-70 ms of one core per check, against the 25 ms
of the PBKDF2 (50,000 rounds, no memory hardness) it replaces. A 4-digit PIN still falls to an offline
search of its hash in about ten minutes of one core, which is why the hash never leaves central and the
stores it is for (exports never carry it; a store is sent hashes only of operators who work there; store
files holding them are 0600) and why online guessing is locked out per operator (storenode.operators).

The stored form names its parameters ("scrypt$16384$8$1$<salt hex>$<key hex>"), so they can be raised
later without a flag day; a store checks them against bounds before running them, so a bad row cannot
make one check cost minutes or gigabytes.

Unknown operator numbers are checked against a dummy hash of the same parameters: a wrong number costs
what a wrong PIN costs, so timing does not tell which numbers exist.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os

ROLES = ("cashier", "supervisor", "manager")
APPROVERS = ("supervisor", "manager")  # the roles that approve what a cashier may not do alone
ALL_STORES = "*"
SCHEME = "scrypt"
N = 2**14
R = 8
P = 1
KEY_BYTES = 32
SALT_BYTES = 16
MIN_DIGITS = 4
MAX_DIGITS = 12
_MAX_N = 2**20  # what a stored hash may ask for: 1 GiB at r = 8 is far beyond any real setting
_MAX_R = 32
_MAX_P = 16


def policy_problem(pin: str) -> str | None:
    """Why `pin` may not be an operator's PIN, or None: 4 to 12 ASCII digits, not all the same digit.

    Sequences (1234) are allowed on purpose: the chain's demo and many tills' habits use them, and the
    lockout (5 wrong PINs lock the operator) bounds online guessing whatever the PIN."""
    if not (pin.isascii() and pin.isdigit()):
        return "a PIN is digits only"
    if not MIN_DIGITS <= len(pin) <= MAX_DIGITS:
        return f"a PIN has {MIN_DIGITS} to {MAX_DIGITS} digits, not {len(pin)}"
    if len(set(pin)) == 1:
        return "a PIN may not be one digit repeated"
    return None


def _derive(pin: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(pin.encode(), salt=salt, n=n, r=r, p=p, dklen=length, maxmem=256 * r * n * p + (1 << 20))


def hash_pin(pin: str, salt: bytes | None = None) -> str:
    """The stored form of a PIN: slow on purpose (run it off the event loop)."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    key = _derive(pin, salt, N, R, P, KEY_BYTES)
    return f"{SCHEME}${N}${R}${P}${salt.hex()}${key.hex()}"


def _parsed(stored: str) -> tuple[bytes, int, int, int, bytes] | None:
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        return None
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, key = bytes.fromhex(parts[4]), bytes.fromhex(parts[5])
    except ValueError:
        return None
    if not (2 <= n <= _MAX_N and n & (n - 1) == 0 and 1 <= r <= _MAX_R and 1 <= p <= _MAX_P):
        return None
    if not (8 <= len(salt) <= 64 and 16 <= len(key) <= 64):
        return None
    return salt, n, r, p, key


def well_formed(stored: str) -> bool:
    return _parsed(stored) is not None


@functools.cache
def dummy_hash() -> str:
    """What an unknown number (or one whose hash is missing or malformed) is checked against."""
    return hash_pin("0000000000000", bytes(SALT_BYTES))


def verify(pin: str, stored: str) -> bool:
    """Whether `pin` is the one `stored` was made from. Anything unusable as a hash is checked against
    the dummy hash instead (same work) and fails. Slow on purpose: run it off the event loop."""
    parsed = _parsed(stored)
    usable = parsed is not None
    if parsed is None:
        parsed = _parsed(dummy_hash())
        assert parsed is not None
    salt, n, r, p, key = parsed
    derived = _derive(pin, salt, n, r, p, len(key))
    return hmac.compare_digest(derived, key) and usable


def works_at(stores: str, store: str) -> bool:
    """Whether an operator whose register row lists `stores` ("*" or "S001,S002") works at `store`."""
    return stores == ALL_STORES or store in stores.split(",")
