"""Ops API: close batches now, list batches with their totals (the settlement report)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from sanalpos_common.http import install_problem_handlers
from sanalpos_common.http import require_admin as admin_guard
from settlement.adapters.batches import BatchRepository
from settlement.domain.batches import batch_totals
from settlement.domain.ledger import merchant_payable
from settlement.service_layer.batch_closing import BatchCloser

MERCHANT_ID = r"^[A-Za-z0-9_.:-]{1,100}$"


@dataclass(frozen=True)
class Container:
    pool: asyncpg.Pool
    closer: BatchCloser
    admin_token: str


def container(request: Request) -> Container:
    found: Container = request.app.state.container
    return found


require_admin = admin_guard(lambda request: container(request).admin_token)


class CloseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    merchant_id: str | None = Field(
        default=None, pattern=MERCHANT_ID, description="Only this merchant; all when omitted"
    )


class Totals(BaseModel):
    gross_amount: int
    fee_amount: int
    refund_amount: int
    reversal_amount: int
    net_amount: int


class BatchOut(BaseModel):
    id: uuid.UUID
    merchant_id: str
    currency: str
    batch_date: date
    status: Literal["open", "closed"]
    closes_at: datetime
    closed_at: datetime | None
    close_reason: str | None
    value_date: date | None
    totals: Totals = Field(description="Final when closed; running totals while open")
    payment_count: int | None = Field(description="Payments settled by the close")
    refund_count: int | None
    reversal_count: int | None


class ClosedOut(BaseModel):
    closed: list[BatchOut]


def _batch_out(row: dict[str, Any], running: Totals | None = None) -> BatchOut:
    totals = running or Totals(
        gross_amount=row["gross_amount"],
        fee_amount=row["fee_amount"],
        refund_amount=row["refund_amount"],
        reversal_amount=row["reversal_amount"],
        net_amount=row["net_amount"],
    )
    return BatchOut(
        id=row["id"],
        merchant_id=row["merchant_id"],
        currency=row["currency"].strip(),
        batch_date=row["batch_date"],
        status=row["status"],
        closes_at=row["closes_at"],
        closed_at=row["closed_at"],
        close_reason=row["close_reason"],
        value_date=row["value_date"],
        totals=totals,
        payment_count=row["payment_count"],
        refund_count=row["refund_count"],
        reversal_count=row["reversal_count"],
    )


async def _running_totals(batches: BatchRepository, row: dict[str, Any]) -> Totals:
    totals = batch_totals(merchant_payable(row["merchant_id"]), await batches.lines(row["id"]))
    return Totals(
        gross_amount=totals.gross,
        fee_amount=totals.fees,
        refund_amount=totals.refunds,
        reversal_amount=totals.reversals,
        net_amount=totals.net,
    )


router = APIRouter(prefix="/admin", tags=["ops"], dependencies=[Depends(require_admin)])
AppContainer = Annotated[Container, Depends(container)]


@router.post("/batches/close", response_model=ClosedOut)
async def close_batches(c: AppContainer, body: CloseRequest | None = None) -> ClosedOut:
    """Close the open batches now (one merchant's, or every merchant's) and settle them."""
    closed = await c.closer.close_open(body.merchant_id if body else None)
    ids = [b.id for b in closed]
    async with c.pool.acquire() as conn:
        rows = {r["id"]: r for r in await BatchRepository(conn).by_ids(ids)}
    return ClosedOut(closed=[_batch_out(rows[i]) for i in ids])


@router.get("/batches", response_model=list[BatchOut])
async def list_batches(
    c: AppContainer,
    merchant_id: Annotated[str | None, Query(pattern=MERCHANT_ID)] = None,
    status: Annotated[Literal["open", "closed"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[BatchOut]:
    async with c.pool.acquire() as conn:
        batches = BatchRepository(conn)
        rows = await batches.listing(merchant_id, status, limit)
        return [
            _batch_out(r, await _running_totals(batches, r) if r["status"] == "open" else None)
            for r in rows
        ]


def build_app() -> FastAPI:
    app = FastAPI(title="sanalpos settlement")
    install_problem_handlers(app)
    app.include_router(router)
    return app
