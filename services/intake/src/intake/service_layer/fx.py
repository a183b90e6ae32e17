"""Multi-currency at intake: the rates settlement holds (settlement.fx-rate.v1, the freshest
per currency pair and source), and refusing a payment its merchant wants converted while no
fresh rate exists, when the merchant chose `fx_no_rate: refuse`.

Each service keeps its own database: settlement owns the rates and announces each one with
its validity; intake keeps a copy to answer at the door. Settlement decides again at capture
with its own rates, so a rate that goes stale between the two never converts a payment."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import asyncpg

from intake.adapters.merchants import MerchantStore
from intake.service_layer.problems import FieldError, ProblemDetails, Refused
from sanalpos_common.db import Connection, UnitOfWork
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import FxRateUpdated


async def on_fx_rate_updated(uow: UnitOfWork, envelope: Envelope[FxRateUpdated]) -> None:
    rate = envelope.payload
    await uow.conn.execute(
        "INSERT INTO fx_rates (base, quote, source, rate_id, rate, as_of, valid_until) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (base, quote, source) DO UPDATE SET "
        "rate_id = EXCLUDED.rate_id, rate = EXCLUDED.rate, as_of = EXCLUDED.as_of, "
        "valid_until = EXCLUDED.valid_until, updated_at = now() "
        "WHERE fx_rates.as_of <= EXCLUDED.as_of",
        rate.base,
        rate.quote,
        rate.source,
        rate.rate_id,
        rate.rate,
        rate.as_of,
        rate.valid_until,
    )


def rate_unavailable(currency: str, target: str) -> ProblemDetails:
    return ProblemDetails(
        422,
        "fx-rate-unavailable",
        "No fresh exchange rate for this currency",
        f"payments in {currency} are converted into {target} for this merchant, and no fresh "
        f"{currency}/{target} rate exists now; the merchant refuses such payments",
        (FieldError("currency", f"no fresh {currency}/{target} rate", "fx_rate_unavailable"),),
    )


async def check_convertible(
    db: Connection | asyncpg.Pool,
    merchant_id: str,
    currency: str,
    now: datetime | None = None,
    merchant: Any = None,
) -> None:
    """Raises Refused when the payment is to be converted, no fresh rate exists and the
    merchant refuses such payments; a currency settled in itself costs one small query, or
    none when the caller read the merchant already (`merchant`: settlement_currency,
    choices, fx_no_rate, as MerchantStore.payment_settings reads them)."""
    row = (
        merchant if merchant is not None else await MerchantStore(db).payment_settings(merchant_id)
    )
    if row is None or row["fx_no_rate"] != "refuse":
        return
    target = row["settlement_currency"].strip()
    if currency == target or json.loads(row["choices"]).get(currency) != "convert":
        return
    at = now or datetime.now(UTC)
    fresh = await db.fetchval(
        "SELECT 1 FROM fx_rates WHERE ((base = $1 AND quote = $2) OR (base = $2 AND quote = $1)) "
        "AND as_of <= $3 AND valid_until > $3 LIMIT 1",
        currency,
        target,
        at,
    )
    if fresh is None:
        raise Refused(rate_unavailable(currency, target))
