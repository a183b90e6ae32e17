"""FX rates held by settlement, and the conversion fixed on each converted payment."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sanalpos_common.db import Connection
from settlement.domain.fx import Conversion, Rate, RateSource, pick_rate


def _rate(row: Any) -> Rate:
    return Rate(
        id=row["id"],
        base=row["base"].strip(),
        quote=row["quote"].strip(),
        rate=Decimal(row["rate"]).normalize(),
        source=RateSource(row["source"]),
        as_of=row["as_of"],
        valid_until=row["valid_until"],
    )


class FxRateRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def add(self, rate: Rate) -> bool:
        """False when this rate is stored already (the same file loaded again)."""
        inserted = await self.conn.fetchval(
            "INSERT INTO fx_rates (id, base, quote, rate, source, as_of, valid_until) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING 1",
            rate.id,
            rate.base,
            rate.quote,
            rate.rate,
            rate.source.value,
            rate.as_of,
            rate.valid_until,
        )
        return inserted is not None

    async def get(self, rate_id: uuid.UUID) -> Rate | None:
        row = await self.conn.fetchrow("SELECT * FROM fx_rates WHERE id = $1", rate_id)
        return None if row is None else _rate(row)

    async def conversion(
        self, from_currency: str, to_currency: str, at: datetime
    ) -> Conversion | None:
        """The newest rate fresh at `at` for the pair, either way round (domain pick_rate)."""
        rows = await self.conn.fetch(
            "SELECT * FROM fx_rates WHERE ((base = $1 AND quote = $2) OR (base = $2 AND "
            "quote = $1)) AND as_of <= $3 AND valid_until > $3 ORDER BY as_of DESC LIMIT 20",
            from_currency,
            to_currency,
            at,
        )
        return pick_rate([_rate(r) for r in rows], from_currency, to_currency, at)

    async def latest(self, at: datetime, limit: int = 200) -> list[tuple[Rate, bool]]:
        """The newest rate of each pair and source, with whether it is fresh at `at`."""
        rows = await self.conn.fetch(
            "SELECT DISTINCT ON (base, quote, source) * FROM fx_rates WHERE as_of <= $1 "
            "ORDER BY base, quote, source, as_of DESC, created_at DESC LIMIT $2",
            at,
            limit,
        )
        return [(r, r.fresh_at(at)) for r in map(_rate, rows)]


@dataclass(frozen=True)
class PaymentConversion:
    payment_id: uuid.UUID
    status: str
    """converted, or no_rate (settled in its own currency)."""
    currency: str
    amount: int
    settlement_currency: str
    converted_amount: int | None = None
    markup_bps: int | None = None
    markup_amount: int | None = None
    rate_id: uuid.UUID | None = None
    rate: Decimal | None = None
    rate_source: str | None = None
    rate_as_of: datetime | None = None
    fixed_at: datetime | None = None

    @property
    def batch_currency(self) -> str:
        return self.settlement_currency if self.status == "converted" else self.currency


class PaymentConversionRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def add(self, c: PaymentConversion) -> None:
        await self.conn.execute(
            "INSERT INTO payment_conversions (payment_id, status, currency, amount, "
            "settlement_currency, converted_amount, markup_bps, markup_amount, rate_id, rate, "
            "rate_source, rate_as_of, fixed_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) "
            "ON CONFLICT DO NOTHING",
            c.payment_id,
            c.status,
            c.currency,
            c.amount,
            c.settlement_currency,
            c.converted_amount,
            c.markup_bps,
            c.markup_amount,
            c.rate_id,
            c.rate,
            c.rate_source,
            c.rate_as_of,
            c.fixed_at,
        )

    async def get(self, payment_id: uuid.UUID) -> PaymentConversion | None:
        row = await self.conn.fetchrow(
            "SELECT * FROM payment_conversions WHERE payment_id = $1", payment_id
        )
        return None if row is None else _conversion(row)

    async def converted(self, payment_ids: list[uuid.UUID]) -> dict[uuid.UUID, PaymentConversion]:
        """The converted ones among these payments (one query for a whole batch)."""
        rows = await self.conn.fetch(
            "SELECT * FROM payment_conversions WHERE payment_id = ANY($1::uuid[]) "
            "AND status = 'converted'",
            payment_ids,
        )
        return {r["payment_id"]: _conversion(r) for r in rows}


def _conversion(row: Any) -> PaymentConversion:
    values = dict(row)
    for name in ("currency", "settlement_currency"):
        values[name] = values[name].strip()
    if values["rate"] is not None:
        values["rate"] = Decimal(values["rate"]).normalize()
    return PaymentConversion(**values)
