"""Authorizes scored payments against the issuer, captures sales at once, and holds payments
fraud sent to review until a reviewer resolves them.

Security code lifetime: the CVC travels encrypted under an hourly key that is destroyed two
hours after its hour began (`sanalpos_common.crypto.cvc`). A `payment.scored` message whose
security code can no longer be decrypted (`CvcExpiredError`: authorization lagged past the TTL,
or an old message was replayed) is **declined, not retried or dead-lettered**: response code
`N7` ("security code expired", `declined_by="issuer"`), recorded in `authorizations` like any
decline, no issuer call, no hold. The merchant asks the customer for the code again with a new
payment. A CVC key version that is merely newer than the keyring this process holds (a reload
not yet done) is not an expiry: the keyring is reloaded and the decrypt tried once more.
The same holds for a review approved more than two hours after the payment was made.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from authorization.adapters.authorization_repository import AuthorizationRecord
from authorization.adapters.issuer_simulator import AuthorizationRequest, IssuerResponse
from authorization.domain.issuer import ResponseCode
from authorization.service_layer.commands import PaymentCommands
from authorization.service_layer.ports import Issuer, Repositories
from sanalpos_common.crypto.aad import cvc_aad
from sanalpos_common.crypto.cvc import CvcExpiredError, decrypt_cvc
from sanalpos_common.crypto.envelope import decrypt
from sanalpos_common.crypto.keyring import KeyringError, KeyVersionUnavailable
from sanalpos_common.crypto.wrapping import DecryptionError, KeyWrapper
from sanalpos_common.db import UnitOfWork
from sanalpos_common.messaging.consumer import NonRetryable
from sanalpos_common.messaging.routing import HandlerTable
from sanalpos_common.metrics import PaymentMetrics
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import (
    ActionRequired,
    CapturePayment,
    FraudDecision,
    PaymentActionRequired,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentDeclined,
    PaymentScored,
    RefundPayment,
    ReviewDecision,
    ReviewResolved,
    VoidPayment,
    payment_ref,
)

log = logging.getLogger(__name__)
DEFAULT_PREAUTH_EXPIRY = timedelta(days=7)
REVIEW_DECLINE_REASON = "declined in fraud review"


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class AuthorizationHandlers:
    issuer: Issuer
    repositories: Repositories
    pan_keyring: KeyWrapper
    cvc_keyring: KeyWrapper
    offload: bool = False
    """True when a keyring calls out (Vault transit): decrypt in a worker thread."""
    clock: Callable[[], datetime] = field(default=_utc_now)
    preauth_expiry: timedelta = DEFAULT_PREAUTH_EXPIRY
    """How long an uncaptured pre-authorization holds the card's funds."""
    metrics: PaymentMetrics | None = None
    """Decisions by outcome and decline code, counted once their transaction commits."""

    def table(self) -> HandlerTable:
        """This service's routes by message type; built once, at start-up."""
        commands = PaymentCommands(self.issuer, self.repositories, self.clock)
        return HandlerTable(
            {
                PaymentScored: self.on_scored,
                ReviewResolved: self.on_review_resolved,
                CapturePayment: commands.capture,
                VoidPayment: commands.void,
                RefundPayment: commands.refund,
            }
        )

    async def on_scored(self, uow: UnitOfWork, envelope: Envelope[Any]) -> None:
        scored: PaymentScored = envelope.payload
        reviews = self.repositories.reviews(uow)
        await reviews.lock_payment(scored.payment_id)
        if await self._already_scored(uow, scored.payment_id):
            log.info("payment already authorized, declined or in review; ignoring a second score")
            return
        early = await reviews.take_early_resolution(scored.payment_id)
        if scored.decision is FraudDecision.REVIEW:
            await reviews.hold(scored)
            await uow.emit(
                PaymentActionRequired(
                    **payment_ref(scored),
                    action=ActionRequired.REVIEW,
                    score=scored.score,
                ),
            )
            if self.metrics is not None:
                uow.after_commit(self.metrics.held_for_review)
            if early is not None and early.merchant_id == scored.merchant_id:
                log.info("applying the review resolution that was read before this score")
                await self._resolve(uow, scored, early)
                return
            log.info("held for fraud review (score %d); no issuer call yet", scored.score)
            return
        if early is not None:
            log.info("dropping a review resolution of a payment fraud did not send to review")
        if scored.decision is FraudDecision.DECLINE:
            response = IssuerResponse(ResponseCode.SUSPECTED_FRAUD, None)
            await self._decline(uow, scored, response, "fraud", response.response_code.description)
            return
        await self._authorize(uow, scored)

    async def on_review_resolved(self, uow: UnitOfWork, envelope: Envelope[Any]) -> None:
        resolved: ReviewResolved = envelope.payload
        reviews = self.repositories.reviews(uow)
        await reviews.lock_payment(resolved.payment_id)
        pending = await reviews.lock_pending(resolved.payment_id, resolved.merchant_id)
        if pending is not None:
            await self._resolve(uow, pending.scored, resolved)
            return
        if await self._already_scored(uow, resolved.payment_id):
            # Another merchant's, resolved already, or never in review: changes nothing.
            log.info("no pending review for this payment; ignoring the resolution")
            return
        # Read before the payment's score (the topics carry no order between them): kept
        # until the score arrives, which applies it.
        log.info("review resolution read before its score; kept until the score arrives")
        await reviews.remember_early_resolution(resolved, envelope.message_id)

    async def _already_scored(self, uow: UnitOfWork, payment_id: object) -> bool:
        return await self.repositories.authorizations(uow).exists(
            payment_id
        ) or await self.repositories.reviews(uow).exists(payment_id)

    async def _resolve(
        self, uow: UnitOfWork, scored: PaymentScored, resolved: ReviewResolved
    ) -> None:
        """A pending review's outcome: the issuer asked (approved) or a fraud decline."""
        await self.repositories.reviews(uow).resolve(
            scored.payment_id, resolved.decision.value + "d", resolved.resolved_by
        )
        if resolved.decision is ReviewDecision.APPROVE:
            log.info("review approved by %s; authorizing", resolved.resolved_by)
            await self._authorize(uow, scored)
            return
        response = IssuerResponse(ResponseCode.SUSPECTED_FRAUD, None)
        await self._decline(uow, scored, response, "fraud", REVIEW_DECLINE_REASON)

    async def _authorize(self, uow: UnitOfWork, scored: PaymentScored) -> None:
        """Ask the issuer for a hold; capture at once when it is a sale."""
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
        if not response.approved:
            await self._decline(uow, scored, response, "issuer", response.response_code.description)
            return
        assert response.auth_code is not None
        repo = self.repositories.authorizations(uow)
        expires_at = None if scored.capture else self.clock() + self.preauth_expiry
        await repo.add(self._record(scored, response, expires_at))
        await uow.emit(
            PaymentAuthorized(
                **payment_ref(scored),
                auth_code=response.auth_code,
                response_code=response.response_code.value,
                installments=scored.installments,
                capture=scored.capture,
            ),
        )
        if self.metrics is not None:
            uow.after_commit(self.metrics.authorized)
        if scored.capture:
            await self.issuer.capture(uow.conn, scored.payment_id, scored.amount)
            await repo.mark_captured(scored.payment_id, scored.amount)
            await uow.emit(
                PaymentCaptured(
                    **payment_ref(scored),
                    installments=scored.installments,
                    auth_code=response.auth_code,
                    authorized_amount=scored.amount,
                ),
            )
        log.info("authorized%s", " and captured" if scored.capture else "")

    async def _decline(
        self,
        uow: UnitOfWork,
        scored: PaymentScored,
        response: IssuerResponse,
        declined_by: Literal["fraud", "issuer"],
        reason: str,
    ) -> None:
        await self.repositories.authorizations(uow).add(self._record(scored, response))
        await uow.emit(
            PaymentDeclined(
                **payment_ref(scored),
                response_code=response.response_code.value,
                reason=reason,
                declined_by=declined_by,
            ),
        )
        if self.metrics is not None:
            code, metrics = response.response_code.value, self.metrics
            uow.after_commit(lambda: metrics.declined(code))
        log.info("declined %s (%s)", response.response_code.value, declined_by)

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
    def _record(
        scored: PaymentScored, response: IssuerResponse, expires_at: datetime | None = None
    ) -> AuthorizationRecord:
        return AuthorizationRecord(
            **payment_ref(scored),
            status="authorized" if response.approved else "declined",
            response_code=response.response_code.value,
            auth_code=response.auth_code,
            fraud_score=scored.score,
            fraud_decision=scored.decision.value,
            card_bin=scored.card.bin,
            card_last4=scored.card.last4,
            installments=scored.installments,
            expires_at=expires_at,
        )
