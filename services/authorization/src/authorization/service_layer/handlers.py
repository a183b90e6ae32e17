"""Authorizes scored payments against the issuer and captures sales at once.

Security code lifetime: the CVC travels encrypted under an hourly key that is destroyed two
hours after its hour began (`sanalpos_common.crypto.cvc`). A `payment.scored` message whose
security code can no longer be decrypted (`CvcExpiredError`: authorization lagged past the TTL,
or an old message was replayed) is **declined, not retried or dead-lettered**: response code
`N7` ("security code expired", `declined_by="issuer"`), recorded in `authorizations` like any
decline, no issuer call, no hold. The merchant asks the customer for the code again with a new
payment. A CVC key version that is merely newer than the keyring this process holds (a reload
not yet done) is not an expiry: the keyring is reloaded and the decrypt tried once more.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from authorization.adapters.authorization_repository import (
    AuthorizationRecord,
    AuthorizationRepository,
)
from authorization.adapters.issuer_simulator import (
    AuthorizationRequest,
    IssuerResponse,
    IssuerSimulator,
)
from authorization.domain.issuer import ResponseCode
from sanalpos_common import topics
from sanalpos_common.crypto.aad import cvc_aad
from sanalpos_common.crypto.cvc import CvcExpiredError, decrypt_cvc
from sanalpos_common.crypto.envelope import decrypt
from sanalpos_common.crypto.keyring import KeyringError, KeyVersionUnavailable
from sanalpos_common.crypto.wrapping import DecryptionError, KeyWrapper
from sanalpos_common.db import UnitOfWork
from sanalpos_common.messaging.consumer import NonRetryable
from sanalpos_common.schemas.codec import new_envelope
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import (
    FraudDecision,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentDeclined,
    PaymentScored,
)

log = logging.getLogger(__name__)
PRODUCER = "authorization"


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class AuthorizationHandlers:
    issuer: IssuerSimulator
    pan_keyring: KeyWrapper
    cvc_keyring: KeyWrapper
    offload: bool = False
    """True when a keyring calls out (Vault transit): decrypt in a worker thread."""
    clock: Callable[[], datetime] = field(default=_utc_now)

    async def handle(self, uow: UnitOfWork, topic: str, envelope: Envelope[Any]) -> None:
        if topic == topics.PAYMENT_SCORED:
            await self.on_scored(uow, envelope)

    async def on_scored(self, uow: UnitOfWork, envelope: Envelope[Any]) -> None:
        scored: PaymentScored = envelope.payload
        repo = AuthorizationRepository(uow.conn)
        if await repo.exists(scored.payment_id):
            log.info("payment already authorized or declined; ignoring a second score")
            return
        if scored.decision is FraudDecision.DECLINE:
            response = IssuerResponse(ResponseCode.SUSPECTED_FRAUD, None)
            declined_by = "fraud"
        else:
            declined_by = "issuer"
            try:
                request = await self._decrypted_request(scored)
            except CvcExpiredError as exc:
                log.warning("declining: %s", exc)  # versions and times only, never the code
                response = IssuerResponse(ResponseCode.SECURITY_CODE_EXPIRED, None)
            except (DecryptionError, KeyringError) as exc:
                # No retry can help (wrong key, foreign or tampered ciphertext): dead-letter it
                # at once so it can be replayed once the keys are put right.
                raise NonRetryable(f"card data does not decrypt: {exc}") from exc
            else:
                response = await self.issuer.authorize(uow.conn, request)
        await repo.add(self._record(scored, response))
        emit = _Emitter(uow, envelope)
        if not response.approved:
            await emit(
                topics.PAYMENT_DECLINED,
                PaymentDeclined(
                    payment_id=scored.payment_id,
                    merchant_id=scored.merchant_id,
                    amount=scored.amount,
                    currency=scored.currency,
                    response_code=response.response_code.value,
                    reason=response.response_code.description,
                    declined_by=declined_by,
                ),
            )
            log.info("declined %s (%s)", response.response_code.value, declined_by)
            return
        assert response.auth_code is not None
        await emit(
            topics.PAYMENT_AUTHORIZED,
            PaymentAuthorized(
                payment_id=scored.payment_id,
                merchant_id=scored.merchant_id,
                amount=scored.amount,
                currency=scored.currency,
                auth_code=response.auth_code,
                response_code=response.response_code.value,
                installments=scored.installments,
                capture=scored.capture,
            ),
        )
        if scored.capture:
            await self.issuer.capture(uow.conn, scored.payment_id, scored.amount)
            await repo.mark_captured(scored.payment_id)
            await emit(
                topics.PAYMENT_CAPTURED,
                PaymentCaptured(
                    payment_id=scored.payment_id,
                    merchant_id=scored.merchant_id,
                    amount=scored.amount,
                    currency=scored.currency,
                    installments=scored.installments,
                    auth_code=response.auth_code,
                ),
            )
        log.info("authorized%s", " and captured" if scored.capture else "")

    async def _decrypted_request(self, scored: PaymentScored) -> AuthorizationRequest:
        for attempt in (1, 2):
            try:
                if self.offload:
                    return await asyncio.to_thread(self._request, scored)
                return self._request(scored)
            except KeyVersionUnavailable:
                refresh = getattr(self.cvc_keyring, "refresh", None)
                if attempt == 2 or not callable(refresh):
                    raise
                log.info("a card key version this process lacks; reloading the keyrings")
                await asyncio.to_thread(refresh)
                pan_refresh = getattr(self.pan_keyring, "refresh", None)
                if callable(pan_refresh):
                    await asyncio.to_thread(pan_refresh)
        raise AssertionError("unreachable")

    def _request(self, scored: PaymentScored) -> AuthorizationRequest:
        card = scored.card
        # A stored card's PAN is bound to (merchant, token); a one-off card's to the payment.
        pan = decrypt(
            self.pan_keyring,
            card.pan_ciphertext,
            card.pan_aad(scored.merchant_id, scored.payment_id),
        )
        cvc = None
        if card.cvc_ciphertext is not None:
            # Raises CvcExpiredError once the code's key is past its TTL (destroyed).
            cvc = decrypt_cvc(
                self.cvc_keyring,
                card.cvc_ciphertext,
                cvc_aad(scored.merchant_id, scored.payment_id),
                now=self.clock(),
            )
        return AuthorizationRequest(
            payment_id=scored.payment_id,
            pan=pan.decode(),
            cvc=cvc,
            exp_month=card.exp_month,
            exp_year=card.exp_year,
            amount=scored.amount,
            currency=scored.currency,
        )

    @staticmethod
    def _record(scored: PaymentScored, response: IssuerResponse) -> AuthorizationRecord:
        return AuthorizationRecord(
            payment_id=scored.payment_id,
            merchant_id=scored.merchant_id,
            amount=scored.amount,
            currency=scored.currency,
            status="authorized" if response.approved else "declined",
            response_code=response.response_code.value,
            auth_code=response.auth_code,
            fraud_score=scored.score,
            fraud_decision=scored.decision.value,
            card_bin=scored.card.bin,
            card_last4=scored.card.last4,
        )


class _Emitter:
    """Emits events caused by one incoming message, correlated to its payment."""

    def __init__(self, uow: UnitOfWork, cause: Envelope[Any]) -> None:
        self.uow = uow
        self.cause = cause

    async def __call__(self, topic: str, payload: BaseModel) -> None:
        await self.uow.emit(
            topic,
            new_envelope(
                topic,
                payload,
                correlation_id=self.cause.correlation_id,
                causation_id=self.cause.message_id,
                producer=PRODUCER,
            ),
        )
