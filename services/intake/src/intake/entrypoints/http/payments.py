"""Creating and reading payments, and registering webhook endpoints."""

from __future__ import annotations

import uuid
from functools import partial

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from intake.domain.commands import CardIn, CreatePaymentRequest, RegisterWebhookEndpoint
from intake.domain.read_models import PaymentOut, WebhookEndpointOut
from intake.entrypoints.http.deps import AppContainer, IdempotencyKey, Merchant
from intake.entrypoints.http.responses import endpoint_of, http_response
from intake.entrypoints.sync_answer import SYNC_RESPONSE, PreferHeader, sync_answer
from intake.service_layer import lifecycle
from intake.service_layer.cards import open_encrypted_card
from intake.service_layer.idempotency import idempotency_scope, run_in_transaction
from intake.service_layer.payments import create_payment
from intake.service_layer.problems import FieldError, Refused, invalid
from intake.service_layer.webhooks import opened_replay, register_endpoint

router = APIRouter(prefix="/v1", tags=["payments"])
REPLAY_TIME_REFUSED = invalid(FieldError("occurred_at", "accepted only for replays"))


@router.post(
    "/payments",
    summary="Create a payment",
    status_code=202,
    response_model=PaymentOut,
    responses={
        404: {"description": "card_token names no stored card of this merchant"},
        **SYNC_RESPONSE,
    },
)
async def create(
    body: CreatePaymentRequest,
    merchant_id: Merchant,
    c: AppContainer,
    idempotency_key: IdempotencyKey = None,
    prefer: PreferHeader = None,
) -> JSONResponse:
    """Takes a payment with exactly one of card, encrypted_card or card_token. Answers 202 with the payment `pending` (poll it, or receive webhooks); with `Prefer: wait=N`, 201 once it has an outcome. Retry safely with the same Idempotency-Key."""
    if body.occurred_at is not None and not c.allow_replay_time:
        raise Refused(REPLAY_TIME_REFUSED)
    opened = (
        open_encrypted_card(c.client_encryption, body.encrypted_card, CardIn, merchant_id)
        if body.encrypted_card is not None
        else None
    )
    result = await create_payment(
        c.pool,
        c.protection,
        merchant_id,
        body,
        idempotency_key,
        opened.card if opened else None,
        opened.use if opened else None,
    )
    headers = {"Location": f"/v1/payments/{result.body['id']}"}
    status, answer = result.status, result.body
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    else:  # a replay answers what was stored; only a new payment waits for its outcome
        status, answer, waited = await sync_answer(
            c, merchant_id, status, answer, prefer, idempotency_key
        )
        headers.update(waited)
    return JSONResponse(answer, status_code=status, headers=headers)


@router.get("/payments/{payment_id}", summary="Read a payment", response_model=PaymentOut)
async def read(payment_id: uuid.UUID, merchant_id: Merchant, c: AppContainer) -> JSONResponse:
    """The payment with its amounts, refunds and events timeline."""
    async with c.pool.acquire() as conn:
        return JSONResponse(await lifecycle.payment_detail(conn, merchant_id, payment_id))


@router.post(
    "/webhook-endpoints",
    summary="Register a webhook endpoint",
    status_code=201,
    response_model=WebhookEndpointOut,
    responses={
        409: {
            "description": "The merchant has the most webhook endpoints allowed "
            "(`webhook-endpoint-limit`), or the Idempotency-Key is in use"
        },
        422: {
            "description": "The request is invalid; `errors` names each field. A `url` that "
            "is not a public http(s) address (an IP literal or host name of a private, "
            "loopback, link-local, CGNAT, multicast or reserved range, or an internal name) "
            "is refused with the field `url`"
        },
    },
)
async def register_webhook(
    body: RegisterWebhookEndpoint,
    request: Request,
    merchant_id: Merchant,
    c: AppContainer,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Registers a URL that receives payment events, signed with the returned secret (shown only here). Idempotent with an Idempotency-Key."""
    c.webhooks.check_url(body.url)  # UnsafeWebhookUrl: 422 naming `url`
    scope = idempotency_scope(merchant_id, idempotency_key, endpoint_of(request), body.model_dump())
    work = partial(
        register_endpoint, registration=c.webhooks, merchant_id=merchant_id, url=body.url
    )
    reopen = partial(opened_replay, c.webhooks.replay_keyring, merchant_id)
    return http_response(await run_in_transaction(c.pool, scope, work, reopen))
