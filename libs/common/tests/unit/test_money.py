import pytest
from pydantic import ValidationError

from sanalpos_common.money import (
    Money,
    UnknownCurrencyError,
    apply_rate_bps,
    currency_exponent,
    format_money,
    parse_major,
)


@pytest.mark.parametrize(("code", "exponent"), [("JPY", 0), ("TRY", 2), ("USD", 2), ("KWD", 3)])
def test_exponents_come_from_the_iso_table(code: str, exponent: int) -> None:
    assert currency_exponent(code) == exponent


def test_unknown_and_non_payable_currencies_are_refused() -> None:
    with pytest.raises(UnknownCurrencyError):
        currency_exponent("TRX")
    with pytest.raises(UnknownCurrencyError):
        currency_exponent("XAU")  # gold has no minor unit


def test_formatting_respects_the_exponent() -> None:
    assert format_money(123_456, "TRY") == "1,234.56 TRY"
    assert format_money(1500, "JPY") == "1,500 JPY"
    assert format_money(1, "KWD") == "0.001 KWD"
    assert format_money(-250, "USD") == "-2.50 USD"


def test_parse_major_rejects_more_precision_than_the_currency_has() -> None:
    assert parse_major("12.34", "TRY") == 1234
    assert parse_major("7", "JPY") == 7
    with pytest.raises(ValueError, match="decimal places"):
        parse_major("1.5", "JPY")


def test_money_arithmetic_refuses_mixed_currencies() -> None:
    assert (Money(amount=100, currency="TRY") + Money(amount=50, currency="TRY")).amount == 150
    with pytest.raises(ValueError, match="currency mismatch"):
        Money(amount=1, currency="TRY") + Money(amount=1, currency="USD")


def test_money_model_rejects_lowercase_and_unknown_codes() -> None:
    with pytest.raises(ValidationError):
        Money(amount=1, currency="try")
    with pytest.raises(ValidationError):
        Money(amount=1, currency="ABC")


@pytest.mark.parametrize(
    ("amount", "bps", "fee"), [(10_000, 179, 179), (12_345, 179, 221), (1, 5_000, 1), (3, 1_000, 0)]
)
def test_rate_is_rounded_half_up_in_integers(amount: int, bps: int, fee: int) -> None:
    assert apply_rate_bps(amount, bps) == fee
