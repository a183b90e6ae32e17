"""Checkout sessions, the merchant side of the hosted payment page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from intake.domain.checkout import SESSION_ID_PATTERN
from intake.entrypoints.http.checkout_schemas import (
    CheckoutSessionList,
    CheckoutSessionOut,
    CheckoutSigningKeys,
    CreateCheckoutSession,
)
from intake.entrypoints.http.deps import AppContainer, IdempotencyKey, Merchant
from intake.entrypoints.http.responses import endpoint_of, http_response
from intake.service_layer import checkout

router = APIRouter(prefix="/v1", tags=["checkout"])
SessionId = Annotated[
    str,
    Path(
        pattern=SESSION_ID_PATTERN,
        description="The checkout session's id",
        examples=["cs_q3L9vX0bN2mT7kW1yZ5pR8sD4fG6hJ0c"],
    ),
]
DISABLED: dict[int | str, dict[str, Any]] = {
    503: {"description": "No result-signing key is configured (checkout-disabled)"}
}


@router.post(
    "/checkout/sessions",
    summary="Create a checkout session",
    status_code=201,
    response_model=CheckoutSessionOut,
    responses={**DISABLED},
)
async def create_session(
    body: CreateCheckoutSession,
    request: Request,
    merchant_id: Merchant,
    c: AppContainer,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Opens a hosted payment page for one order: send the shopper's browser to the returned `url`. After the outcome the browser comes back to `success_url` or `failure_url` with a signed result (see docs/checkout.md). Idempotent with an Idempotency-Key."""
    result = await checkout.create_session(
        c.pool, c.checkout, merchant_id, body, idempotency_key, endpoint_of(request)
    )
    return http_response(result, {"Location": f"/v1/checkout/sessions/{result.body['id']}"})


@router.get(
    "/checkout/sessions",
    summary="List checkout sessions",
    response_model=CheckoutSessionList,
)
async def list_sessions(
    merchant_id: Merchant,
    c: AppContainer,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size")] = 20,
    cursor: Annotated[
        str | None,
        Query(max_length=200, description="next_cursor of the previous page"),
    ] = None,
) -> dict[str, Any]:
    """Your checkout sessions, newest first, with their status and latest payment."""
    return await checkout.list_sessions(c.pool, c.checkout, merchant_id, limit, cursor)


@router.get(
    "/checkout/sessions/{session_id}",
    summary="Read a checkout session",
    response_model=CheckoutSessionOut,
)
async def read_session(session_id: SessionId, merchant_id: Merchant, c: AppContainer) -> Any:
    """The session's status (`open`, `completed` once its payment succeeded, `expired`) and its latest payment."""
    return await checkout.read_session(c.pool, c.checkout, merchant_id, session_id)


@router.get(
    "/checkout/signing-keys",
    summary="Get the checkout result signing keys",
    response_model=CheckoutSigningKeys,
    responses={**DISABLED},
)
async def signing_keys(c: AppContainer, response: Response) -> dict[str, Any]:
    """The Ed25519 public keys (JWK set) that sign the results the browser brings back to your success_url and failure_url; pick one by the result's `key_id`. Public: no API key needed."""
    response.headers["Cache-Control"] = "public, max-age=300"
    return {"keys": [c.checkout.require_signer().public_jwk()]}
