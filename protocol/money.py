"""Money rules in one place: minor units per currency, cash rounding, VAT extraction, text forms.

Prices include VAT (Nordic retail), so VAT is extracted per rate from the receipt's gross sums
rather than added per line; rounding once per rate per receipt is what the tax authorities expect.
"""

from __future__ import annotations

import re

# Smallest cash step in minor units. Sweden and Norway round cash to whole kroner, Denmark to 50 øre,
# Switzerland to 5 rappen; the euro has 1- and 2-cent coins in most countries (Finland and the
# Netherlands round cash to 5 cents: configure `cash_rounding` per store there).
CASH_STEP: dict[str, int] = {"SEK": 100, "NOK": 100, "DKK": 50, "CHF": 5, "EUR": 1, "GBP": 1, "USD": 1}
MINOR_DIGITS: dict[str, int] = {"JPY": 0, "ISK": 0}
_AMOUNT = re.compile(r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)")


class MoneyError(ValueError):
    pass


def round_half_up(numerator: int, denominator: int) -> int:
    """Integer division rounding halves away from zero, symmetric for refunds (negative amounts)."""
    sign = -1 if (numerator < 0) != (denominator < 0) else 1
    n, d = abs(numerator), abs(denominator)
    return sign * ((2 * n + d) // (2 * d))


def cash_round(amount: int, currency: str, step: int | None = None) -> int:
    """What the customer pays in cash for `amount`; card payments are never rounded."""
    step = step or CASH_STEP.get(currency, 1)
    return round_half_up(amount, step) * step


def vat_of(gross: int, rate_bp: int) -> int:
    """VAT contained in a VAT-inclusive amount at `rate_bp` basis points (2500 = 25 %)."""
    return round_half_up(gross * rate_bp, 10_000 + rate_bp)


def digits(currency: str) -> int:
    return MINOR_DIGITS.get(currency, 2)


def format_money(amount: int, currency: str) -> str:
    d = digits(currency)
    if d == 0:
        return str(amount)
    sign = "-" if amount < 0 else ""
    major, minor = divmod(abs(amount), 10**d)
    return f"{sign}{major}.{minor:0{d}d}"


def parse_money(text: str, currency: str) -> int:
    """'12.5' or '12,5' -> 1250 for a two-digit currency, in exact integer arithmetic.

    Only plain decimals are accepted: an exponent ('1e2') typed at a till is a slip, not 100 kr.
    """
    plain = text.strip()
    if not _AMOUNT.fullmatch(plain):
        raise MoneyError(f"not an amount: {text!r}")
    sign = -1 if plain.startswith("-") else 1
    whole, _, frac = plain.lstrip("+-").replace(",", ".").partition(".")
    d = digits(currency)
    if len(frac.rstrip("0")) > d:
        raise MoneyError(f"{text!r} has more decimals than {currency} allows")
    return sign * int((whole or "0") + (frac + "0" * d)[:d])


RATE_SCALE = 1_000_000  # exchange rates are millionths of a base minor unit per foreign minor unit


def parse_rate(text: str, base: str, currency: str) -> int:
    """'11.45' (base per one unit of `currency`, as banks quote it) -> base minor units per foreign
    minor unit in millionths, exactly: currencies with different minor digits convert correctly."""
    plain = text.strip()
    if not re.fullmatch(r"\d+(?:\.\d{1,6})?", plain):
        raise MoneyError(f"not an exchange rate: {text!r} (e.g. 11.45)")
    whole, _, frac = plain.partition(".")
    micro = int(whole) * RATE_SCALE + int((frac + "000000")[:6])
    shift = digits(base) - digits(currency)
    rate = micro * 10**shift if shift >= 0 else round_half_up(micro, 10**-shift)
    if rate <= 0:
        raise MoneyError(f"an exchange rate must be positive, not {text!r}")
    return rate


def foreign_value(amount: int, rate: int, base: str, step: int | None = None) -> int:
    """What foreign cash is worth in `base`, rounded down to the base's cash step: the store never
    pays out change for coins it cannot give."""
    step = step or CASH_STEP.get(base, 1)
    return amount * rate // RATE_SCALE // step * step


def format_rate(rate_bp: int) -> str:
    sign = "-" if rate_bp < 0 else ""
    whole, frac = divmod(abs(rate_bp), 100)
    return f"{sign}{whole}%" if frac == 0 else f"{sign}{whole}.{frac:02d}".rstrip("0") + "%"
