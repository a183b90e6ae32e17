"""Money as integer minor units plus an ISO 4217 currency. Never floats."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Annotated

import iso4217
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema


class UnknownCurrencyError(ValueError):
    pass


@lru_cache(maxsize=512)
def currency_exponent(code: str) -> int:
    """Minor-unit exponent from the ISO 4217 table (JPY 0, TRY 2, KWD 3)."""
    try:
        currency = iso4217.Currency(code.upper())
    except (ValueError, KeyError) as exc:
        raise UnknownCurrencyError(f"unknown ISO 4217 currency: {code!r}") from exc
    exponent = currency.exponent
    if exponent is None:  # funds codes / precious metals have no minor unit
        raise UnknownCurrencyError(f"{code!r} is not a payable currency")
    return int(exponent)


def _check_currency(code: str) -> str:
    if len(code) != 3 or not code.isalpha() or not code.isupper():
        raise ValueError("currency must be a three-letter upper-case ISO 4217 code")
    currency_exponent(code)
    return code


def payable_currencies() -> list[str]:
    """ISO 4217 codes that have a minor unit (what a payment may be made in)."""
    return sorted(c.code for c in iso4217.Currency if c.exponent is not None)


CurrencyCode = Annotated[
    str,
    AfterValidator(_check_currency),
    WithJsonSchema(
        {
            "type": "string",
            "enum": payable_currencies(),
            "description": "ISO 4217 currency code",
            "example": "TRY",
        }
    ),
]


class Money(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: int = Field(description="Amount in minor units (kuruş for TRY, cents for USD)")
    currency: CurrencyCode

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(amount=self.amount + other.amount, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(amount=self.amount - other.amount, currency=self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"currency mismatch: {self.currency} vs {other.currency}")

    def to_decimal(self) -> Decimal:
        return Decimal(self.amount).scaleb(-currency_exponent(self.currency))

    def format(self) -> str:
        return format_money(self.amount, self.currency)


def format_money(amount: int, currency: str) -> str:
    """'1234.50 TRY' style, exact to the currency's exponent."""
    exponent = currency_exponent(currency)
    sign = "-" if amount < 0 else ""
    units, minor = divmod(abs(amount), 10**exponent)
    grouped = f"{units:,}"
    text = f"{grouped}.{minor:0{exponent}d}" if exponent else grouped
    return f"{sign}{text} {currency}"


def parse_major(text: str, currency: str) -> int:
    """'12.34' in major units to minor units; rejects more precision than the currency has."""
    exponent = currency_exponent(currency)
    value = Decimal(text)
    minor = value.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise ValueError(f"{currency} has {exponent} decimal places; got {text!r}")
    return int(minor)


def apply_rate_bps(amount: int, basis_points: int) -> int:
    """amount * bps / 10000, rounded half up, integer only."""
    numerator = amount * basis_points
    quotient, remainder = divmod(numerator, 10_000)
    return quotient + (1 if remainder * 2 >= 10_000 else 0)
