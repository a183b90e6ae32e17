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

3-D Secure (docs/3d-secure.md): a payment fraud approved or stepped up (its `3ds` action) is
authenticated first when `authentication_cause` says so; a frictionless or attempted answer
goes on to the issuer at once, a challenge is stored and announced with
`payment.action-required` (action `3ds`) and finished by the shopper on this service's ACS page
(`answer_challenge`, `abandon_challenge`) or by the challenge expiry sweeper.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from authorization.adapters.acs_simulator import AcsSimulator
from authorization.adapters.authorization_repository import AuthorizationRecord
from authorization.adapters.challenge_repository import Challenge
from authorization.adapters.issuer_simulator import AuthorizationRequest, IssuerResponse
from authorization.domain.issuer import ResponseCode
from authorization.domain.three_ds import (
    AcsAnswer,
    AuthenticationCause,
    CardProfile,
    ChallengeOutcome,
    authentication_cause,
    authentication_result,
    card_profile,
    challenge_code,
    code_matches,
    hash_code,
    is_manual_review,
    judge_code,
    proceeds_to_issuer,
)
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
    ThreeDSAuthentication,
    VoidPayment,
    payment_ref,
)
from sanalpos_common.schemas.events import AuthenticationStatus as AuthStatus

log = logging.getLogger(__name__)
DEFAULT_PREAUTH_EXPIRY = timedelta(days=7)
REVIEW_DECLINE_REASON = "declined in fraud review"
UNAVAILABLE_REASON = "3-D Secure unavailable: the issuer's ACS did not answer"
FAILED_REASON = "3-D Secure failed: wrong code, no attempts left"
REFUSED_REASON = "3-D Secure failed: the issuer did not authenticate the cardholder"
CANCELLED_REASON = "3-D Secure abandoned: the shopper cancelled the challenge"
EXPIRED_REASON = "3-D Secure abandoned: the challenge was not finished in time"
DeclinedBy = Literal["fraud", "issuer", "authentication"]


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
    acs: AcsSimulator = field(default_factory=AcsSimulator)
    """The directory server and ACS that 3-D Secure asks."""

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
        arrival = await self.repositories.gate(uow).score_arrived(scored.payment_id)  # locks
        if arrival.already_scored:
            log.info("payment already authorized, declined or in review; ignoring a second score")
            return
        reviews = self.repositories.reviews(uow)
        early = arrival.early_resolution
        if is_manual_review(scored):
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
        await self._authenticate_or_authorize(uow, scored)

    async def on_review_resolved(self, uow: UnitOfWork, envelope: Envelope[Any]) -> None:
        resolved: ReviewResolved = envelope.payload
        gate = self.repositories.gate(uow)
        await gate.lock(resolved.payment_id)
        reviews = self.repositories.reviews(uow)
        pending = await reviews.lock_pending(resolved.payment_id, resolved.merchant_id)
        if pending is not None:
            await self._resolve(uow, pending.scored, resolved)
            return
        if await gate.already_scored(resolved.payment_id):
            # Another merchant's, resolved already, or never in review: changes nothing.
            log.info("no pending review for this payment; ignoring the resolution")
            return
        # Read before the payment's score (the topics carry no order between them): kept
        # until the score arrives, which applies it.
        log.info("review resolution read before its score; kept until the score arrives")
        await reviews.remember_early_resolution(resolved, envelope.message_id)

    # --- 3-D Secure ---------------------------------------------------------------------

    async def _authenticate_or_authorize(self, uow: UnitOfWork, scored: PaymentScored) -> None:
        request = await self._request_or_decline(uow, scored)
        if request is None:
            return
        cause = authentication_cause(scored, card_profile(request.pan))
        if cause is None:
            await self._authorize(uow, scored, request)
            return
        profile, answer = await self.acs.authenticate(
            request.pan, challenge_mandated=cause is AuthenticationCause.FRAUD_STEP_UP
        )
        ds_transaction_id = uuid.uuid4()
        if answer is AcsAnswer.CHALLENGE:
            await self._start_challenge(uow, scored, profile, cause, ds_transaction_id)
            return
        status = {
            AcsAnswer.FRICTIONLESS: AuthStatus.AUTHENTICATED,
            AcsAnswer.ATTEMPTED: AuthStatus.ATTEMPTED,
            AcsAnswer.UNAVAILABLE: AuthStatus.UNAVAILABLE,
        }[answer]
        flow = "frictionless" if answer is AcsAnswer.FRICTIONLESS else None
        authentication = authentication_result(scored.card.brand, status, flow, ds_transaction_id)
        log.info("3-D Secure (%s): %s", cause.value, status.value)
        if proceeds_to_issuer(authentication):
            await self._authorize(uow, scored, request, authentication)
            return
        await self._decline_authentication(uow, scored, authentication, UNAVAILABLE_REASON)

    async def _start_challenge(
        self,
        uow: UnitOfWork,
        scored: PaymentScored,
        profile: CardProfile,
        cause: AuthenticationCause,
        ds_transaction_id: uuid.UUID,
    ) -> None:
        challenge_id = "ch_" + secrets.token_urlsafe(24)
        key = self.acs.key
        expires_at = self.clock() + self.acs.challenge_ttl
        challenge = Challenge(
            challenge_id=challenge_id,
            payment_id=scored.payment_id,
            merchant_id=scored.merchant_id,
            card_profile=profile,
            cause=cause,
            ds_transaction_id=ds_transaction_id,
            code_hash=hash_code(key, challenge_id, challenge_code(key, challenge_id)),
            attempts=0,
            max_attempts=self.acs.max_attempts,
            expires_at=expires_at,
            return_url=scored.return_url,
            status="pending",
            scored=scored,
        )
        await self.repositories.challenges(uow).add(challenge, scored)
        await uow.emit(
            PaymentActionRequired(
                **payment_ref(scored),
                action=ActionRequired.THREE_DS,
                score=scored.score,
                next_action_url=self.acs.challenge_url(challenge_id),
                expires_at=expires_at,
            ),
        )
        log.info("3-D Secure (%s): challenge until %s", cause.value, expires_at.isoformat())

    async def answer_challenge(
        self, uow: UnitOfWork, challenge_id: str, code: str
    ) -> Challenge | None:
        """The shopper's code for a challenge. Returns the challenge as it is afterwards
        (None: unknown). A challenge that is no longer pending is returned unchanged: a double
        post authorizes once."""
        challenges = self.repositories.challenges(uow)
        challenge = await challenges.lock(challenge_id)
        if challenge is None or not challenge.pending:
            return challenge
        if challenge.expires_at <= self.clock():
            await self._finish(uow, challenge, AuthStatus.ABANDONED, EXPIRED_REASON)
            return await challenges.get(challenge_id)
        right = code_matches(self.acs.key, challenge_id, code, challenge.code_hash)
        answer = judge_code(
            challenge.card_profile, right, challenge.attempts, challenge.max_attempts
        )
        if answer.outcome is ChallengeOutcome.RETRY:
            await challenges.count_attempt(challenge_id)
            log.info("3-D Secure challenge: wrong code, %d attempts left", answer.attempts_left)
        elif answer.outcome is ChallengeOutcome.AUTHENTICATED:
            await self._finish(uow, challenge, AuthStatus.AUTHENTICATED, None, attempted=True)
        else:
            reason = REFUSED_REASON if right else FAILED_REASON
            await self._finish(uow, challenge, AuthStatus.FAILED, reason, attempted=True)
        return await challenges.get(challenge_id)

    async def abandon_challenge(
        self, uow: UnitOfWork, challenge_id: str, reason: str = CANCELLED_REASON
    ) -> Challenge | None:
        """The shopper cancelled; like `answer_challenge`, a finished one is left as it is."""
        challenges = self.repositories.challenges(uow)
        challenge = await challenges.lock(challenge_id)
        if challenge is None or not challenge.pending:
            return challenge
        await self._finish(uow, challenge, AuthStatus.ABANDONED, reason)
        return await challenges.get(challenge_id)

    async def expire_challenge(self, uow: UnitOfWork, challenge: Challenge) -> None:
        """A row-locked pending challenge past its time limit (the sweeper's)."""
        await self._finish(uow, challenge, AuthStatus.ABANDONED, EXPIRED_REASON)

    async def _finish(
        self,
        uow: UnitOfWork,
        challenge: Challenge,
        status: AuthStatus,
        decline_reason: str | None,
        *,
        attempted: bool = False,
    ) -> None:
        scored = challenge.scored
        assert scored is not None, "a pending challenge keeps its payment"
        await self.repositories.challenges(uow).finish(
            challenge.challenge_id, status.value, attempted=attempted
        )
        authentication = authentication_result(
            scored.card.brand, status, "challenge", challenge.ds_transaction_id
        )
        if decline_reason is None:
            log.info("3-D Secure challenge passed; authorizing")
            await self._authorize(uow, scored, authentication=authentication)
            return
        log.info("3-D Secure challenge ended %s; declining", status.value)
        await self._decline_authentication(uow, scored, authentication, decline_reason)

    async def _decline_authentication(
        self,
        uow: UnitOfWork,
        scored: PaymentScored,
        authentication: ThreeDSAuthentication,
        reason: str,
    ) -> None:
        response = IssuerResponse(ResponseCode.AUTHENTICATION_FAILED, None)
        await self._decline(uow, scored, response, "authentication", reason, authentication)

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

    async def _request_or_decline(
        self, uow: UnitOfWork, scored: PaymentScored
    ) -> AuthorizationRequest | None:
        """The decrypted card; None when its security code expired (declined N7 here)."""
        try:
            return await self._decrypted_request(scored)
        except CvcExpiredError as exc:
            log.warning("declining: %s", exc)  # versions and times only, never the code
            response = IssuerResponse(ResponseCode.SECURITY_CODE_EXPIRED, None)
        except (DecryptionError, KeyringError) as exc:
            # No retry can help (wrong key, foreign or tampered ciphertext): dead-letter it
            # at once so it can be replayed once the keys are put right.
            raise NonRetryable(f"card data does not decrypt: {exc}") from exc
        await self._decline(uow, scored, response, "issuer", response.response_code.description)
        return None

    async def _authorize(
        self,
        uow: UnitOfWork,
        scored: PaymentScored,
        request: AuthorizationRequest | None = None,
        authentication: ThreeDSAuthentication | None = None,
    ) -> None:
        """Ask the issuer for a hold; capture at once when it is a sale."""
        if request is None:
            request = await self._request_or_decline(uow, scored)
            if request is None:
                return
        response = await self.issuer.authorize(uow.conn, request)
        if not response.approved:
            await self._decline(
                uow,
                scored,
                response,
                "issuer",
                response.response_code.description,
                authentication,
            )
            return
        assert response.auth_code is not None
        # A sale's hold was captured as the issuer placed it (`request.capture`): recorded
        # captured at once, with no second write to either.
        expires_at = None if scored.capture else self.clock() + self.preauth_expiry
        record = self._record(scored, response, expires_at, authentication)
        if scored.capture:
            record = dataclasses.replace(record, status="captured", captured_amount=scored.amount)
        await self.repositories.authorizations(uow).add(record)
        await uow.emit(
            PaymentAuthorized(
                **payment_ref(scored),
                auth_code=response.auth_code,
                response_code=response.response_code.value,
                installments=scored.installments,
                capture=scored.capture,
                authentication=authentication,
            ),
        )
        if self.metrics is not None:
            uow.after_commit(self.metrics.authorized)
        if scored.capture:
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
        declined_by: DeclinedBy,
        reason: str,
        authentication: ThreeDSAuthentication | None = None,
    ) -> None:
        record = self._record(scored, response, authentication=authentication)
        await self.repositories.authorizations(uow).add(record)
        await uow.emit(
            PaymentDeclined(
                **payment_ref(scored),
                response_code=response.response_code.value,
                reason=reason,
                declined_by=declined_by,
                authentication=authentication,
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
            capture=scored.capture,
        )

    @staticmethod
    def _record(
        scored: PaymentScored,
        response: IssuerResponse,
        expires_at: datetime | None = None,
        authentication: ThreeDSAuthentication | None = None,
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
            authentication=authentication,
        )
