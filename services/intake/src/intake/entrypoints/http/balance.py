"""The merchant's balance and its settlement batches (what it is owed, and when)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from intake.entrypoints.http.deps import AppContainer, Merchant
from intake.service_layer.balance import list_batches, merchant_balance

BATCH_EXAMPLE: dict[str, Any] = {
    "id": "7d7c2a49-5f54-4c3e-9d8e-8c1f0f0b2f6a",
    "object": "settlement_batch",
    "currency": "TRY",
    "batch_date": "2026-10-28",
    "value_date": "2026-10-30",
    "gross_amount": 125_000,
    "fee_amount": 2_238,
    "refund_amount": 0,
    "reversal_amount": 0,
    "net_amount": 122_762,
    "payment_count": 3,
    "refund_count": 0,
    "reversal_count": 0,
    "closed_at": "2026-10-28T20:59:00+00:00",
}


BALANCE_EXAMPLE: dict[str, Any] = {
    "currency": "TRY",
    "pending": 122_762,
    "available": 0,
    "paid_out": 0,
    "in_transit": 0,
    "held": 0,
    "next_payout": {"value_date": "2026-10-30", "amount": 122_762},
}


class NextPayout(BaseModel):
    value_date: str = Field(description="The next value date (valör)", examples=["2026-10-30"])
    amount: int = Field(description="Net owed on it, minor units", examples=[122_762])


class CurrencyBalanceOut(BaseModel):
    currency: str = Field(description="ISO 4217", examples=["TRY"])
    pending: int = Field(
        description="Net of closed batches whose value date is still ahead, minor units",
        examples=[122_762],
    )
    available: int = Field(
        description="Net of closed batches that reached their value date and are in no "
        "payout yet, minor units (negative when refunds exceeded sales: netted against the "
        "next payouts)",
        examples=[0],
    )
    paid_out: int = Field(description="Payouts your bank confirmed, minor units", examples=[0])
    in_transit: int = Field(
        description="Payouts sent to your bank, not yet confirmed, minor units", examples=[0]
    )
    held: int = Field(
        description="Held by open disputes (GET /v1/disputes), minor units; released when "
        "a dispute is won, debited when it is lost",
        examples=[0],
    )
    next_payout: NextPayout | None = Field(
        description="The nearest value date ahead, if any",
        examples=[{"value_date": "2026-10-30", "amount": 122_762}],
    )


class BalanceOut(BaseModel):
    object: str = Field(default="balance", description="Always `balance`", examples=["balance"])
    as_of: str = Field(description="Today in your time zone", examples=["2026-10-29"])
    balances: list[CurrencyBalanceOut] = Field(
        description="One per currency you were paid in", examples=[[BALANCE_EXAMPLE]]
    )


class SettlementBatchOut(BaseModel):
    id: str = Field(description="Batch id", examples=[BATCH_EXAMPLE["id"]])
    object: str = Field(description="Always `settlement_batch`", examples=["settlement_batch"])
    currency: str = Field(description="ISO 4217", examples=["TRY"])
    batch_date: str = Field(description="Business date the batch covers", examples=["2026-10-28"])
    value_date: str = Field(description="When its net is paid (valör)", examples=["2026-10-30"])
    gross_amount: int = Field(description="Captured amounts, minor units", examples=[125_000])
    fee_amount: int = Field(description="Commission kept, minor units", examples=[2_238])
    refund_amount: int = Field(description="Refunds, minor units", examples=[0])
    reversal_amount: int = Field(description="Same-day cancellations, minor units", examples=[0])
    net_amount: int = Field(
        description="Owed to you for the batch, minor units (negative when refunds exceed sales)",
        examples=[122_762],
    )
    payment_count: int = Field(description="Payments settled in it", examples=[3])
    refund_count: int = Field(description="Refunds booked in it", examples=[0])
    reversal_count: int = Field(description="Captures cancelled in it", examples=[0])
    closed_at: str = Field(description="When it closed", examples=["2026-10-28T20:59:00+00:00"])


class SettlementBatchList(BaseModel):
    object: str = Field(default="list", description="Always `list`", examples=["list"])
    data: list[SettlementBatchOut] = Field(
        description="Closed batches, newest batch date first", examples=[[BATCH_EXAMPLE]]
    )
    has_more: bool = Field(description="Whether another page follows", examples=[False])
    next_cursor: str | None = Field(
        default=None, description="Pass as ?cursor= for the next page", examples=[None]
    )


class BatchQuery(BaseModel):
    model_config = {"extra": "forbid"}

    limit: int = Field(default=20, ge=1, le=100, description="Batches per page")
    cursor: uuid.UUID | None = Field(default=None, description="`next_cursor` of the last page")


router = APIRouter(prefix="/v1", tags=["settlement"])


@router.get("/balance", summary="Read your balance", response_model=BalanceOut)
async def balance(merchant_id: Merchant, c: AppContainer) -> dict[str, Any]:
    """Per currency, what closed end-of-day batches owe you: pending until their value date,
    available from it. Open batches (today's captures) are not in it until they close."""
    return await merchant_balance(c.pool, merchant_id)


@router.get(
    "/settlement-batches", summary="List settlement batches", response_model=SettlementBatchList
)
async def batches(
    query: Annotated[BatchQuery, Query()], merchant_id: Merchant, c: AppContainer
) -> dict[str, Any]:
    """Your closed batches with their totals and value dates, newest first."""
    return await list_batches(c.pool, merchant_id, query.limit, query.cursor)
