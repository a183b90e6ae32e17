"""The issuer simulator's ops API: raise a chargeback on a captured payment and rule on it.
Bearer `AUTHORIZATION_ADMIN_TOKEN`; problem details on bad input."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from authorization.entrypoints.admin import require_admin
from authorization.service_layer.disputes import Chargeback, DisputeRefused, raise_chargeback, rule
from sanalpos_common.http import Problem


@dataclass(frozen=True)
class IssuerDesk:
    pool: asyncpg.Pool
    producer: str


def desk(request: Request) -> IssuerDesk:
    found: IssuerDesk = request.app.state.issuer_desk
    return found


Desk = Annotated[IssuerDesk, Depends(desk)]


class ChargebackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payment_id: uuid.UUID
    reason_code: str = Field(min_length=1, max_length=10, examples=["10.4"])
    reason: str = Field(min_length=1, max_length=200, examples=["fraudulent transaction"])
    amount: int | None = Field(default=None, gt=0, description="Minor units; default: the rest")
    respond_by: AwareDatetime | None = None
    dispute_id: uuid.UUID | None = None


class RulingBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Literal["won", "lost"] = Field(description="For the merchant")


class IssuerDisputeOut(BaseModel):
    dispute_id: uuid.UUID
    payment_id: uuid.UUID
    merchant_id: str
    amount: int
    currency: str
    reason_code: str
    reason: str
    respond_by: datetime | None
    outcome: str | None
    raised_at: datetime
    decided_at: datetime | None


def _out(row: dict[str, Any]) -> IssuerDisputeOut:
    return IssuerDisputeOut(**{**row, "currency": row["currency"].strip()})


def _problem(exc: DisputeRefused) -> Problem:
    return Problem(exc.status, exc.code, "Dispute refused", str(exc))


router = APIRouter(
    prefix="/admin/issuer/disputes", tags=["issuer"], dependencies=[Depends(require_admin)]
)


@router.post("", response_model=IssuerDisputeOut, status_code=201)
async def raise_dispute(d: Desk, body: ChargebackBody) -> IssuerDisputeOut:
    """The cardholder's bank disputes a captured payment (issuer.dispute-raised.v1)."""
    try:
        row = await raise_chargeback(
            d.pool, d.producer, Chargeback(**body.model_dump()), datetime.now(UTC)
        )
    except DisputeRefused as exc:
        raise _problem(exc) from None
    return _out(row)


@router.post("/{dispute_id}/decision", response_model=IssuerDisputeOut)
async def decide(d: Desk, dispute_id: uuid.UUID, body: RulingBody) -> IssuerDisputeOut:
    """The issuer's ruling (issuer.dispute-decided.v1)."""
    try:
        row = await rule(d.pool, d.producer, dispute_id, body.outcome, datetime.now(UTC))
    except DisputeRefused as exc:
        raise _problem(exc) from None
    return _out(row)
