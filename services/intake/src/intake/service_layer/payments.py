"""Creating payments and following their outcomes."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime

import asyncpg

from intake import PRODUCER
from intake.adapters.card_tokens import CardTokenRepository
from intake.adapters.merchants import MerchantStore
from intake.adapters.payments import IdempotencyRepository, PaymentRepository
from intake.adapters.used_jwe import UsedJweRepository
from intake.domain.commands import CardIn, CreatePaymentRequest
from intake.domain.payment import PaymentStatus, rank
from intake.service_layer.card_protection import CardProtection
from intake.service_layer.client_encryption import JweUse
from intake.service_layer.fx import check_convertible
from intake.service_layer.idempotency import (
    IdempotencyConflict,
    IdempotencyScope,
    Response,
    request_hash,
    run_idempotent,
)
from intake.service_layer.installments import check_installments
from intake.service_layer.three_d_secure import merchant_three_d_secure
from intake.service_layer.views import payment_view
from sanalpos_common.db import unit_of_work
from sanalpos_common.schemas.events import PaymentInitiated

log = logging.getLogger(__name__)
CREATE_ENDPOINT = "POST /v1/payments"


class CardTokenNotFound(Exception):
    """No live stored card with this token for this merchant (deleted, or someone else's)."""


class StoredCardExpired(Exception):
    """The stored card's expiry has passed."""


def card_expired(exp_month: int, exp_year: int, now: datetime) -> bool:
    return (exp_year, exp_month) < (now.year, now.month)


class _ConcurrentDuplicate(Exception):
    pass


async def create_payment(
    pool: asyncpg.Pool,
    protection: CardProtection,
    merchant_id: str,
    request: CreatePaymentRequest,
    idempotency_key: str | None,
    card: CardIn | None = None,
    jwe_use: JweUse | None = None,
    checkout_session_id: str | None = None,
) -> Response:
    """`checkout_session_id`: the hosted payment page session paying (None for the API);
    `card`: the clear card when it came encrypted (`encrypted_card`), already validated;
    `jwe_use`: that token's use, recorded with the payment (a reused token is refused, a
    retry with the same Idempotency-Key replays before it is looked at)."""
    card = card or request.card
    compared = request.fingerprint_for_idempotency()
    if card is not None and request.card is None:
        compared["card"] = {
            "exp_month": card.exp_month,
            "exp_year": card.exp_year,
            "holder_name": card.holder_name,
        }
    digest = request_hash(compared)

    async def create(claim: object = None) -> Response:
        for attempt in range(2):
            try:
                return await _create_once(
                    pool,
                    protection,
                    merchant_id,
                    request,
                    card,
                    idempotency_key,
                    digest,
                    jwe_use,
                    checkout_session_id,
                    # A key this request has just claimed cannot be done yet: no replay to look
                    # for (a takeover that completed first makes save() fail, then we look).
                    look_for_replay=claim is None or attempt > 0,
                )
            except _ConcurrentDuplicate:
                continue  # the other request committed: the next pass replays its response
        raise RuntimeError("idempotency key contention did not resolve")

    if idempotency_key is None:
        return await create()
    # The key is claimed first (concurrent requests get "in progress"); _create_once
    # completes it (IdempotencyRepository.save) in the payment's own transaction.
    scope = IdempotencyScope(merchant_id, idempotency_key, CREATE_ENDPOINT, digest)
    return await run_idempotent(pool, scope, create)


async def _create_once(
    pool: asyncpg.Pool,
    protection: CardProtection,
    merchant_id: str,
    request: CreatePaymentRequest,
    card_in: CardIn | None,
    idempotency_key: str | None,
    digest: str,
    jwe_use: JweUse | None = None,
    checkout_session_id: str | None = None,
    look_for_replay: bool = True,
) -> Response:
    async with unit_of_work(pool, PRODUCER) as uow:
        keys = IdempotencyRepository(uow.conn)
        if idempotency_key is not None and look_for_replay:
            previous = await keys.find(merchant_id, idempotency_key)
            if previous is not None:
                if previous["request_hash"] != digest:
                    raise IdempotencyConflict(idempotency_key)
                body = json.loads(previous["response_body"])
                return Response(previous["response_status"], body, replayed=True)
        if jwe_use is not None:
            await UsedJweRepository(uow.conn).record(jwe_use)
        payment_id = uuid.uuid4()
        now = datetime.now(UTC)
        card_token: str | None = None
        if request.card_token is not None:
            stored = await CardTokenRepository(uow.conn).for_payment(
                merchant_id, request.card_token
            )
            if stored is None:
                raise CardTokenNotFound(request.card_token)
            if card_expired(stored["exp_month"], stored["exp_year"], now):
                raise StoredCardExpired(request.card_token)
            card = await protection.run(
                protection.for_token_payment,
                merchant_id,
                payment_id,
                stored,
                None if request.cvc is None else request.cvc.get_secret_value(),
            )
            card_token = request.card_token
        else:
            assert card_in is not None and card_in.cvc is not None
            pan = card_in.number.get_secret_value()
            card = await protection.run(
                protection.protect,
                merchant_id,
                payment_id,
                pan,
                card_in.cvc.get_secret_value(),
                card_in.exp_month,
                card_in.exp_year,
            )
            if request.save_card:
                saved = await protection.run(
                    protection.tokenize, merchant_id, pan, card_in.exp_month, card_in.exp_year, now
                )
                await CardTokenRepository(uow.conn).add(saved)
                card_token = saved["token"]
        await check_installments(uow.conn, merchant_id, card.bin, request.installments)
        merchant = await MerchantStore(uow.conn).payment_settings(merchant_id)
        await check_convertible(uow.conn, merchant_id, request.currency, merchant=merchant)
        three_d_secure = merchant_three_d_secure(merchant, request.three_d_secure)
        row = {
            "id": payment_id,
            "merchant_id": merchant_id,
            "amount": request.amount,
            "currency": request.currency,
            "capture": request.capture,
            "installments": request.installments,
            "order_id": request.order_id,
            "description": request.description,
            "metadata": request.metadata,
            "status": PaymentStatus.PENDING.value,
            "status_rank": rank(PaymentStatus.PENDING),
            "card_brand": card.brand,
            "card_bin": card.bin,
            "card_last4": card.last4,
            "card_exp_month": card.exp_month,
            "card_exp_year": card.exp_year,
            "card_fingerprint": card.fingerprint,
            "card_token": card_token,
            "initiated_by": request.initiated_by,
            "risk_context": None
            if request.context is None
            else request.context.model_dump(mode="json", exclude_none=True),
            "created_at": now,
            "updated_at": now,
        }
        if checkout_session_id is not None:  # the hosted payment page's session paying
            row["checkout_session_id"] = checkout_session_id
        initiated = PaymentInitiated(
            payment_id=payment_id,
            merchant_id=merchant_id,
            amount=request.amount,
            currency=request.currency,
            capture=request.capture,
            installments=request.installments,
            order_id=request.order_id,
            card=card,
            created_at=request.occurred_at or now,
            context=request.context,
            three_d_secure=three_d_secure,
            return_url=request.return_url,
            shopper=request.shopper,
            checkout_session_id=checkout_session_id,
        )
        envelope = await uow.emit(initiated)  # written at the transaction's end
        await PaymentRepository(uow.conn).add(
            row, (envelope.message_id, "payment.initiated", now, {"status": "pending"})
        )
        body = payment_view(row, [])
        if idempotency_key is not None and not await keys.save(
            merchant_id, idempotency_key, digest, 202, body
        ):
            raise _ConcurrentDuplicate
        log.info("payment accepted", extra={"payment_id": str(payment_id)})
        return Response(202, body)
