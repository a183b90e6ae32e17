"""Ops API: close batches now, list batches with their totals (the settlement report), run the
payout job for a date, list payouts, payout files and holds, and record the bank's answer."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from sanalpos_common.http import Problem, install_problem_handlers
from sanalpos_common.http import require_admin as admin_guard
from sanalpos_common.schemas.events import PayoutStatus
from settlement.adapters.batches import BatchRepository
from settlement.adapters.payouts import PayoutRepository
from settlement.domain.batches import batch_totals
from settlement.domain.ledger import merchant_payable
from settlement.entrypoints import ledger_admin
from settlement.service_layer.batch_closing import BatchCloser, utc_now
from settlement.service_layer.disputes import DisputeDesk
from settlement.service_layer.ledger_days import LedgerDayJob
from settlement.service_layer.payouts import (
    PayoutJob,
    PayoutNotFound,
    PayoutStateConflict,
    bank_answer,
)

MERCHANT_ID = r"^[A-Za-z0-9_.:-]{1,100}$"


@dataclass(frozen=True)
class Container:
    pool: asyncpg.Pool
    closer: BatchCloser
    admin_token: str
    payouts: PayoutJob | None = None
    producer: str = "settlement"
    ledger_days: LedgerDayJob | None = None
    disputes: DisputeDesk | None = None
    fx_max_rate_age_s: float = 96 * 3600.0  # issue 13, fx


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


class PayoutRunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_date: date | None = Field(
        default=None,
        alias="date",
        description="The value date to pay out for; today (payout time zone)",
    )
    merchant_id: str | None = Field(default=None, pattern=MERCHANT_ID)


class PayoutLineOut(BaseModel):
    batch_id: uuid.UUID
    batch_date: date
    value_date: date
    amount: int


class PayoutOut(BaseModel):
    id: uuid.UUID
    merchant_id: str
    currency: str
    amount: int
    value_date: date
    status: PayoutStatus
    account_id: uuid.UUID
    iban: str
    holder_name: str
    file_id: uuid.UUID | None
    reason: str | None
    created_at: datetime
    updated_at: datetime
    lines: list[PayoutLineOut] | None = None


class HoldOut(BaseModel):
    merchant_id: str
    currency: str
    reason: str
    amount: int = Field(description="What was due, minor units (may be negative)")
    batch_count: int
    run_date: date | None = None


class PayoutFileOut(BaseModel):
    id: uuid.UUID
    message_id: str
    xml_path: str
    csv_path: str
    payout_count: int
    run_date: date | None = None
    created_at: datetime | None = None


class PayoutRunOut(BaseModel):
    run_date: date
    payouts: list[PayoutOut]
    holds: list[HoldOut]
    file: PayoutFileOut | None


class BankAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500)


class BankReturnsOut(BaseModel):
    updated: list[PayoutOut]


def _payout_out(row: dict[str, Any], lines: list[dict[str, Any]] | None = None) -> PayoutOut:
    return PayoutOut(
        id=row["id"],
        merchant_id=row["merchant_id"],
        currency=row["currency"].strip(),
        amount=row["amount"],
        value_date=row["value_date"],
        status=PayoutStatus(row["status"]),
        account_id=row["account_id"],
        iban=row["iban"],
        holder_name=row["holder_name"],
        file_id=row["file_id"],
        reason=row["reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        lines=None if lines is None else [PayoutLineOut(**line) for line in lines],
    )


def _job(c: Container) -> PayoutJob:
    if c.payouts is None:
        raise Problem(503, "payouts-disabled", "The payout job is not configured")
    return c.payouts


async def _payouts_by_ids(c: Container, ids: list[uuid.UUID]) -> list[PayoutOut]:
    found = []
    async with c.pool.acquire() as conn:
        payouts = PayoutRepository(conn)
        for payout_id in ids:
            row = await conn.fetchrow("SELECT * FROM payouts WHERE id = $1", payout_id)
            assert row is not None  # ids of payouts just made or answered
            found.append(_payout_out(dict(row), await payouts.lines(payout_id)))
    return found


@router.post("/payouts/run", response_model=PayoutRunOut)
async def run_payouts(c: AppContainer, body: PayoutRunRequest | None = None) -> PayoutRunOut:
    """Pay out every batch whose value date has come by `date`; running it again for the
    same date creates nothing new."""
    job = _job(c)
    request = body or PayoutRunRequest()
    result = await job.run_for(request.run_date or job.today(), request.merchant_id)
    return PayoutRunOut(
        run_date=result.run_date,
        payouts=await _payouts_by_ids(c, result.payouts),
        holds=[HoldOut(**h) for h in result.holds],
        file=None if result.file is None else PayoutFileOut(**result.file),
    )


@router.get("/payouts", response_model=list[PayoutOut])
async def list_payouts(
    c: AppContainer,
    merchant_id: Annotated[str | None, Query(pattern=MERCHANT_ID)] = None,
    status: Annotated[PayoutStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[PayoutOut]:
    async with c.pool.acquire() as conn:
        rows = await PayoutRepository(conn).listing(
            merchant_id, status.value if status else None, limit
        )
    return [_payout_out(r) for r in rows]


@router.get("/payouts/{payout_id}", response_model=PayoutOut)
async def read_payout(c: AppContainer, payout_id: uuid.UUID) -> PayoutOut:
    async with c.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM payouts WHERE id = $1", payout_id)
    if row is None:
        raise Problem(404, "not-found", "No such payout", f"payout {payout_id} not found")
    return (await _payouts_by_ids(c, [payout_id]))[0]


async def _answer(
    c: Container, payout_id: uuid.UUID, status: PayoutStatus, reason: str | None
) -> PayoutOut:
    try:
        await bank_answer(c.pool, c.producer, payout_id, status, reason, utc_now())
    except PayoutNotFound:
        raise Problem(404, "not-found", "No such payout", f"payout {payout_id} not found") from None
    except PayoutStateConflict as exc:
        raise Problem(409, "payout-state-conflict", "Payout already answered", str(exc)) from None
    return (await _payouts_by_ids(c, [payout_id]))[0]


@router.post("/payouts/{payout_id}/paid", response_model=PayoutOut)
async def mark_paid(
    c: AppContainer, payout_id: uuid.UUID, body: BankAnswer | None = None
) -> PayoutOut:
    """The bank paid it: in transit becomes cleared in the ledger."""
    return await _answer(c, payout_id, PayoutStatus.PAID, body.reason if body else None)


@router.post("/payouts/{payout_id}/returned", response_model=PayoutOut)
async def mark_returned(
    c: AppContainer, payout_id: uuid.UUID, body: BankAnswer | None = None
) -> PayoutOut:
    """The bank returned it: the money is the merchant's available balance again."""
    return await _answer(c, payout_id, PayoutStatus.RETURNED, body.reason if body else None)


@router.post("/payouts/bank-returns", response_model=BankReturnsOut)
async def import_bank_returns(c: AppContainer, request: Request) -> BankReturnsOut:
    """A bank return file: CSV with a header `end_to_end_id,status,reason` (status `paid` or
    `returned`; the end-to-end id as in the pain.001 file, or the payout id)."""
    raw = await request.body()
    if len(raw) > 1_000_000:
        raise Problem(413, "payload-too-large", "Return file too large")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Problem(422, "validation-error", "Bad return file", "not UTF-8") from None
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or not {"end_to_end_id", "status"} <= set(reader.fieldnames):
        raise Problem(
            422, "validation-error", "Bad return file", "header: end_to_end_id,status,reason"
        )
    answers = []
    for number, row in enumerate(reader, start=2):
        try:
            payout_id = uuid.UUID(row["end_to_end_id"].strip())
            status = PayoutStatus(row["status"].strip())
        except ValueError:
            raise Problem(
                422, "validation-error", "Bad return file", f"line {number}: id or status"
            ) from None
        if status is PayoutStatus.IN_TRANSIT:
            raise Problem(422, "validation-error", "Bad return file", f"line {number}: status")
        answers.append((payout_id, status, (row.get("reason") or "").strip() or None))
    return BankReturnsOut(updated=[await _answer(c, *answer) for answer in answers])


@router.get("/payout-files", response_model=list[PayoutFileOut])
async def list_payout_files(
    c: AppContainer, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[PayoutFileOut]:
    """The payout files written, newest first, with where they are."""
    async with c.pool.acquire() as conn:
        rows = await PayoutRepository(conn).files(limit)
    return [
        PayoutFileOut(
            id=r["id"],
            message_id=r["message_id"],
            xml_path=r["xml_path"],
            csv_path=r["csv_path"],
            payout_count=r["payout_count"],
            run_date=r["run_date"],
            created_at=r["created_at"],
        )
        for r in rows
    ]


@router.get("/payout-holds", response_model=list[HoldOut])
async def list_payout_holds(
    c: AppContainer,
    merchant_id: Annotated[str | None, Query(pattern=MERCHANT_ID)] = None,
    run_date: Annotated[date | None, Query()] = None,
) -> list[HoldOut]:
    """Due money not paid out on a run date, and why."""
    async with c.pool.acquire() as conn:
        rows = await PayoutRepository(conn).holds(merchant_id, run_date)
    return [
        HoldOut(
            merchant_id=r["merchant_id"],
            currency=r["currency"].strip(),
            reason=r["reason"],
            amount=r["amount"],
            batch_count=r["batch_count"],
            run_date=r["run_date"],
        )
        for r in rows
    ]


def build_app() -> FastAPI:
    app = FastAPI(title="sanalpos settlement")
    install_problem_handlers(app)
    app.include_router(router)
    app.include_router(ledger_admin.router)
    from settlement.entrypoints import disputes_admin  # imports this module's router

    app.include_router(disputes_admin.router)
    from settlement.entrypoints import fx_admin

    app.include_router(fx_admin.router)  # issue 13, fx
    return app
