"""Merchant records and API keys, for the admin API and the `sanalpos merchants` CLI alike.

Every change to a merchant record emits MerchantUpdated (its version) through the outbox, in the
same transaction, so settlement learns the time zone, cut-off and fee plan."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from intake import PRODUCER
from intake.adapters.merchants import MerchantStore, new_api_key
from intake.domain.merchant import check_fields, check_merchant_id, new_merchant_id
from intake.domain.rate_limit import Limit
from sanalpos_common.business_day import DEFAULT_CUTOFF, DEFAULT_TIME_ZONE
from sanalpos_common.db import UnitOfWork, unit_of_work
from sanalpos_common.fees import DEFAULT_FEE_PLAN
from sanalpos_common.schemas.events import MerchantUpdated


class MerchantExists(Exception):
    """The merchant id is taken."""


class MerchantNotFound(Exception):
    """No merchant with this id."""


class KeyNotFound(Exception):
    """The merchant has no API key with this id."""


@dataclass(frozen=True)
class NewMerchant:
    name: str
    id: str | None = None
    settlement_currency: str = "TRY"
    time_zone: str = DEFAULT_TIME_ZONE
    cutoff_time: Any = DEFAULT_CUTOFF
    fee_plan: str = DEFAULT_FEE_PLAN
    max_installments: int = 12
    payout_delay_days: int = 1
    payout_plan: str = "batch"
    mode: str = "test"
    key_limit: Limit | None = None
    always_three_d_secure: bool = False
    # --- multi-currency (issue 13, fx) ---
    currency_settlement: dict[str, str] = field(default_factory=dict)
    fx_markup_bps: int = 0
    fx_no_rate: str = "in_currency"

    def columns(self) -> dict[str, Any]:
        values = check_fields(
            {
                "name": self.name,
                "settlement_currency": self.settlement_currency,
                "time_zone": self.time_zone,
                "cutoff_time": self.cutoff_time,
                "fee_plan": self.fee_plan,
                "max_installments": self.max_installments,
                "payout_delay_days": self.payout_delay_days,
                "payout_plan": self.payout_plan,
                "always_three_d_secure": self.always_three_d_secure,
                "currency_settlement": self.currency_settlement,
                "fx_markup_bps": self.fx_markup_bps,
                "fx_no_rate": self.fx_no_rate,
            }
        )
        merchant_id = check_merchant_id(self.id) if self.id else new_merchant_id()
        return {"id": merchant_id, **values}


@dataclass(frozen=True)
class IssuedKey:
    """A key just made: `api_key` is its only appearance in clear."""

    key: dict[str, Any]
    api_key: str


@dataclass(frozen=True)
class CreatedMerchant:
    merchant: dict[str, Any]
    issued: IssuedKey


@dataclass(frozen=True)
class RevokedKey:
    key: dict[str, Any]
    key_hash: str = field(repr=False)
    """For the caller's authentication cache only; never shown."""


def merchant_view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object": "merchant",
        "name": row["name"],
        "settlement_currency": row["settlement_currency"].strip(),
        "time_zone": row["time_zone"],
        "cutoff_time": row["cutoff_time"].strftime("%H:%M"),
        "fee_plan": row["fee_plan"],
        "max_installments": row["max_installments"],
        "payout_delay_days": row["payout_delay_days"],
        "payout_plan": row["payout_plan"],
        "always_three_d_secure": row["always_three_d_secure"],
        "version": row["version"],
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
        # --- hosted payment page (issue 11) ---
        "checkout_locale": row["checkout_locale"],
        "checkout_frame_ancestors": list(row["checkout_frame_ancestors"]),
        # --- multi-currency (issue 13, fx) ---
        **fx_view(row),
    }


def fx_view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "currency_settlement": json.loads(row["currency_settlement"]),
        "fx_markup_bps": row["fx_markup_bps"],
        "fx_no_rate": row["fx_no_rate"],
    }


def key_view(row: asyncpg.Record, now: datetime | None = None) -> dict[str, Any]:
    """Prefix only: neither the key nor its hash."""
    now = now or datetime.now(UTC)
    revoked_at = row["revoked_at"]
    limit = None
    if row["rate_per_second"] is not None:
        limit = {"per_second": row["rate_per_second"], "burst": row["rate_burst"]}
    return {
        "id": str(row["id"]),
        "object": "api_key",
        "merchant_id": row["merchant_id"],
        "mode": row["mode"],
        "prefix": row["prefix"],
        "active": revoked_at is None or revoked_at > now,
        "created_at": row["created_at"].isoformat(),
        "revoked_at": None if revoked_at is None else revoked_at.isoformat(),
        "rate_limit": limit,
    }


async def _announce(uow: UnitOfWork, row: asyncpg.Record) -> None:
    event = MerchantUpdated(
        merchant_id=row["id"],
        name=row["name"],
        settlement_currency=row["settlement_currency"].strip(),
        time_zone=row["time_zone"],
        cutoff_time=row["cutoff_time"],
        fee_plan=row["fee_plan"],
        version=row["version"],
        payout_delay_days=row["payout_delay_days"],
        **fx_view(row),
        payout_plan=row["payout_plan"],
    )
    await uow.emit(event)


async def _issue_key(
    store: MerchantStore, merchant_id: str, mode: str, limit: Limit | None
) -> IssuedKey:
    api_key = new_api_key(mode)
    row = await store.add_key(merchant_id, api_key, limit)
    assert row is not None  # 256 random bits do not collide
    return IssuedKey(key_view(row), api_key)


async def create_merchant(pool: asyncpg.Pool, new: NewMerchant) -> CreatedMerchant:
    """Raises InvalidMerchantField or MerchantExists."""
    columns = new.columns()
    async with unit_of_work(pool, PRODUCER) as uow:
        store = MerchantStore(uow.conn)
        row = await store.insert(columns)
        if row is None:
            raise MerchantExists(columns["id"])
        issued = await _issue_key(store, row["id"], new.mode, new.key_limit)
        await _announce(uow, row)
    return CreatedMerchant(merchant_view(row), issued)


async def ensure_merchant(pool: asyncpg.Pool, merchant_id: str, name: str, api_key: str) -> bool:
    """Idempotent seeding with a known key (the development demo merchant); announces the
    merchant when this call created it. True when it did."""
    async with unit_of_work(pool, PRODUCER) as uow:
        store = MerchantStore(uow.conn)
        row = await store.insert({"id": merchant_id, "name": name})
        await store.add_key(merchant_id, api_key)
        if row is not None:
            await _announce(uow, row)
    return row is not None


async def update_merchant(
    pool: asyncpg.Pool, merchant_id: str, changes: dict[str, Any]
) -> dict[str, Any]:
    """Raises InvalidMerchantField or MerchantNotFound. No change, no new version."""
    values = check_fields(changes)
    async with unit_of_work(pool, PRODUCER) as uow:
        store = MerchantStore(uow.conn)
        current = await store.get(merchant_id, for_update=True)
        if current is None:
            raise MerchantNotFound(merchant_id)
        stored = {**dict(current), **fx_view(current)}
        values = {k: v for k, v in values.items() if stored[k] != v}
        if not values:
            return merchant_view(current)
        row = await store.update(merchant_id, values)
        assert row is not None
        await _announce(uow, row)
    return merchant_view(row)


async def get_merchant(pool: asyncpg.Pool, merchant_id: str) -> dict[str, Any]:
    """The record with its webhook endpoints (their URLs; signing secrets are never shown)."""
    store = MerchantStore(pool)
    row = await store.get(merchant_id)
    if row is None:
        raise MerchantNotFound(merchant_id)
    endpoints = [
        {"id": str(e["id"]), "url": e["url"], "created_at": e["created_at"].isoformat()}
        for e in await store.webhook_endpoints(merchant_id)
    ]
    return {**merchant_view(row), "webhook_endpoints": endpoints}


async def list_merchants(
    pool: asyncpg.Pool, limit: int = 50, after: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """A page in id order and the cursor of the next page (None on the last)."""
    rows = await MerchantStore(pool).page(limit + 1, after)
    page = [merchant_view(r) for r in rows[:limit]]
    return page, (page[-1]["id"] if len(rows) > limit else None)


async def _existing(store: MerchantStore, merchant_id: str) -> None:
    if await store.get(merchant_id) is None:
        raise MerchantNotFound(merchant_id)


async def create_key(
    pool: asyncpg.Pool, merchant_id: str, mode: str = "test", limit: Limit | None = None
) -> IssuedKey:
    async with unit_of_work(pool, PRODUCER) as uow:
        store = MerchantStore(uow.conn)
        await _existing(store, merchant_id)
        return await _issue_key(store, merchant_id, mode, limit)


async def list_keys(pool: asyncpg.Pool, merchant_id: str) -> list[dict[str, Any]]:
    store = MerchantStore(pool)
    await _existing(store, merchant_id)
    now = datetime.now(UTC)
    return [key_view(row, now) for row in await store.keys(merchant_id)]


async def revoke_key(pool: asyncpg.Pool, merchant_id: str, key_id: uuid.UUID) -> RevokedKey:
    row = await MerchantStore(pool).revoke(merchant_id, key_id, datetime.now(UTC))
    if row is None:
        raise KeyNotFound(str(key_id))
    return RevokedKey(key_view(row), row["key_hash"])


async def rotate_key(
    pool: asyncpg.Pool,
    merchant_id: str,
    key_id: uuid.UUID,
    grace: timedelta = timedelta(0),
) -> tuple[IssuedKey, RevokedKey]:
    """A new key (same mode and rate limit) replaces the old one, which stops working after
    `grace` (at once by default). Rotating a revoked key is refused (KeyNotFound)."""
    now = datetime.now(UTC)
    async with unit_of_work(pool, PRODUCER) as uow:
        store = MerchantStore(uow.conn)
        old = await store.key(merchant_id, key_id)
        if old is None or (old["revoked_at"] is not None and old["revoked_at"] <= now):
            raise KeyNotFound(str(key_id))
        limit = None
        if old["rate_per_second"] is not None:
            limit = Limit(old["rate_per_second"], old["rate_burst"])
        issued = await _issue_key(store, merchant_id, old["mode"], limit)
        revoked = await store.revoke(merchant_id, key_id, now + grace)
        assert revoked is not None
    return issued, RevokedKey(key_view(revoked, now), revoked["key_hash"])
