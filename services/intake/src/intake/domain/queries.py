"""What a merchant searches, exports and reports on: query parameters, the same whichever
entry point carries them. Queries reject unknown parameters (a misspelt filter must not
silently return everything)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BeforeValidator, Field, field_validator

from intake.domain.commands import RequestBody
from intake.domain.payment import PaymentStatus
from intake.domain.read_models import FINGERPRINT_EXAMPLE
from sanalpos_common.money import CurrencyCode

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:[Zz]|[+-]\d{2}:\d{2})$"
)
_INSTANT_HELP = "an RFC 3339 instant with an offset, e.g. 2026-11-01T00:00:00+03:00"


def rfc3339(value: Any) -> Any:
    """Only RFC 3339 text: pydantic alone would also take numbers as Unix times."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError(f"must be {_INSTANT_HELP}")
    return datetime.fromisoformat(value.upper().replace("Z", "+00:00"))


Instant = Annotated[AwareDatetime, BeforeValidator(rfc3339)]


class BadCursor(ValueError):
    """A page cursor this API did not return."""


class PaymentFilterQuery(RequestBody):
    """Filters combine with AND. Ranges are half-open as named; an empty range (e.g.
    amount_gte above amount_lte) simply matches nothing."""

    status: list[PaymentStatus] = Field(
        default_factory=list,
        description="Only payments in one of these states (repeat the parameter for several)",
        examples=[["captured", "settled"]],
    )
    created_gte: Instant | None = Field(
        default=None,
        description="Created at or after this instant (RFC 3339, with offset)",
        examples=["2026-11-01T00:00:00+03:00"],
    )
    created_lt: Instant | None = Field(
        default=None,
        description="Created before this instant (RFC 3339, with offset)",
        examples=["2026-12-01T00:00:00+03:00"],
    )
    amount_gte: int | None = Field(
        default=None, ge=0, le=10**15, description="Amount at least (minor units)", examples=[1000]
    )
    amount_lte: int | None = Field(
        default=None, ge=0, le=10**15, description="Amount at most (minor units)", examples=[50000]
    )
    currency: CurrencyCode | None = Field(
        default=None, description="ISO 4217 code", examples=["TRY"]
    )
    order_id: str | None = Field(
        default=None, min_length=1, max_length=128, description="Your order id", examples=["o-1"]
    )
    card_last4: str | None = Field(
        default=None,
        pattern=r"^\d{4}$",
        description="Last four digits of the card number",
        examples=["4242"],
    )
    card_fingerprint: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="The card's fingerprint as payments show it (same card, same fingerprint)",
        examples=[FINGERPRINT_EXAMPLE],
    )


class PaymentSearchQuery(PaymentFilterQuery):
    limit: int = Field(default=20, ge=1, le=100, description="Page size", examples=[20])
    cursor: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="`next_cursor` of the previous page",
        examples=["MjAyNi0xMS0yN1QwMjozMDowMCswMDowMHw2ZjA"],
    )


GroupBy = Literal["day", "currency", "status", "installments"]


def _date_or_instant(value: Any) -> Any:
    """A bare date stays a date (a day in the merchant's time zone); anything else must be
    an RFC 3339 instant with an offset."""
    if isinstance(value, str) and _DATE_ONLY.match(value):
        return date.fromisoformat(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return rfc3339(value)
    except ValueError:
        raise ValueError(f"give a date (YYYY-MM-DD) or {_INSTANT_HELP}") from None


class ReportQuery(RequestBody):
    from_: datetime | date = Field(
        alias="from",
        description="Start, inclusive: a date (midnight in your time zone) or an RFC 3339 instant",
        examples=["2026-11-01"],
    )
    to: datetime | date = Field(
        description="End, exclusive: a date (midnight in your time zone) or an RFC 3339 instant",
        examples=["2026-12-01"],
    )
    group_by: GroupBy = Field(
        default="day",
        description="`day` (in your time zone), `currency`, `status` or `installments`",
        examples=["day"],
    )

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _bounds(cls, value: Any) -> Any:
        return _date_or_instant(value)
