"""Ops API of reconciliation: run it for a date now, list the mismatches (the latest run's of
each merchant, currency and date) and the runs."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from settlement.adapters.reconciliation import ReconciliationStore
from settlement.domain.reconciliation import MismatchKind, Source
from settlement.entrypoints.admin import MERCHANT_ID, require_admin
from settlement.service_layer.reconciliation import Reconciler


def _reconciler(request: Request) -> Reconciler:
    found: Reconciler = request.app.state.reconciler
    return found


router = APIRouter(prefix="/admin/recon", tags=["ops"], dependencies=[Depends(require_admin)])
Recon = Annotated[Reconciler, Depends(_reconciler)]


class ReconRunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    recon_date: date | None = Field(
        default=None, alias="date", description="The date to reconcile; yesterday when omitted"
    )
    merchant_id: str | None = Field(default=None, pattern=MERCHANT_ID)


class MismatchOut(BaseModel):
    merchant_id: str
    currency: str
    recon_date: date
    kind: MismatchKind
    source: Source = Field(description="Where the fault shows: clearing, ledger or payouts")
    reference: uuid.UUID = Field(description="The payment, or the payout (source payouts)")
    refund_id: uuid.UUID | None = None
    expected_amount: int | None = None
    actual_amount: int | None = None
    reason: str
    detected_at: datetime | None = None


class ReconRunOut(BaseModel):
    run_id: uuid.UUID
    merchant_id: str
    currency: str
    recon_date: date
    trigger: str | None = None
    clearing_version: int | None = Field(description="None: no clearing file for the day")
    mismatch_count: int
    mismatches: list[MismatchOut] | None = None
    ran_at: datetime | None = None


class ReconRunsOut(BaseModel):
    recon_date: date
    runs: list[ReconRunOut]
    mismatch_count: int


def mismatch_out(row: dict[str, Any]) -> MismatchOut:
    return MismatchOut(**{k: row[k] for k in MismatchOut.model_fields if k in row})


@router.post("/run", response_model=ReconRunsOut)
async def run_reconciliation(recon: Recon, body: ReconRunRequest | None = None) -> ReconRunsOut:
    """Reconcile `date` now for every merchant and currency (or one merchant) with a clearing
    file, ledger lines or payouts that day; each run replaces the mismatches of the last."""
    request = body or ReconRunRequest()
    day = request.recon_date or recon.today() - timedelta(days=1)
    outcomes = await recon.run_for(day, request.merchant_id)
    runs = [
        ReconRunOut(
            run_id=o.run_id,
            merchant_id=o.merchant_id,
            currency=o.currency,
            recon_date=o.recon_date,
            trigger="manual",
            clearing_version=o.clearing_version,
            mismatch_count=len(o.mismatches),
            mismatches=[
                MismatchOut(
                    merchant_id=o.merchant_id,
                    currency=o.currency,
                    recon_date=o.recon_date,
                    kind=m.kind,
                    source=m.source,
                    reference=m.reference,
                    refund_id=m.refund_id,
                    expected_amount=m.expected,
                    actual_amount=m.actual,
                    reason=m.reason,
                )
                for m in o.mismatches
            ],
        )
        for o in outcomes
    ]
    return ReconRunsOut(
        recon_date=day, runs=runs, mismatch_count=sum(r.mismatch_count for r in runs)
    )


@router.get("/mismatches", response_model=list[MismatchOut])
async def list_mismatches(
    recon: Recon,
    recon_date: Annotated[date | None, Query(alias="date")] = None,
    merchant_id: Annotated[str | None, Query(pattern=MERCHANT_ID)] = None,
    kind: Annotated[MismatchKind | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[MismatchOut]:
    async with recon.pool.acquire() as conn:
        rows = await ReconciliationStore(conn).mismatches(
            recon_date, merchant_id, kind.value if kind else None, limit
        )
    return [mismatch_out(r) for r in rows]


@router.get("/runs", response_model=list[ReconRunOut])
async def list_runs(
    recon: Recon,
    recon_date: Annotated[date | None, Query(alias="date")] = None,
    merchant_id: Annotated[str | None, Query(pattern=MERCHANT_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ReconRunOut]:
    async with recon.pool.acquire() as conn:
        rows = await ReconciliationStore(conn).runs(recon_date, merchant_id, limit)
    return [
        ReconRunOut(
            run_id=r["id"],
            merchant_id=r["merchant_id"],
            currency=r["currency"],
            recon_date=r["recon_date"],
            trigger=r["trigger"],
            clearing_version=r["clearing_version"],
            mismatch_count=r["mismatch_count"],
            ran_at=r["ran_at"],
        )
        for r in rows
    ]
