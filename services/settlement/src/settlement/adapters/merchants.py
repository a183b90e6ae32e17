"""Merchant profiles from merchant.updated: the newest version wins, whatever the order."""

from __future__ import annotations

import json
from typing import Any

from sanalpos_common.db import Connection
from settlement.domain.merchants import MerchantProfile


class MerchantRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def apply(self, profile: MerchantProfile, name: str, active: bool) -> bool:
        """False when what we hold is the same or a newer version."""
        applied = await self.conn.fetchval(
            "INSERT INTO merchants (merchant_id, name, settlement_currency, time_zone, "
            "cutoff_time, fee_plan, active, version, payout_delay_days, "
            "currency_settlement, fx_markup_bps, fx_no_rate, payout_plan) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12, $13) "
            "ON CONFLICT (merchant_id) DO UPDATE SET name = EXCLUDED.name, "
            "settlement_currency = EXCLUDED.settlement_currency, "
            "time_zone = EXCLUDED.time_zone, cutoff_time = EXCLUDED.cutoff_time, "
            "fee_plan = EXCLUDED.fee_plan, active = EXCLUDED.active, "
            "payout_delay_days = EXCLUDED.payout_delay_days, "
            "currency_settlement = EXCLUDED.currency_settlement, "
            "fx_markup_bps = EXCLUDED.fx_markup_bps, fx_no_rate = EXCLUDED.fx_no_rate, "
            "payout_plan = EXCLUDED.payout_plan, "
            "version = EXCLUDED.version, updated_at = now() "
            "WHERE merchants.version < EXCLUDED.version RETURNING 1",
            profile.merchant_id,
            name,
            profile.settlement_currency,
            profile.time_zone,
            profile.cutoff,
            profile.fee_plan,
            active,
            profile.version,
            profile.payout_delay_days,
            json.dumps(profile.currency_settlement),
            profile.fx_markup_bps,
            profile.fx_no_rate,
            profile.payout_plan,
        )
        return applied is not None

    async def profile(self, merchant_id: str) -> MerchantProfile:
        """The merchant's profile, or the defaults for a merchant not heard of yet."""
        row = await self.conn.fetchrow(
            f"SELECT {PROFILE_COLUMNS} FROM merchants WHERE merchant_id = $1",  # noqa: S608 - constant
            merchant_id,
        )
        return profile_of(merchant_id, row)


PROFILE_COLUMNS = (
    "time_zone, cutoff_time, fee_plan, settlement_currency, payout_delay_days, "
    "version, currency_settlement::text AS currency_settlement, fx_markup_bps, "
    "fx_no_rate, payout_plan"
)
"""What `profile_of` reads, to be selected from `merchants` (qualify with an alias in joins)."""


def profile_of(merchant_id: str, row: Any | None) -> MerchantProfile:
    """The profile from a row of PROFILE_COLUMNS; the defaults when there is no row (or its
    columns are all NULL: a LEFT JOIN that found no merchant)."""
    if row is None or row["time_zone"] is None:
        return MerchantProfile(merchant_id)
    return MerchantProfile(
        merchant_id=merchant_id,
        time_zone=row["time_zone"],
        cutoff=row["cutoff_time"],
        fee_plan=row["fee_plan"],
        settlement_currency=row["settlement_currency"].strip(),
        payout_delay_days=row["payout_delay_days"],
        payout_plan=row["payout_plan"],
        version=row["version"],
        currency_settlement=json.loads(row["currency_settlement"]),
        fx_markup_bps=row["fx_markup_bps"],
        fx_no_rate=row["fx_no_rate"],
    )
