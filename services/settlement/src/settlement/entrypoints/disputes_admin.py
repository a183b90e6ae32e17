"""Ops API for disputes, standing in for the issuer: raise a chargeback on a captured payment,
rule on it (won or lost), list disputes."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from sanalpos_common.http import Problem
from settlement.adapters.disputes import DisputeRepository
from settlement.domain.disputes import DisputeRefused
from settlement.entrypoints.admin import MERCHANT_ID, AppContainer, Container, require_admin
from settlement.service_layer.disputes import (
    DisputeDesk,
    DisputeNotFound,
    PaymentNotDisputable,
    RaiseRequest,
)


class RaiseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payment_id: uuid.UUID
    reason_code: str = Field(min_length=1, max_length=10, examples=["10.4"])
    reason: str = Field(min_length=1, max_length=200, examples=["fraudulent transaction"])
    amount: int | None = Field(
        default=None, gt=0, description="Minor units; the whole disputable rest when omitted"
    )
    respond_by: AwareDatetime | None = Field(
        default=None, description="The merchant's deadline; default: the configured days"
    )
    dispute_id: uuid.UUID | None = Field(
        default=None, description="The issuer's id for it: raising it again changes nothing"
    )


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Literal["won", "lost"] = Field(description="For the merchant")


class DisputeOut(BaseModel):
    dispute_id: uuid.UUID
    payment_id: uuid.UUID
    merchant_id: str
    amount: int
    currency: str
    fee: int
    reason_code: str
    reason: str
    status: str
    respond_by: datetime
    response: str | None
    responded_at: datetime | None
    outcome_reason: str | None
    evidence: Any | None
    version: int
    created_at: datetime
    updated_at: datetime


def _out(row: dict[str, Any]) -> DisputeOut:
    evidence = row["evidence"]
    if isinstance(evidence, str):
        evidence = json.loads(evidence)
    return DisputeOut(**{**row, "currency": row["currency"].strip(), "evidence": evidence})


def _desk(c: Container) -> DisputeDesk:
    if c.disputes is None:
        raise Problem(503, "disputes-unavailable", "Disputes are not set up")
    return c.disputes


router = APIRouter(prefix="/admin/disputes", tags=["ops"], dependencies=[Depends(require_admin)])


@router.post("", response_model=DisputeOut, status_code=201)
async def raise_dispute(c: AppContainer, body: RaiseBody) -> DisputeOut:
    """The issuer disputes a captured payment: its amount is held from the merchant."""
    try:
        row = await _desk(c).raise_dispute(RaiseRequest(**body.model_dump()))
    except PaymentNotDisputable as exc:
        status = 404 if exc.code == "payment_not_found" else 422
        raise Problem(status, exc.code.replace("_", "-"), "Not disputable", str(exc)) from None
    return _out(row)


@router.post("/{dispute_id}/decision", response_model=DisputeOut)
async def decide(c: AppContainer, dispute_id: uuid.UUID, body: DecisionBody) -> DisputeOut:
    """The issuer's ruling: won releases the hold; lost debits the amount and the fee."""
    try:
        row = await _desk(c).decide(dispute_id, body.outcome == "won")
    except DisputeNotFound:
        raise Problem(404, "not-found", "No such dispute", str(dispute_id)) from None
    except DisputeRefused as exc:
        raise Problem(409, exc.code.replace("_", "-"), "Dispute already closed", str(exc)) from None
    return _out(row)


@router.post("/expire", response_model=list[uuid.UUID])
async def expire(c: AppContainer) -> list[uuid.UUID]:
    """Run the expiry pass now: disputes with no answer past deadline and grace are lost."""
    return await _desk(c).expire_due()


@router.get("", response_model=list[DisputeOut])
async def list_disputes(
    c: AppContainer,
    merchant_id: Annotated[str | None, Query(pattern=MERCHANT_ID)] = None,
    status: Annotated[
        Literal["needs_response", "under_review", "won", "lost"] | None, Query()
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DisputeOut]:
    async with c.pool.acquire() as conn:
        rows = await DisputeRepository(conn).listing(merchant_id, status, limit)
    return [_out(r) for r in rows]


@router.get("/{dispute_id}", response_model=DisputeOut)
async def read_dispute(c: AppContainer, dispute_id: uuid.UUID) -> DisputeOut:
    async with c.pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM disputes WHERE dispute_id = $1", dispute_id)
    if not rows:
        raise Problem(404, "not-found", "No such dispute", str(dispute_id))
    return _out(dict(rows[0]))
