"""Query and response bodies of search, export and reports. Queries reject unknown
parameters (a misspelt filter must not silently return everything)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, Field, field_validator

from intake.domain.payment import PaymentStatus
from intake.entrypoints.schemas import (
    CARD_OUT_EXAMPLE,
    CREATED_AT_EXAMPLE,
    FINGERPRINT_EXAMPLE,
    PAYMENT_ID_EXAMPLE,
    UPDATED_AT_EXAMPLE,
    PaymentOut,
    _Request,
)
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


class PaymentFilterQuery(_Request):
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


LISTED_PAYMENT_EXAMPLE: dict[str, Any] = {
    "id": PAYMENT_ID_EXAMPLE,
    "object": "payment",
    "status": "captured",
    "amount": 10000,
    "currency": "TRY",
    "capture": True,
    "installments": 1,
    "order_id": "ORD-2026-00042",
    "description": "2 books",
    "metadata": {},
    "card": CARD_OUT_EXAMPLE,
    "card_token": None,
    "initiated_by": "customer",
    "response_code": "00",
    "auth_code": "A1B2C3",
    "decline_reason": None,
    "fee_amount": None,
    "net_amount": None,
    "captured_amount": 10000,
    "refunded_amount": 0,
    "pending_operation": None,
    "refunds": [],
    "created_at": CREATED_AT_EXAMPLE,
    "updated_at": UPDATED_AT_EXAMPLE,
    "events": [],
}
FIGURES_EXAMPLE: dict[str, Any] = {
    "currency": "TRY",
    "payments": 120,
    "volume": 1250000,
    "approved_count": 110,
    "approved_volume": 1190000,
    "declined_count": 8,
    "pending_count": 2,
    "approval_rate": "0.9322",
    "approval_rate_bps": 9322,
    "decline_reasons": [{"reason": "insufficient funds", "count": 5}],
    "fraud_declined_count": 2,
    "fraud_decline_rate": "0.0169",
    "fraud_decline_rate_bps": 169,
    "captured_volume": 1190000,
    "refund_count": 3,
    "refunded_amount": 30000,
    "average_ticket": 10818,
    "settled_count": 100,
    "fee_amount": 25000,
    "net_amount": 1055000,
}


class PaymentList(BaseModel):
    object: str = Field(default="list", description="Always `list`", examples=["list"])
    data: list[PaymentOut] = Field(
        description="Payments, newest first (events omitted)", examples=[[LISTED_PAYMENT_EXAMPLE]]
    )
    has_more: bool = Field(description="Whether another page follows", examples=[False])
    next_cursor: str | None = Field(
        default=None,
        description="Pass as ?cursor= (with the same filters) for the next page",
        examples=[None],
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


class ReportQuery(_Request):
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


class DeclineReasonCount(BaseModel):
    reason: str = Field(
        description="Decline reason as the payment shows it", examples=["insufficient funds"]
    )
    count: int = Field(description="Declined payments with this reason", examples=[3])


class ReportFigures(BaseModel):
    currency: str = Field(
        description="ISO 4217 code; money is never summed across currencies", examples=["TRY"]
    )
    payments: int = Field(description="Payments created in the period", examples=[120])
    volume: int = Field(description="Their amounts, minor units", examples=[1250000])
    approved_count: int = Field(description="Payments the issuer approved", examples=[110])
    approved_volume: int = Field(description="Approved amounts, minor units", examples=[1190000])
    declined_count: int = Field(description="Declined payments", examples=[8])
    pending_count: int = Field(description="Payments without an outcome yet", examples=[2])
    approval_rate: str | None = Field(
        description="approved / (approved + declined), decimal string; null when none decided",
        examples=["0.9322"],
    )
    approval_rate_bps: int | None = Field(description="The same in basis points", examples=[9322])
    decline_reasons: list[DeclineReasonCount] = Field(
        description="Most frequent first", examples=[[{"reason": "insufficient funds", "count": 5}]]
    )
    fraud_declined_count: int = Field(description="Declined by fraud screening", examples=[2])
    fraud_decline_rate: str | None = Field(
        description="fraud declines / (approved + declined), decimal string", examples=["0.0169"]
    )
    fraud_decline_rate_bps: int | None = Field(
        description="The same in basis points", examples=[169]
    )
    captured_volume: int = Field(description="Captured amounts, minor units", examples=[1190000])
    refund_count: int = Field(description="Succeeded refunds of these payments", examples=[3])
    refunded_amount: int = Field(description="Their amounts, minor units", examples=[30000])
    average_ticket: int | None = Field(
        description="approved_volume / approved_count, minor units (half up)", examples=[10818]
    )
    settled_count: int = Field(description="Payments settled (with fees known)", examples=[100])
    fee_amount: int = Field(
        description="Fees of the settled payments, minor units", examples=[25000]
    )
    net_amount: int = Field(description="Net paid out for them, minor units", examples=[1055000])


class ReportGroup(ReportFigures):
    key: str = Field(
        description="The group: a local date, a currency, a status or an installment count",
        examples=["2026-11-27"],
    )


class ReportSummary(BaseModel):
    object: str = Field(
        default="report.summary", description="Always `report.summary`", examples=["report.summary"]
    )
    from_: datetime = Field(
        alias="from",
        description="Start of the period (inclusive)",
        examples=["2026-11-01T00:00:00+03:00"],
    )
    to: datetime = Field(
        description="End of the period (exclusive)", examples=["2026-12-01T00:00:00+03:00"]
    )
    time_zone: str = Field(
        description="Your time zone, used for dates", examples=["Europe/Istanbul"]
    )
    group_by: GroupBy = Field(
        description="How groups are formed: `day`, `currency`, `status` or `installments`",
        examples=["day"],
    )
    groups: list[ReportGroup] = Field(
        description="One entry per group and currency",
        examples=[[{"key": "2026-11-27", **FIGURES_EXAMPLE}]],
    )
    totals: list[ReportFigures] = Field(
        description="The whole period, one entry per currency", examples=[[FIGURES_EXAMPLE]]
    )
