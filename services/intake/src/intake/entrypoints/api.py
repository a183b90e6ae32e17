"""The merchant-facing HTTP API (versioned under /v1) and the admin API."""

from __future__ import annotations

import base64
import secrets
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Header, Response
from fastapi.responses import JSONResponse

from intake.adapters.merchants import new_api_key
from intake.adapters.payments import PaymentRepository
from intake.entrypoints.deps import AppContainer, Merchant, require_admin
from intake.entrypoints.problems import Problem, install_problem_handlers
from intake.entrypoints.schemas import (
    CreateMerchant,
    CreatePaymentRequest,
    MerchantCreated,
    PaymentOut,
    RegisterWebhookEndpoint,
    WebhookEndpointOut,
)
from intake.service_layer.payments import IdempotencyConflict, create_payment
from intake.service_layer.views import payment_view
from sanalpos_common import topics
from sanalpos_common.db import unit_of_work
from sanalpos_common.schemas.codec import new_envelope
from sanalpos_common.schemas.events import WebhookEndpointRegistered

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)]


def payments_router() -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["payments"])

    @router.post("/payments", status_code=202, response_model=PaymentOut)
    async def create(
        body: CreatePaymentRequest,
        merchant_id: Merchant,
        c: AppContainer,
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:
        try:
            result = await create_payment(c.pool, c.protection, merchant_id, body, idempotency_key)
        except IdempotencyConflict:
            raise Problem(
                422,
                "idempotency-key-reused",
                "Idempotency-Key reused with a different request",
                "this key was first used with another body; use a new key for a new payment",
            ) from None
        headers = {"Location": f"/v1/payments/{result.body['id']}"}
        if result.replayed:
            headers["Idempotent-Replayed"] = "true"
        return JSONResponse(result.body, status_code=result.status, headers=headers)

    @router.get("/payments/{payment_id}", response_model=PaymentOut)
    async def read(payment_id: uuid.UUID, merchant_id: Merchant, c: AppContainer) -> JSONResponse:
        repo = PaymentRepository(c.pool)
        row = await repo.get(merchant_id, payment_id)
        if row is None:
            raise Problem(404, "not-found", "No such payment", f"payment {payment_id} not found")
        return JSONResponse(payment_view(row, await repo.events(payment_id)))

    @router.post("/webhook-endpoints", status_code=201, response_model=WebhookEndpointOut)
    async def register_webhook(
        body: RegisterWebhookEndpoint, merchant_id: Merchant, c: AppContainer
    ) -> WebhookEndpointOut:
        endpoint_id = uuid.uuid4()
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        async with unit_of_work(c.pool) as uow:
            await uow.conn.execute(
                "INSERT INTO webhook_endpoints (id, merchant_id, url) VALUES ($1, $2, $3)",
                endpoint_id,
                merchant_id,
                body.url,
            )
            event = WebhookEndpointRegistered(
                endpoint_id=endpoint_id, merchant_id=merchant_id, url=body.url, secret=secret
            )
            await uow.emit(
                topics.WEBHOOK_ENDPOINT_REGISTERED,
                new_envelope(
                    topics.WEBHOOK_ENDPOINT_REGISTERED,
                    event,
                    correlation_id=endpoint_id,
                    producer="intake",
                ),
            )
        return WebhookEndpointOut(id=endpoint_id, url=body.url, secret=secret)

    return router


def admin_router() -> APIRouter:
    router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])

    @router.post("/merchants", status_code=201, response_model=MerchantCreated)
    async def create_merchant(
        body: CreateMerchant, c: AppContainer, response: Response
    ) -> MerchantCreated:
        merchant_id = body.id or f"mer_{secrets.token_hex(8)}"
        api_key = new_api_key(body.mode)
        created = await c.merchants.create(
            merchant_id, body.name, body.settlement_currency, body.time_zone, api_key
        )
        if not created:
            raise Problem(409, "merchant-exists", "Merchant id already exists", merchant_id)
        response.headers["Location"] = f"/admin/merchants/{merchant_id}"
        return MerchantCreated(id=merchant_id, name=body.name, api_key=api_key)

    return router


def build_app() -> FastAPI:
    app = FastAPI(
        title="sanalpos intake",
        version="1.0.0",
        description="Merchant API of the sanalpos virtual POS.",
    )
    install_problem_handlers(app)
    app.include_router(payments_router())
    app.include_router(admin_router())
    return app
