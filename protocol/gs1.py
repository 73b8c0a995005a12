"""GS1 variable-measure barcodes (EAN-13 prefixes 20-29): the item and its weight or price printed
in the code, so goods weighed and labelled elsewhere sell without the lane's scale.

Layouts differ per chain; ours is the common Nordic one and is set per store in store.toml:
  prefix (2 digits) + item key (5 digits) + value (5 digits) + check digit
A weight prefix carries grams, a price prefix minor units. The item is found by the barcode
"prefix + item key" (7 digits) in the catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec


class Gs1Config(msgspec.Struct, forbid_unknown_fields=True):
    weight_prefixes: list[str] = msgspec.field(default_factory=lambda: ["23", "24", "25"])
    price_prefixes: list[str] = msgspec.field(default_factory=lambda: ["20", "21", "22"])


@dataclass(frozen=True)
class Measured:
    key: str  # the catalogue barcode of the item: prefix + item key
    weight_g: int = 0
    price: int = 0


MAX_CODE = 80  # longer than any linear symbology or GS1-128 element string a lane sells by


def digits(code: str) -> bool:
    """ASCII 0-9 only: `str.isdigit` also accepts superscripts and other scripts' digits, which `int`
    then refuses (a scanned "2300005\u00b21234\u00b2" once crashed the lane)."""
    return code.isascii() and code.isdigit()


def code_problem(code: str) -> str | None:
    """Why a scanned or typed code cannot be an item's barcode (None when it can): printable ASCII of a
    bounded length, which every symbology a till reads stays within."""
    if not code:
        return "empty barcode"
    if len(code) > MAX_CODE:
        return f"a barcode has at most {MAX_CODE} characters, not {len(code)}"
    if not (code.isascii() and code.isprintable()) or " " in code:
        return "a barcode is printable ASCII without spaces"
    return None


def check_digit(body: str) -> str:
    """The GS1 mod-10 check digit of the digits before it (EAN-13, EAN-8, UPC-A alike)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


def valid(code: str) -> bool:
    return len(code) in (8, 12, 13, 14) and digits(code) and check_digit(code[:-1]) == code[-1]


def decode(code: str, config: Gs1Config) -> Measured | None:
    """The measured item in a variable-measure EAN-13, or None when the code is an ordinary one."""
    if len(code) != 13 or not digits(code) or not code.startswith("2"):
        return None
    prefix = code[:2]
    if prefix not in config.weight_prefixes and prefix not in config.price_prefixes:
        return None
    if not valid(code):
        return None
    key, value = code[:7], int(code[7:12])
    if prefix in config.weight_prefixes:
        return Measured(key=key, weight_g=value)
    return Measured(key=key, price=value)
