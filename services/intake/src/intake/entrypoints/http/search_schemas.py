"""Response bodies of search and reports over HTTP."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from intake.domain.queries import GroupBy
from intake.domain.read_models import (
    CARD_OUT_EXAMPLE,
    CREATED_AT_EXAMPLE,
    PAYMENT_ID_EXAMPLE,
    UPDATED_AT_EXAMPLE,
    PaymentOut,
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
    "net_volume": 1135000,
}


TIMING_EXAMPLE: dict[str, Any] = {
    "currency": "TRY",
    "paid_count": 20,
    "paid_amount": 1020000,
    "in_transit_count": 1,
    "in_transit_amount": 35000,
    "returned_count": 0,
    "returned_amount": 0,
    "batches_paid": 21,
    "average_days_to_payout": "1.29",
    "max_days_to_payout": 3,
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
    net_volume: int = Field(
        description="captured_volume less refunded_amount and fee_amount: what the period's "
        "sales leave you after refunds and the fees known so far (fees are known when the "
        "batch closes), minor units",
        examples=[1135000],
    )


class PayoutTiming(BaseModel):
    currency: str = Field(description="ISO 4217", examples=["TRY"])
    paid_count: int = Field(description="Payouts your bank confirmed", examples=[20])
    paid_amount: int = Field(description="Their amounts, minor units", examples=[1020000])
    in_transit_count: int = Field(description="Payouts sent, not yet confirmed", examples=[1])
    in_transit_amount: int = Field(description="Their amounts, minor units", examples=[35000])
    returned_count: int = Field(description="Payouts the bank sent back", examples=[0])
    returned_amount: int = Field(description="Their amounts, minor units", examples=[0])
    batches_paid: int = Field(
        description="Settlement batches (with a positive net) in the paid and in-transit payouts",
        examples=[21],
    )
    average_days_to_payout: str | None = Field(
        description="Mean calendar days from a batch's business date (its captures) to its "
        "payout's value date, decimal string with 2 places; null without payouts",
        examples=["1.29"],
    )
    max_days_to_payout: int | None = Field(description="The longest wait, days", examples=[3])


class ReportGroup(ReportFigures):
    key: str = Field(
        description="The group: a local date, a currency, a status or an installment count",
        examples=["2026-11-27"],
    )


class NetAfterFeesAndFx(BaseModel):
    """Issue 13, fx: per currency paid out in."""

    currency: str = Field(description="The currency the merchant is paid in", examples=["TRY"])
    settled_count: int = Field(description="Settled payments counted here", examples=[40])
    converted_count: int = Field(
        description="Of them, converted from another currency", examples=[3]
    )
    net_amount: int = Field(
        description="What the merchant is paid for them, minor units: after card fees, and for "
        "converted ones at the rate fixed at capture after the FX markup (refunds not deducted)",
        examples=[467058],
    )
    fx_markup_amount: int = Field(description="FX markup taken, minor units", examples=[4718])


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
    payout_timing: list[PayoutTiming] = Field(
        description="Payouts whose value date falls on a day of the period, one entry per currency",
        examples=[[TIMING_EXAMPLE]],
    )
    net_after_fees_and_fx: list[NetAfterFeesAndFx] = Field(
        default_factory=list,
        description="Settled payments of the period by the currency they are paid out in",
        examples=[
            [
                {
                    "currency": "TRY",
                    "settled_count": 40,
                    "converted_count": 3,
                    "net_amount": 467058,
                    "fx_markup_amount": 4718,
                }
            ]
        ],
    )
