"""Ops API for FX rates: set one by hand, upload a TCMB or ECB rate file, list the rates held
(with whether each is fresh), and read the conversion fixed on a payment."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sanalpos_common.db import unit_of_work
from sanalpos_common.http import Problem
from sanalpos_common.money import CurrencyCode
from settlement.adapters.fx import FxRateRepository, PaymentConversionRepository
from settlement.domain.fx import Rate, RateFileError, RateSource
from settlement.entrypoints.admin import AppContainer, require_admin
from settlement.service_layer import fx

RATE_PATTERN = r"^[0-9]{1,20}(\.[0-9]{1,10})?$"
MAX_RATE_FILE = 2_000_000

router = APIRouter(prefix="/admin/fx", tags=["fx"], dependencies=[Depends(require_admin)])


class RateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base: CurrencyCode
    quote: CurrencyCode
    rate: str = Field(
        pattern=RATE_PATTERN,
        description="Units of quote per unit of base, a decimal string (never a float), up "
        "to 10 places",
        examples=["47.8912"],
    )
    as_of: datetime | None = Field(default=None, description="Default: now")
    valid_for_s: int | None = Field(
        default=None, gt=0, le=30 * 86400, description="Default: the service's maximum age"
    )

    @model_validator(mode="after")
    def _pair(self) -> RateIn:
        if self.base == self.quote:
            raise ValueError("quote must differ from base")
        if Decimal(self.rate) <= 0:
            raise ValueError("rate must be positive")
        if self.as_of is not None and self.as_of.tzinfo is None:
            raise ValueError("as_of needs a time zone offset")
        return self


class RateOut(BaseModel):
    id: uuid.UUID
    base: str
    quote: str
    rate: str = Field(description="Exact decimal string")
    source: RateSource
    as_of: datetime
    valid_until: datetime
    fresh: bool | None = None


class RateFileOut(BaseModel):
    source: RateSource
    rates_in_file: int
    added: list[RateOut]


class ConversionOut(BaseModel):
    payment_id: uuid.UUID
    status: Literal["converted", "no_rate"]
    currency: str
    amount: int = Field(description="The payment's net after its card fee, minor units")
    settlement_currency: str
    converted_amount: int | None
    markup_bps: int | None
    markup_amount: int | None
    rate_id: uuid.UUID | None
    rate: str | None
    rate_source: str | None
    rate_as_of: datetime | None
    fixed_at: datetime | None


def _out(rate: Rate, fresh: bool | None = None) -> RateOut:
    return RateOut(
        id=rate.id,
        base=rate.base,
        quote=rate.quote,
        rate=str(rate.rate),
        source=rate.source,
        as_of=rate.as_of,
        valid_until=rate.valid_until,
        fresh=fresh,
    )


def _max_age(c: AppContainer) -> timedelta:
    return timedelta(seconds=c.fx_max_rate_age_s)


@router.post("/rates", response_model=RateOut, status_code=201)
async def set_rate(c: AppContainer, body: RateIn) -> RateOut:
    """Set a rate by hand; it converts payments captured from `as_of` until it goes stale."""
    as_of = body.as_of or datetime.now(UTC)
    valid_for = timedelta(seconds=body.valid_for_s) if body.valid_for_s else _max_age(c)
    async with unit_of_work(c.pool, producer=c.producer) as uow:
        rate = await fx.set_rate(uow, body.base, body.quote, Decimal(body.rate), as_of, valid_for)
    return _out(rate)


@router.post("/rate-files/{source}", response_model=RateFileOut)
async def upload_rate_file(
    c: AppContainer, source: Literal["tcmb", "ecb"], request: Request
) -> RateFileOut:
    """A TCMB `today.xml` or ECB `eurofxref-daily.xml` as the request body; rates already
    held are not stored twice."""
    raw = await request.body()
    if len(raw) > MAX_RATE_FILE:
        raise Problem(413, "payload-too-large", "Rate file too large")
    try:
        async with unit_of_work(c.pool, producer=c.producer) as uow:
            count, added = await fx.load_rate_file(uow, RateSource(source), raw, _max_age(c))
    except RateFileError as exc:
        raise Problem(422, "validation-error", "Bad rate file", str(exc)) from None
    return RateFileOut(
        source=RateSource(source), rates_in_file=count, added=[_out(r) for r in added]
    )


@router.get("/rates", response_model=list[RateOut])
async def list_rates(
    c: AppContainer, at: Annotated[datetime | None, Query()] = None
) -> list[RateOut]:
    """The newest rate of each pair and source by `at` (default now), and whether it is fresh."""
    async with c.pool.acquire() as conn:
        held = await FxRateRepository(conn).latest(at or datetime.now(UTC))
    return [_out(rate, fresh) for rate, fresh in held]


@router.get("/payments/{payment_id}", response_model=ConversionOut)
async def read_conversion(c: AppContainer, payment_id: uuid.UUID) -> ConversionOut:
    """The conversion fixed on a payment at its capture (or that it had no fresh rate)."""
    async with c.pool.acquire() as conn:
        found = await PaymentConversionRepository(conn).get(payment_id)
    if found is None:
        raise Problem(404, "not-found", "No conversion", f"payment {payment_id} not converted")
    return ConversionOut(
        payment_id=found.payment_id,
        status=found.status,
        currency=found.currency,
        amount=found.amount,
        settlement_currency=found.settlement_currency,
        converted_amount=found.converted_amount,
        markup_bps=found.markup_bps,
        markup_amount=found.markup_amount,
        rate_id=found.rate_id,
        rate=None if found.rate is None else str(found.rate),
        rate_source=found.rate_source,
        rate_as_of=found.rate_as_of,
        fixed_at=found.fixed_at,
    )
