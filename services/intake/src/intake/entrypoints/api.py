"""The merchant-facing HTTP API (versioned under /v1) and the admin API."""

from __future__ import annotations

import base64
import secrets
import uuid
from typing import Annotated, TypeVar, cast

import asyncpg
from fastapi import APIRouter, FastAPI, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, SecretStr, ValidationError

from intake.adapters.card_tokens import CardTokenRepository
from intake.entrypoints import bins_api, lifecycle_api, merchants_api, search_api, signing_api
from intake.entrypoints.deps import AppContainer, Container, Merchant
from intake.entrypoints.lifecycle_api import (
    IdempotencyKey,
    http_response,
    idempotency_problem,
    idempotency_scope,
    respond_idempotently,
)
from intake.entrypoints.openapi import install_openapi
from intake.entrypoints.problems import Problem, install_problem_handlers
from intake.entrypoints.schemas import (
    TOKEN_PATTERN,
    CardIn,
    CreateCardRequest,
    CreatePaymentRequest,
    EncryptionKeyOut,
    PaymentOut,
    RegisterWebhookEndpoint,
    SaveCardIn,
    StoredCardList,
    StoredCardOut,
    WebhookEndpointOut,
)
from intake.entrypoints.sync_answer import SYNC_RESPONSE, PreferHeader, sync_answer
from intake.service_layer import idempotency, lifecycle
from intake.service_layer.cards import BadCursor, card_view, list_cards, save_card
from intake.service_layer.client_encryption import UnreadableCardPayload
from intake.service_layer.installments import InstallmentsNotAllowed
from intake.service_layer.payments import (
    CardTokenNotFound,
    IdempotencyConflict,
    StoredCardExpired,
    create_payment,
)
from sanalpos_common import topics
from sanalpos_common.crypto.card import fingerprint
from sanalpos_common.db import UnitOfWork
from sanalpos_common.schemas.codec import new_envelope
from sanalpos_common.schemas.events import WebhookEndpointRegistered

C = TypeVar("C", bound=BaseModel)
CardToken = Annotated[str, Path(pattern=TOKEN_PATTERN)]


def payments_router() -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["payments"])

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
            raise Problem(
                422,
                "validation-error",
                "Request is invalid",
                "invalid: occurred_at",
                errors=[{"field": "occurred_at", "message": "accepted only for replays"}],
            )
        card = (
            open_encrypted_card(c, body.encrypted_card, CardIn)
            if body.encrypted_card is not None
            else None
        )
        try:
            result = await create_payment(
                c.pool, c.protection, merchant_id, body, idempotency_key, card
            )
        except CardTokenNotFound:
            raise Problem(
                404,
                "card-token-not-found",
                "No such card token",
                "card_token names no stored card of this merchant",
                errors=[{"field": "card_token", "message": "no such card token"}],
            ) from None
        except StoredCardExpired:
            raise Problem(
                422,
                "validation-error",
                "Request is invalid",
                "invalid: card_token",
                errors=[{"field": "card_token", "message": "the stored card has expired"}],
            ) from None
        except InstallmentsNotAllowed as exc:
            raise Problem(
                422,
                "validation-error",
                "Request is invalid",
                "invalid: installments",
                errors=[{"field": "installments", "message": exc.reason, "code": "not_allowed"}],
                allowed_installments=exc.allowed,
            ) from None
        except (IdempotencyConflict, idempotency.IdempotencyKeyInProgress) as exc:
            raise idempotency_problem(exc) from None
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
            try:
                return JSONResponse(await lifecycle.payment_detail(conn, merchant_id, payment_id))
            except lifecycle.PaymentNotFound:
                raise Problem(
                    404, "not-found", "No such payment", f"payment {payment_id} not found"
                ) from None

    @router.post(
        "/webhook-endpoints",
        summary="Register a webhook endpoint",
        status_code=201,
        response_model=WebhookEndpointOut,
    )
    async def register_webhook(
        body: RegisterWebhookEndpoint,
        request: Request,
        merchant_id: Merchant,
        c: AppContainer,
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:
        """Registers a URL that receives payment events, signed with the returned secret (shown only here). Idempotent with an Idempotency-Key."""
        scope = idempotency_scope(merchant_id, idempotency_key, request, body.model_dump())
        return http_response(await respond_idempotently(c, scope, _register(merchant_id, body)))

    return router


def _register(merchant_id: str, body: RegisterWebhookEndpoint) -> idempotency.Work:
    async def work(uow: UnitOfWork) -> idempotency.Response:
        endpoint_id = uuid.uuid4()
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        await uow.conn.execute(
            "INSERT INTO webhook_endpoints (id, merchant_id, url) VALUES ($1, $2, $3)",
            endpoint_id,
            merchant_id,
            body.url,
        )
        event = WebhookEndpointRegistered(
            endpoint_id=endpoint_id, merchant_id=merchant_id, url=body.url, secret=secret
        )
        await uow.emit_envelope(
            topics.WEBHOOK_ENDPOINT_REGISTERED,
            new_envelope(
                topics.WEBHOOK_ENDPOINT_REGISTERED,
                event,
                correlation_id=endpoint_id,
                producer="intake",
            ),
        )
        out = WebhookEndpointOut(id=endpoint_id, url=body.url, secret=secret)
        return idempotency.Response(201, out.model_dump(mode="json"))

    return work


def open_encrypted_card(c: Container, jwe: SecretStr, model: type[C]) -> C:
    """Decrypts a client-side-encrypted card and validates it exactly like a clear `card`.

    Errors name `encrypted_card.<field>` and never echo the input.
    """
    try:
        payload = c.client_encryption.decrypt(jwe.get_secret_value())
    except UnreadableCardPayload as exc:
        raise Problem(
            422,
            "validation-error",
            "Request is invalid",
            "invalid: encrypted_card",
            errors=[{"field": "encrypted_card", "message": str(exc), "code": "jwe_invalid"}],
        ) from None
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        errors = [
            {
                "field": ".".join(["encrypted_card", *(str(p) for p in err["loc"])]),
                "message": err["msg"],
                "code": err["type"],
            }
            for err in exc.errors(include_url=False, include_input=False, include_context=False)
        ]
        raise Problem(
            422,
            "validation-error",
            "Request is invalid",
            "invalid: " + ", ".join(e["field"] for e in errors),
            errors=errors,
        ) from None


def cards_router() -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["cards"])

    @router.get(
        "/encryption-keys/current",
        summary="Get the card-encryption public key",
        response_model=EncryptionKeyOut,
    )
    async def current_encryption_key(c: AppContainer, response: Response) -> EncryptionKeyOut:
        """The public key browsers encrypt card data to (JWK). Public: no API key needed."""
        response.headers["Cache-Control"] = "public, max-age=300"
        return EncryptionKeyOut.model_validate(c.client_encryption.public_jwk())

    @router.post("/cards", summary="Store a card", status_code=201, response_model=StoredCardOut)
    async def create_card(
        body: CreateCardRequest,
        request: Request,
        merchant_id: Merchant,
        c: AppContainer,
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:
        """Stores a card for later payments (card_token) and returns its token with the masked number; the security code is never stored. Idempotent with an Idempotency-Key."""
        card = (
            open_encrypted_card(c, body.encrypted_card, SaveCardIn)
            if body.encrypted_card is not None
            else body.card
        )
        assert card is not None
        # Retries are compared on the keyed fingerprint, never on the card number itself.
        compared = {
            "fingerprint": fingerprint(
                c.protection.fingerprint_key, card.number.get_secret_value()
            ),
            "exp": [card.exp_month, card.exp_year],
            "holder_name": card.holder_name,
        }

        async def work(uow: UnitOfWork) -> idempotency.Response:
            # save_card takes anything that runs queries: here, the key's own transaction.
            view = await save_card(cast(asyncpg.Pool, uow.conn), c.protection, merchant_id, card)
            return idempotency.Response(201, view)

        scope = idempotency_scope(merchant_id, idempotency_key, request, compared)
        result = await respond_idempotently(c, scope, work)
        return http_response(result, {"Location": f"/v1/cards/{result.body['id']}"})

    @router.get("/cards", summary="List stored cards", response_model=StoredCardList)
    async def list_stored_cards(
        merchant_id: Merchant,
        c: AppContainer,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> JSONResponse:
        """Your stored cards, newest first; pages follow `next_cursor`."""
        try:
            return JSONResponse(await list_cards(c.pool, merchant_id, limit, cursor))
        except BadCursor:
            raise Problem(
                422,
                "validation-error",
                "Request is invalid",
                "invalid: cursor",
                errors=[{"field": "cursor", "message": "not a cursor this API returned"}],
            ) from None

    @router.get("/cards/{token}", summary="Read a stored card", response_model=StoredCardOut)
    async def read_card(token: CardToken, merchant_id: Merchant, c: AppContainer) -> JSONResponse:
        """One stored card: brand, BIN, last four, expiry and fingerprint."""
        row = await CardTokenRepository(c.pool).get(merchant_id, token)
        if row is None:
            raise Problem(404, "not-found", "No such card", f"card {token} not found")
        return JSONResponse(card_view(row))

    @router.delete("/cards/{token}", summary="Delete a stored card", status_code=204)
    async def delete_card(token: CardToken, merchant_id: Merchant, c: AppContainer) -> Response:
        """Deletes the stored card: its token no longer pays. Answers 204 without a body."""
        if not await CardTokenRepository(c.pool).delete(merchant_id, token):
            raise Problem(404, "not-found", "No such card", f"card {token} not found")
        return Response(status_code=204)

    return router


def build_app() -> FastAPI:
    app = FastAPI(
        title="sanalpos intake",
        version="1.0.0",
        description="Merchant API of the sanalpos virtual POS.",
    )
    install_problem_handlers(app)
    # Search/export come before /v1/payments/{payment_id} so their fixed paths match first.
    app.include_router(search_api.router())
    app.include_router(payments_router())
    app.include_router(lifecycle_api.router())
    app.include_router(bins_api.router())
    app.include_router(merchants_api.router())
    app.include_router(cards_router())
    app.include_router(signing_api.router())
    install_openapi(app)
    return app
