"""Merchant records and API keys: the admin API (operator's credential) and the calling
merchant's own record."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from intake.domain.merchant import MERCHANT_ID_PATTERN
from intake.domain.rate_limit import Limit
from intake.entrypoints.http.deps import AppContainer, Merchant, require_admin
from intake.entrypoints.http.merchant_schemas import (
    ApiKeyCreated,
    ApiKeyList,
    ApiKeyOut,
    ApiKeyRotated,
    CreateApiKey,
    CreateMerchant,
    MerchantCreated,
    MerchantDetail,
    MerchantList,
    MerchantOut,
    RateLimitIn,
    RotateApiKey,
    UpdateMerchant,
)
from intake.service_layer.merchants import (
    NewMerchant,
    create_key,
    create_merchant,
    get_merchant,
    list_keys,
    list_merchants,
    revoke_key,
    rotate_key,
    update_merchant,
)

MerchantId = Annotated[str, Path(pattern=MERCHANT_ID_PATTERN, description="Merchant id")]


def _limit(body: RateLimitIn | None) -> Limit | None:
    return None if body is None else Limit(body.per_second, body.burst)


admin_router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])
merchant_router = APIRouter(prefix="/v1", tags=["merchant"])


@merchant_router.get(
    "/merchant", summary="Read your merchant record", response_model=MerchantDetail
)
async def me(merchant_id: Merchant, c: AppContainer) -> dict[str, Any]:
    """The calling merchant's own record (time zone, cut-off, fee plan, installments)."""
    return await get_merchant(c.pool, merchant_id)


@admin_router.post(
    "/merchants",
    summary="Create a merchant",
    status_code=201,
    response_model=MerchantCreated,
)
async def create(body: CreateMerchant, c: AppContainer, response: Response) -> dict[str, Any]:
    """Creates a merchant and its first API key (shown once); announces the merchant."""
    new = NewMerchant(**body.model_dump(exclude={"rate_limit"}), key_limit=_limit(body.rate_limit))
    created = await create_merchant(c.pool, new)
    response.headers["Location"] = f"/admin/merchants/{created.merchant['id']}"
    return {**created.merchant, "api_key": created.issued.api_key, "key": created.issued.key}


@admin_router.get("/merchants", summary="List merchants", response_model=MerchantList)
async def list_all(
    c: AppContainer,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size")] = 50,
    cursor: Annotated[
        str | None, Query(pattern=MERCHANT_ID_PATTERN, description="next_cursor of a page")
    ] = None,
) -> dict[str, Any]:
    """All merchants in id order; pages follow `next_cursor`."""
    page, next_cursor = await list_merchants(c.pool, limit, cursor)
    return {"data": page, "has_more": next_cursor is not None, "next_cursor": next_cursor}


@admin_router.get(
    "/merchants/{merchant_id}", summary="Read a merchant", response_model=MerchantDetail
)
async def read(merchant_id: MerchantId, c: AppContainer) -> dict[str, Any]:
    """The merchant's current version with its webhook endpoints (never their secrets)."""
    return await get_merchant(c.pool, merchant_id)


@admin_router.patch(
    "/merchants/{merchant_id}", summary="Update a merchant", response_model=MerchantOut
)
async def update(merchant_id: MerchantId, body: UpdateMerchant, c: AppContainer) -> dict[str, Any]:
    """Changes the given fields; a change makes a new version and announces it."""
    return await update_merchant(c.pool, merchant_id, body.changes())


@admin_router.get(
    "/merchants/{merchant_id}/keys",
    summary="List a merchant's API keys",
    response_model=ApiKeyList,
)
async def keys(merchant_id: MerchantId, c: AppContainer) -> dict[str, Any]:
    """The merchant's keys by prefix: never a key or its hash."""
    return {"data": await list_keys(c.pool, merchant_id)}


@admin_router.post(
    "/merchants/{merchant_id}/keys",
    summary="Issue an API key",
    status_code=201,
    response_model=ApiKeyCreated,
)
async def new_key(merchant_id: MerchantId, body: CreateApiKey, c: AppContainer) -> dict[str, Any]:
    """Issues another API key for the merchant; the key is shown only in this response."""
    issued = await create_key(c.pool, merchant_id, body.mode, _limit(body.rate_limit))
    return {**issued.key, "api_key": issued.api_key}


@admin_router.post(
    "/merchants/{merchant_id}/keys/{key_id}/rotate",
    summary="Rotate an API key",
    response_model=ApiKeyRotated,
)
async def rotate(
    merchant_id: MerchantId, key_id: uuid.UUID, body: RotateApiKey, c: AppContainer
) -> dict[str, Any]:
    """A new key (shown once) replaces this one, which stops after the grace period."""
    grace = timedelta(seconds=body.grace_period_s)
    issued, previous = await rotate_key(c.pool, merchant_id, key_id, grace)
    c.merchants.forget(previous.key_hash)
    return {"key": {**issued.key, "api_key": issued.api_key}, "previous": previous.key}


@admin_router.post(
    "/merchants/{merchant_id}/keys/{key_id}/revoke",
    summary="Revoke an API key",
    response_model=ApiKeyOut,
)
async def revoke(merchant_id: MerchantId, key_id: uuid.UUID, c: AppContainer) -> dict[str, Any]:
    """Stops the key at once in this process; other replicas within the auth cache TTL."""
    revoked = await revoke_key(c.pool, merchant_id, key_id)
    c.merchants.forget(revoked.key_hash)
    return revoked.key


router = APIRouter()
router.include_router(merchant_router)
router.include_router(admin_router)
