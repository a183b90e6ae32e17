"""Merchant records and API keys: the admin API (operator's credential) and the calling
merchant's own record."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from intake.domain.merchant import MERCHANT_ID_PATTERN, InvalidMerchantField
from intake.domain.rate_limit import Limit
from intake.entrypoints.deps import AppContainer, Merchant, require_admin
from intake.entrypoints.merchant_schemas import (
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
from intake.entrypoints.problems import Problem
from intake.service_layer.merchants import (
    KeyNotFound,
    MerchantExists,
    MerchantNotFound,
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


def _invalid(exc: InvalidMerchantField) -> Problem:
    return Problem(
        422,
        "validation-error",
        "Request is invalid",
        f"invalid: {exc.field}",
        errors=[{"field": exc.field, "message": exc.message}],
    )


def _no_merchant(merchant_id: str) -> Problem:
    return Problem(404, "not-found", "No such merchant", f"merchant {merchant_id} not found")


def _no_key(key_id: uuid.UUID) -> Problem:
    return Problem(404, "not-found", "No such API key", f"API key {key_id} not found")


def admin_router() -> APIRouter:
    router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])

    @router.post(
        "/merchants",
        summary="Create a merchant",
        status_code=201,
        response_model=MerchantCreated,
    )
    async def create(body: CreateMerchant, c: AppContainer, response: Response) -> dict[str, Any]:
        """Creates a merchant and its first API key (shown once); announces the merchant."""
        new = NewMerchant(
            **body.model_dump(exclude={"rate_limit"}), key_limit=_limit(body.rate_limit)
        )
        try:
            created = await create_merchant(c.pool, new)
        except InvalidMerchantField as exc:
            raise _invalid(exc) from None
        except MerchantExists:
            raise Problem(
                409, "merchant-exists", "Merchant id already exists", body.id or ""
            ) from None
        response.headers["Location"] = f"/admin/merchants/{created.merchant['id']}"
        return {**created.merchant, "api_key": created.issued.api_key, "key": created.issued.key}

    @router.get("/merchants", summary="List merchants", response_model=MerchantList)
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

    @router.get(
        "/merchants/{merchant_id}", summary="Read a merchant", response_model=MerchantDetail
    )
    async def read(merchant_id: MerchantId, c: AppContainer) -> dict[str, Any]:
        """The merchant's current version with its webhook endpoints (never their secrets)."""
        try:
            return await get_merchant(c.pool, merchant_id)
        except MerchantNotFound:
            raise _no_merchant(merchant_id) from None

    @router.patch(
        "/merchants/{merchant_id}", summary="Update a merchant", response_model=MerchantOut
    )
    async def update(
        merchant_id: MerchantId, body: UpdateMerchant, c: AppContainer
    ) -> dict[str, Any]:
        """Changes the given fields; a change makes a new version and announces it."""
        try:
            return await update_merchant(c.pool, merchant_id, body.changes())
        except InvalidMerchantField as exc:
            raise _invalid(exc) from None
        except MerchantNotFound:
            raise _no_merchant(merchant_id) from None

    @router.get(
        "/merchants/{merchant_id}/keys",
        summary="List a merchant's API keys",
        response_model=ApiKeyList,
    )
    async def keys(merchant_id: MerchantId, c: AppContainer) -> dict[str, Any]:
        """The merchant's keys by prefix: never a key or its hash."""
        try:
            return {"data": await list_keys(c.pool, merchant_id)}
        except MerchantNotFound:
            raise _no_merchant(merchant_id) from None

    @router.post(
        "/merchants/{merchant_id}/keys",
        summary="Issue an API key",
        status_code=201,
        response_model=ApiKeyCreated,
    )
    async def new_key(
        merchant_id: MerchantId, body: CreateApiKey, c: AppContainer
    ) -> dict[str, Any]:
        """Issues another API key for the merchant; the key is shown only in this response."""
        try:
            issued = await create_key(c.pool, merchant_id, body.mode, _limit(body.rate_limit))
        except MerchantNotFound:
            raise _no_merchant(merchant_id) from None
        return {**issued.key, "api_key": issued.api_key}

    @router.post(
        "/merchants/{merchant_id}/keys/{key_id}/rotate",
        summary="Rotate an API key",
        response_model=ApiKeyRotated,
    )
    async def rotate(
        merchant_id: MerchantId, key_id: uuid.UUID, body: RotateApiKey, c: AppContainer
    ) -> dict[str, Any]:
        """A new key (shown once) replaces this one, which stops after the grace period."""
        grace = timedelta(seconds=body.grace_period_s)
        try:
            issued, previous = await rotate_key(c.pool, merchant_id, key_id, grace)
        except KeyNotFound:
            raise _no_key(key_id) from None
        c.merchants.forget(previous.key_hash)
        return {"key": {**issued.key, "api_key": issued.api_key}, "previous": previous.key}

    @router.post(
        "/merchants/{merchant_id}/keys/{key_id}/revoke",
        summary="Revoke an API key",
        response_model=ApiKeyOut,
    )
    async def revoke(merchant_id: MerchantId, key_id: uuid.UUID, c: AppContainer) -> dict[str, Any]:
        """Stops the key at once in this process; other replicas within the auth cache TTL."""
        try:
            revoked = await revoke_key(c.pool, merchant_id, key_id)
        except KeyNotFound:
            raise _no_key(key_id) from None
        c.merchants.forget(revoked.key_hash)
        return revoked.key

    return router


def merchant_router() -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["merchant"])

    @router.get("/merchant", summary="Read your merchant record", response_model=MerchantDetail)
    async def me(merchant_id: Merchant, c: AppContainer) -> dict[str, Any]:
        """The calling merchant's own record (time zone, cut-off, fee plan, installments)."""
        return await get_merchant(c.pool, merchant_id)

    return router


def router() -> APIRouter:
    combined = APIRouter()
    combined.include_router(merchant_router())
    combined.include_router(admin_router())
    return combined
