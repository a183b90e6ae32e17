"""Ops API for statements: the merchants' payable balances straight from the ledger, the
ledger days as last announced, and recomputing (and announcing) a merchant's days now."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from sanalpos_common.http import Problem
from sanalpos_common.http import require_admin as admin_guard
from settlement.domain.ledger import merchant_payable
from settlement.service_layer.ledger_days import LedgerDayJob

MERCHANT_ID = r"^[A-Za-z0-9_.:-]{1,100}$"

require_admin = admin_guard(lambda request: request.app.state.container.admin_token)
router = APIRouter(prefix="/admin", tags=["ops"], dependencies=[Depends(require_admin)])


def _job(request: Request) -> LedgerDayJob:
    job: LedgerDayJob | None = getattr(request.app.state.container, "ledger_days", None)
    if job is None:
        raise Problem(503, "ledger-days-disabled", "The ledger-day job is not configured")
    return job


class LedgerDayRun(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    merchant_id: str | None = Field(
        default=None,
        pattern=MERCHANT_ID,
        description="Recompute this merchant's days; omitted: one pass of the job",
    )
    from_day: date | None = Field(
        default=None,
        alias="from",
        description="With merchant_id: from this local date (default: its first posting)",
    )


class LedgerDayOut(BaseModel):
    merchant_id: str
    currency: str
    day: date
    opening_balance: int
    sales: int
    refunds: int
    fees: int
    fx: int
    disputes: int
    payouts: int
    other: int
    closing_balance: int
    capture_count: int
    reversal_count: int
    refund_count: int
    payout_count: int
    version: int
    computed_at: datetime


class LedgerDayRunOut(BaseModel):
    announced: list[LedgerDayOut] = Field(description="The days that changed, now announced")


class BalanceOut(BaseModel):
    merchant_id: str
    currency: str
    payable: int = Field(description="Credits less debits of the merchant's payable, minor units")


@router.post("/ledger-days/run", response_model=LedgerDayRunOut)
async def run_ledger_days(request: Request, body: LedgerDayRun | None = None) -> LedgerDayRunOut:
    job = _job(request)
    body = body or LedgerDayRun()
    if body.merchant_id is None:
        if body.from_day is not None:
            raise Problem(
                422,
                "validation-error",
                "Request is invalid",
                "from needs merchant_id",
                errors=[{"field": "from", "message": "needs merchant_id", "code": "missing"}],
            )
        events = await job.run_pass()
    else:
        events = await job.recompute(body.merchant_id, body.from_day)
    return LedgerDayRunOut(announced=[LedgerDayOut(**e.model_dump()) for e in events])


@router.get("/ledger-days", response_model=list[LedgerDayOut])
async def list_ledger_days(
    request: Request,
    merchant_id: Annotated[str, Query(pattern=MERCHANT_ID)],
    from_day: Annotated[date | None, Query(alias="from")] = None,
    to_day: Annotated[date | None, Query(alias="to", description="Inclusive")] = None,
) -> list[dict[str, Any]]:
    async with request.app.state.container.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT * FROM ledger_days WHERE merchant_id = $1 "
            "AND ($2::date IS NULL OR day >= $2) AND ($3::date IS NULL OR day <= $3) "
            "ORDER BY currency, day",
            merchant_id,
            from_day,
            to_day,
        )
    return [{**dict(r), "currency": r["currency"].strip()} for r in rows]


@router.get("/balances", response_model=list[BalanceOut])
async def balances(
    request: Request, merchant_id: Annotated[str, Query(pattern=MERCHANT_ID)]
) -> list[BalanceOut]:
    """The merchant's payable per currency, summed from every ledger entry now."""
    async with request.app.state.container.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT currency, sum(CASE WHEN direction = 'credit' THEN amount ELSE -amount END) "
            "AS payable FROM ledger_entries WHERE account = $1 GROUP BY currency "
            "ORDER BY currency",
            merchant_payable(merchant_id),
        )
    return [
        BalanceOut(merchant_id=merchant_id, currency=r["currency"].strip(), payable=r["payable"])
        for r in rows
    ]
