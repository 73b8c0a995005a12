"""Money rules: cash rounding per currency, VAT extraction, text forms. Expected values computed by hand."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.money import (
    CASH_STEP,
    MoneyError,
    cash_round,
    digits,
    format_money,
    format_rate,
    parse_money,
    round_half_up,
    vat_of,
)

# -------------------------------------------------------------------------------------------------
# round_half_up
# -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [
        (7, 2, 4),  # 3.5 -> 4
        (5, 2, 3),  # 2.5 -> 3 (half up, not banker's 2)
        (-5, 2, -3),  # symmetric: -2.5 -> -3
        (5, -2, -3),
        (-5, -2, 3),
        (149, 100, 1),
        (150, 100, 2),
        (0, 7, 0),
        (1, 3, 0),
        (2, 3, 1),
    ],
)
def test_round_half_up(numerator: int, denominator: int, expected: int) -> None:
    assert round_half_up(numerator, denominator) == expected


# -------------------------------------------------------------------------------------------------
# cash_round
# -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        # Sweden / Norway: whole krona, half up.
        (10149, "SEK", 10100),
        (10150, "SEK", 10200),
        (10175, "SEK", 10200),
        (10100, "SEK", 10100),
        (49, "SEK", 0),
        (50, "SEK", 100),
        (0, "SEK", 0),
        (-10149, "SEK", -10100),
        (-10150, "SEK", -10200),
        (2549, "NOK", 2500),
        (2550, "NOK", 2600),
        # Denmark: 50 øre.
        (1024, "DKK", 1000),
        (1025, "DKK", 1050),
        (1074, "DKK", 1050),
        (1075, "DKK", 1100),
        (-1025, "DKK", -1050),
        (-1024, "DKK", -1000),
        # Euro (and pound, dollar): 1 cent, unchanged.
        (1234, "EUR", 1234),
        (1, "EUR", 1),
        (-7, "EUR", -7),
        (999, "GBP", 999),
        (1001, "USD", 1001),
        # Switzerland: 5 rappen.
        (1002, "CHF", 1000),
        (1003, "CHF", 1005),
        (1007, "CHF", 1005),
        (1008, "CHF", 1010),
        (-1003, "CHF", -1005),
        (-1002, "CHF", -1000),
        # A currency without a rule is not rounded.
        (12345, "XYZ", 12345),
    ],
)
def test_cash_round(amount: int, currency: str, expected: int) -> None:
    assert cash_round(amount, currency) == expected


def test_cash_round_explicit_step_overrides_currency() -> None:
    # Finland rounds euro cash to 5 cents, configured per store.
    assert cash_round(1002, "EUR", step=5) == 1000
    assert cash_round(1003, "EUR", step=5) == 1005
    assert cash_round(10149, "SEK", step=50) == 10150
    assert cash_round(10124, "SEK", step=50) == 10100


@settings(deadline=None)  # no wall-clock dependence
@given(amount=st.integers(min_value=-(10**12), max_value=10**12), currency=st.sampled_from(sorted(CASH_STEP)))
def test_cash_round_is_nearest_multiple_of_step(amount: int, currency: str) -> None:
    step = CASH_STEP[currency]
    rounded = cash_round(amount, currency)
    assert rounded % step == 0
    assert 2 * abs(rounded - amount) <= step
    assert cash_round(-amount, currency) == -rounded


@settings(deadline=None)  # no wall-clock dependence
@given(amount=st.integers(), step=st.integers(min_value=1, max_value=1000))
def test_cash_round_any_step(amount: int, step: int) -> None:
    rounded = cash_round(amount, "EUR", step=step)
    assert rounded % step == 0
    assert 2 * abs(rounded - amount) <= step
    # A half step rounds away from zero.
    if 2 * abs(rounded - amount) == step:
        assert abs(rounded) > abs(amount)


# -------------------------------------------------------------------------------------------------
# vat_of: VAT contained in a VAT-inclusive amount
# -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gross", "rate", "expected"),
    [
        # 25 %: VAT is gross / 5.
        (12500, 2500, 2500),
        (10000, 2500, 2000),
        (6995, 2500, 1399),
        (3, 2500, 1),  # 0.6 -> 1
        (2, 2500, 0),  # 0.4 -> 0
        # 12 %: VAT is gross * 12 / 112.
        (11200, 1200, 1200),
        (3180, 1200, 341),  # 340.71
        (1990, 1200, 213),  # 213.21
        (5970, 1200, 640),  # 639.64
        (14, 1200, 2),  # exactly 1.5 -> 2 (half up)
        (-14, 1200, -2),  # refunds are symmetric
        # 6 %: VAT is gross * 6 / 106.
        (10600, 600, 600),
        (1000, 600, 57),  # 56.60
        (2915, 600, 165),  # exactly 165
        (-1000, 600, -57),
        # 0 %.
        (12345, 0, 0),
        (0, 2500, 0),
    ],
)
def test_vat_of(gross: int, rate: int, expected: int) -> None:
    assert vat_of(gross, rate) == expected


@settings(deadline=None)  # no wall-clock dependence
@given(gross=st.integers(min_value=0, max_value=10**12), rate=st.integers(min_value=0, max_value=10_000))
def test_vat_of_is_bounded_by_gross(gross: int, rate: int) -> None:
    vat = vat_of(gross, rate)
    assert 0 <= vat <= gross
    # VAT-inclusive: net + VAT == gross, and VAT is within half a minor unit of the exact share.
    assert abs(vat * (10_000 + rate) - gross * rate) * 2 <= 10_000 + rate
    assert vat_of(-gross, rate) == -vat


# -------------------------------------------------------------------------------------------------
# format_money / parse_money
# -------------------------------------------------------------------------------------------------


def test_digits() -> None:
    assert digits("SEK") == 2
    assert digits("EUR") == 2
    assert digits("JPY") == 0
    assert digits("ISK") == 0


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (123456, "SEK", "1234.56"),
        (1250, "SEK", "12.50"),
        (5, "SEK", "0.05"),
        (50, "SEK", "0.50"),
        (0, "SEK", "0.00"),
        (-5, "SEK", "-0.05"),
        (-1234, "EUR", "-12.34"),
        (100, "DKK", "1.00"),
        (1234, "JPY", "1234"),
        (0, "JPY", "0"),
        (-50, "ISK", "-50"),
    ],
)
def test_format_money(amount: int, currency: str, text: str) -> None:
    assert format_money(amount, currency) == text


@pytest.mark.parametrize(
    ("text", "currency", "amount"),
    [
        ("12,5", "SEK", 1250),
        ("12.5", "SEK", 1250),
        ("12.50", "SEK", 1250),
        ("12", "SEK", 1200),
        (" 7 ", "SEK", 700),
        ("0.05", "EUR", 5),
        ("0,05", "EUR", 5),
        ("-3.5", "SEK", -350),
        ("1234", "JPY", 1234),
        ("12.0", "JPY", 12),
        ("-50", "ISK", -50),
    ],
)
def test_parse_money(text: str, currency: str, amount: int) -> None:
    assert parse_money(text, currency) == amount


@pytest.mark.parametrize(
    "text", ["abc", "inf", "-inf", "Infinity", "nan", "NaN", "sNaN", "", "   ", "1,2,3", "12 kr", "1e2", "0x10"]
)
def test_parse_money_refuses_non_amounts(text: str) -> None:
    with pytest.raises(MoneyError, match="not an amount"):
        parse_money(text, "SEK")


@pytest.mark.parametrize(
    ("text", "currency"),
    [("1.234", "SEK"), ("0.005", "EUR"), ("1,234", "SEK"), ("12.5", "JPY"), ("0.1", "ISK")],
)
def test_parse_money_refuses_more_decimals_than_the_currency_has(text: str, currency: str) -> None:
    with pytest.raises(MoneyError, match=f"more decimals than {currency} allows"):
        parse_money(text, currency)


def test_money_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_money("abc", "SEK")


# Parsing is exact integer arithmetic, so the property holds far beyond Decimal's 28-digit context.
AMOUNTS = st.integers(min_value=-(10**40), max_value=10**40)


@settings(deadline=None)  # no wall-clock dependence
@given(amount=AMOUNTS, currency=st.sampled_from(["SEK", "EUR", "DKK", "CHF", "JPY", "ISK"]))
def test_parse_money_inverts_format_money(amount: int, currency: str) -> None:
    assert parse_money(format_money(amount, currency), currency) == amount


def test_parse_money_does_not_lose_digits_of_large_amounts() -> None:
    amount = 10**30 + 1
    assert parse_money(format_money(amount, "SEK"), "SEK") == amount


def test_parse_money_refuses_extra_decimals_on_large_amounts() -> None:
    with pytest.raises(MoneyError):
        parse_money("1234567890123456789012345678.901", "SEK")


def test_parse_money_huge_exponent_is_a_money_error() -> None:
    with pytest.raises(MoneyError):
        parse_money("1e999999", "SEK")


# -------------------------------------------------------------------------------------------------
# format_rate
# -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "text"),
    [
        (2500, "25%"),
        (1200, "12%"),
        (600, "6%"),
        (0, "0%"),
        (1000, "10%"),
        (1250, "12.5%"),
        (2550, "25.5%"),
        (605, "6.05%"),
        (5, "0.05%"),
        (10_000, "100%"),
    ],
)
def test_format_rate(rate: int, text: str) -> None:
    assert format_rate(rate) == text
