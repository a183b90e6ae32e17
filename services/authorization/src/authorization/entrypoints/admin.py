"""Ops API of the authorization service: publish the clearing file of a day now (a re-run
replaces the earlier version at settlement) and list the files published."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from authorization.adapters.clearing_repository import ClearingRepository
from authorization.service_layer.clearing import ClearingJob
from sanalpos_common.http import require_admin as admin_guard

MERCHANT_ID = r"^[A-Za-z0-9_.:-]{1,100}$"


def _job(request: Request) -> ClearingJob:
    job: ClearingJob = request.app.state.clearing
    return job


require_admin = admin_guard(lambda request: str(request.app.state.admin_token))
router = APIRouter(prefix="/admin", tags=["ops"], dependencies=[Depends(require_admin)])
Job = Annotated[ClearingJob, Depends(_job)]


class ClearingRunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    clearing_date: date | None = Field(
        default=None, alias="date", description="The day to publish; yesterday when omitted"
    )
    merchant_id: str | None = Field(default=None, pattern=MERCHANT_ID)


class ClearingFileOut(BaseModel):
    merchant_id: str
    currency: str
    clearing_date: date
    version: int
    line_count: int
    parts: int | None = None
    published_at: datetime | None = None


class ClearingRunOut(BaseModel):
    clearing_date: date
    files: list[ClearingFileOut]


@router.post("/clearing/run", response_model=ClearingRunOut)
async def run_clearing(job: Job, body: ClearingRunRequest | None = None) -> ClearingRunOut:
    """Publish the clearing file of `date` for every merchant and currency (or one merchant)
    with operations that day; each gets a new version."""
    request = body or ClearingRunRequest()
    day = request.clearing_date or date.fromordinal(job.today().toordinal() - 1)
    files = await job.publish(day, request.merchant_id)
    return ClearingRunOut(
        clearing_date=day,
        files=[
            ClearingFileOut(
                merchant_id=f.merchant_id,
                currency=f.currency,
                clearing_date=f.clearing_date,
                version=f.version,
                line_count=f.lines,
                parts=f.parts,
            )
            for f in files
        ],
    )


@router.get("/clearing/files", response_model=list[ClearingFileOut])
async def list_clearing_files(
    job: Job,
    clearing_date: Annotated[date | None, Query(alias="date")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ClearingFileOut]:
    async with job.pool.acquire() as conn:
        rows = await ClearingRepository(conn).files(clearing_date, limit)
    return [
        ClearingFileOut(
            merchant_id=r["merchant_id"],
            currency=r["currency"],
            clearing_date=r["clearing_date"],
            version=r["version"],
            line_count=r["line_count"],
            published_at=r["published_at"],
        )
        for r in rows
    ]
