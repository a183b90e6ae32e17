"""Stored cards and the public key browsers encrypt card data to."""

from __future__ import annotations

from typing import Annotated, cast

import asyncpg
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from intake.domain.commands import TOKEN_PATTERN, CreateCardRequest, SaveCardIn
from intake.domain.read_models import StoredCardList, StoredCardOut
from intake.entrypoints.http.deps import AppContainer, IdempotencyKey, Merchant
from intake.entrypoints.http.responses import endpoint_of, http_response
from intake.entrypoints.http.schemas import EncryptionKeyOut
from intake.service_layer import cards, idempotency
from sanalpos_common.crypto.card import fingerprint
from sanalpos_common.db import UnitOfWork

router = APIRouter(prefix="/v1", tags=["cards"])
CardToken = Annotated[str, Path(pattern=TOKEN_PATTERN)]


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
    opened = (
        cards.open_encrypted_card(c.client_encryption, body.encrypted_card, SaveCardIn, merchant_id)
        if body.encrypted_card is not None
        else None
    )
    card = opened.card if opened is not None else body.card
    assert card is not None
    # Retries are compared on the keyed fingerprint, never on the card number itself.
    compared = {
        "fingerprint": fingerprint(c.protection.fingerprint_key, card.number.get_secret_value()),
        "exp": [card.exp_month, card.exp_year],
        "holder_name": card.holder_name,
    }

    async def work(uow: UnitOfWork) -> idempotency.Response:
        # save_card takes anything that runs queries: here, the key's own transaction.
        view = await cards.save_card(
            cast(asyncpg.Pool, uow.conn),
            c.protection,
            merchant_id,
            card,
            opened.use if opened is not None else None,
        )
        return idempotency.Response(201, view)

    scope = idempotency.idempotency_scope(
        merchant_id, idempotency_key, endpoint_of(request), compared
    )
    result = await idempotency.run_in_transaction(c.pool, scope, work)
    return http_response(result, {"Location": f"/v1/cards/{result.body['id']}"})


@router.get("/cards", summary="List stored cards", response_model=StoredCardList)
async def list_stored_cards(
    merchant_id: Merchant,
    c: AppContainer,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> JSONResponse:
    """Your stored cards, newest first; pages follow `next_cursor`."""
    return JSONResponse(await cards.list_cards(c.pool, merchant_id, limit, cursor))


@router.get("/cards/{token}", summary="Read a stored card", response_model=StoredCardOut)
async def read_card(token: CardToken, merchant_id: Merchant, c: AppContainer) -> JSONResponse:
    """One stored card: brand, BIN, last four, expiry and fingerprint."""
    return JSONResponse(await cards.read_card(c.pool, merchant_id, token))


@router.delete("/cards/{token}", summary="Delete a stored card", status_code=204)
async def delete_card(token: CardToken, merchant_id: Merchant, c: AppContainer) -> Response:
    """Deletes the stored card: its token no longer pays. Answers 204 without a body."""
    await cards.delete_card(c.pool, merchant_id, token)
    return Response(status_code=204)
