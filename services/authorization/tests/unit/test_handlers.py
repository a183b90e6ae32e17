"""The authorization handlers, routed through the service's own table, with in-memory stores
and issuer and a unit of work that has no database: what they record and what they emit."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from authorization.adapters.authorization_repository import AuthorizationRecord
from authorization.adapters.challenge_repository import Challenge
from authorization.adapters.issuer_simulator import AuthorizationRequest, IssuerResponse
from authorization.adapters.payment_gate import ScoreArrival
from authorization.adapters.review_repository import PendingReview
from authorization.domain.issuer import ResponseCode
from authorization.domain.lifecycle import Authorization, AuthorizationStatus
from authorization.service_layer.handlers import REVIEW_DECLINE_REASON, AuthorizationHandlers
from sanalpos_common import topics
from sanalpos_common.crypto.aad import cvc_aad, pan_aad
from sanalpos_common.crypto.cvc import rotate_cvc_keys
from sanalpos_common.crypto.envelope import encrypt
from sanalpos_common.crypto.keyring import Keyring
from sanalpos_common.metrics import PaymentMetrics
from sanalpos_common.schemas.events import (
    ActionRequired,
    CapturePayment,
    EncryptedCard,
    FraudDecision,
    PaymentActionRequired,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentDeclined,
    PaymentExpired,
    PaymentOperation,
    PaymentOperationFailed,
    PaymentRefunded,
    PaymentScored,
    PaymentVoided,
    RefundPayment,
    ReviewDecision,
    ReviewResolved,
    VoidPayment,
)
from sanalpos_common.testing import RecordingUnitOfWork, deliver

MERCHANT = "mer_unit"
PAN = "4111111111111111"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
PREAUTH_EXPIRY = timedelta(days=7)
PAN_RING = Keyring.generate("pan")
CVC_RING = rotate_cvc_keys(None, NOW)


@dataclass
class FakeAuthorizations:
    records: dict[object, AuthorizationRecord] = field(default_factory=dict)
    states: dict[object, Authorization] = field(default_factory=dict)
    refunds: set[object] = field(default_factory=set)

    async def add(self, record: AuthorizationRecord) -> None:
        assert record.payment_id not in self.records
        self.records[record.payment_id] = record
        self.states[record.payment_id] = Authorization(
            payment_id=record.payment_id,  # type: ignore[arg-type]
            merchant_id=record.merchant_id,
            amount=record.amount,
            currency=record.currency,
            status=AuthorizationStatus(record.status),
            auth_code=record.auth_code,
            installments=record.installments,
            captured_amount=record.captured_amount,
            expires_at=record.expires_at,
        )

    async def lock(self, payment_id: object) -> Authorization | None:
        return self.states.get(payment_id)

    async def lock_due_preauths(self, now: datetime, limit: int) -> list[Authorization]:
        return [s for s in self.states.values() if s.is_past_expiry(now)][:limit]

    def _move(self, payment_id: object, **changes: Any) -> None:
        self.states[payment_id] = dataclasses.replace(self.states[payment_id], **changes)

    async def mark_captured(self, payment_id: object, amount: int) -> None:
        self._move(payment_id, status=AuthorizationStatus.CAPTURED, captured_amount=amount)

    async def mark_voided(self, payment_id: object, previous: AuthorizationStatus) -> None:
        assert self.states[payment_id].status is previous
        self._move(payment_id, status=AuthorizationStatus.VOIDED)

    async def mark_expired(self, payment_id: object) -> None:
        self._move(payment_id, status=AuthorizationStatus.EXPIRED)

    async def claim_refund(
        self, state: Authorization, refund_id: object, amount: int, reason: str
    ) -> bool:
        if refund_id in self.refunds:
            return False
        self.refunds.add(refund_id)
        return True

    async def mark_refunded(
        self, state: Authorization, amount: int, status: AuthorizationStatus
    ) -> None:
        self._move(state.payment_id, status=status, refunded_amount=state.refunded_amount + amount)

    async def refund_exists(self, refund_id: object) -> bool:
        return refund_id in self.refunds


@dataclass
class FakeReviews:
    held: dict[object, PaymentScored] = field(default_factory=dict)
    status: dict[object, str] = field(default_factory=dict)
    early: dict[object, ReviewResolved] = field(default_factory=dict)

    async def is_pending(self, payment_id: object, merchant_id: str) -> bool:
        scored = self.held.get(payment_id)
        pending = self.status.get(payment_id) == "pending"
        return pending and scored is not None and scored.merchant_id == merchant_id

    async def hold(self, scored: PaymentScored) -> None:
        self.held[scored.payment_id] = scored
        self.status[scored.payment_id] = "pending"

    async def lock_pending(self, payment_id: object, merchant_id: str) -> PendingReview | None:
        if not await self.is_pending(payment_id, merchant_id):
            return None
        return PendingReview(self.held[payment_id])

    async def resolve(self, payment_id: object, status: str, resolved_by: str) -> None:
        self.status[payment_id] = status

    async def remember_early_resolution(self, resolved: ReviewResolved, message_id: object) -> None:
        self.early.setdefault(resolved.payment_id, resolved)


@dataclass
class FakeChallenges:
    challenges: dict[str, Challenge] = field(default_factory=dict)

    async def is_pending(self, payment_id: object, merchant_id: str) -> bool:
        return any(
            c.payment_id == payment_id and c.merchant_id == merchant_id and c.pending
            for c in self.challenges.values()
        )

    async def add(self, challenge: Challenge, scored: PaymentScored) -> None:
        self.challenges[challenge.challenge_id] = challenge

    async def get(self, challenge_id: str) -> Challenge | None:
        return self.challenges.get(challenge_id)

    async def lock(self, challenge_id: str) -> Challenge | None:
        return self.challenges.get(challenge_id)

    async def lock_due(self, now: datetime, limit: int) -> list[Challenge]:
        return [c for c in self.challenges.values() if c.pending and c.expires_at <= now][:limit]

    async def count_attempt(self, challenge_id: str) -> None:
        c = self.challenges[challenge_id]
        self.challenges[challenge_id] = dataclasses.replace(c, attempts=c.attempts + 1)

    async def finish(self, challenge_id: str, status: str, *, attempted: bool) -> None:
        c = self.challenges[challenge_id]
        assert c.pending
        self.challenges[challenge_id] = dataclasses.replace(
            c, status=status, scored=None, attempts=c.attempts + int(attempted)
        )


@dataclass
class FakeGate:
    repositories: FakeRepositories

    async def lock(self, payment_id: object) -> None:
        return None  # one task at a time here

    async def already_scored(self, payment_id: object) -> bool:
        repositories = self.repositories
        return (
            payment_id in repositories.authorizations_store.records
            or payment_id in repositories.reviews_store.held
            or any(
                c.payment_id == payment_id
                for c in repositories.challenges_store.challenges.values()
            )
        )

    async def score_arrived(self, payment_id: object) -> ScoreArrival:
        if await self.already_scored(payment_id):
            return ScoreArrival(True, None)
        return ScoreArrival(False, self.repositories.reviews_store.early.pop(payment_id, None))


@dataclass
class FakeRepositories:
    authorizations_store: FakeAuthorizations = field(default_factory=FakeAuthorizations)
    reviews_store: FakeReviews = field(default_factory=FakeReviews)
    challenges_store: FakeChallenges = field(default_factory=FakeChallenges)

    def gate(self, uow: object) -> FakeGate:
        return FakeGate(self)

    def authorizations(self, uow: object) -> FakeAuthorizations:
        return self.authorizations_store

    def reviews(self, uow: object) -> FakeReviews:
        return self.reviews_store

    def challenges(self, uow: object) -> FakeChallenges:
        return self.challenges_store


@dataclass
class FakeIssuer:
    """Approves with auth code A1B2C3 unless told to answer otherwise; keeps the calls."""

    answer: ResponseCode = ResponseCode.APPROVED
    requests: list[AuthorizationRequest] = field(default_factory=list)
    holds: dict[object, int] = field(default_factory=dict)
    calls: list[tuple[str, object, int]] = field(default_factory=list)

    async def authorize(self, conn: object, request: AuthorizationRequest) -> IssuerResponse:
        self.requests.append(request)
        if self.answer is not ResponseCode.APPROVED:
            return IssuerResponse(self.answer, None)
        self.holds[request.payment_id] = request.amount
        if request.capture:  # a sale: captured with its authorization
            self.calls.append(("capture", request.payment_id, request.amount))
        return IssuerResponse(ResponseCode.APPROVED, "A1B2C3")

    async def capture(self, conn: object, payment_id: object, amount: int) -> None:
        self.calls.append(("capture", payment_id, amount))

    async def release(self, conn: object, payment_id: object) -> int:
        amount = self.holds.pop(payment_id)
        self.calls.append(("release", payment_id, amount))
        return amount

    async def reverse(self, conn: object, payment_id: object) -> int:
        amount = self.holds.pop(payment_id)
        self.calls.append(("reverse", payment_id, amount))
        return amount

    async def refund(self, conn: object, payment_id: object, amount: int) -> None:
        self.calls.append(("refund", payment_id, amount))


@dataclass
class Service:
    repositories: FakeRepositories = field(default_factory=FakeRepositories)
    issuer: FakeIssuer = field(default_factory=FakeIssuer)
    now: datetime = NOW
    metrics: PaymentMetrics | None = None

    def __post_init__(self) -> None:
        self.table = AuthorizationHandlers(
            self.issuer,  # type: ignore[arg-type]
            self.repositories,  # type: ignore[arg-type]
            PAN_RING,
            CVC_RING,
            clock=lambda: self.now,
            preauth_expiry=PREAUTH_EXPIRY,
            metrics=self.metrics,
        ).table()

    async def deliver(self, payload: BaseModel) -> RecordingUnitOfWork:
        return await deliver(self.table, payload, producer="authorization")

    def state(self, payment_id: uuid.UUID) -> Authorization:
        return self.repositories.authorizations_store.states[payment_id]


def scored(
    amount: int = 10_000,
    *,
    capture: bool = True,
    decision: FraudDecision = FraudDecision.APPROVE,
) -> PaymentScored:
    payment_id = uuid.uuid4()
    return PaymentScored(
        payment_id=payment_id,
        merchant_id=MERCHANT,
        score=75
        if decision is FraudDecision.REVIEW
        else 90
        if decision is FraudDecision.DECLINE
        else 5,
        decision=decision,
        reasons=(),
        amount=amount,
        currency="TRY",
        capture=capture,
        installments=3,
        card=EncryptedCard(
            pan_ciphertext=encrypt(PAN_RING, PAN.encode(), pan_aad(MERCHANT, payment_id)),
            cvc_ciphertext=encrypt(CVC_RING, b"737", cvc_aad(MERCHANT, payment_id)),
            fingerprint="fp1_unit",
            bin=PAN[:8],
            last4=PAN[-4:],
            exp_month=12,
            exp_year=2031,
            brand="visa",
        ),
    )


def assert_caused_by(uow: RecordingUnitOfWork, payment_id: uuid.UUID) -> None:
    assert uow.cause is not None
    for _, envelope in uow.outbox:
        assert envelope.producer == "authorization"
        assert envelope.correlation_id == payment_id
        assert envelope.causation_id == uow.cause.message_id


async def test_an_approved_sale_is_authorized_captured_and_recorded() -> None:
    service = Service()
    sale = scored(12_500, capture=True)

    uow = await service.deliver(sale)

    assert uow.topics == [topics.PAYMENT_AUTHORIZED, topics.PAYMENT_CAPTURED]
    authorized, captured = uow.events
    assert isinstance(authorized, PaymentAuthorized) and isinstance(captured, PaymentCaptured)
    assert (authorized.amount, authorized.auth_code, authorized.response_code) == (
        12_500,
        "A1B2C3",
        "00",
    )
    assert (captured.amount, captured.authorized_amount, captured.installments) == (
        12_500,
        12_500,
        3,
    )
    assert_caused_by(uow, sale.payment_id)
    [request] = service.issuer.requests
    assert (request.pan, request.cvc, request.amount) == (PAN, "737", 12_500)
    assert service.issuer.calls == [("capture", sale.payment_id, 12_500)]
    record = service.repositories.authorizations_store.records[sale.payment_id]
    assert (record.status, record.response_code, record.fraud_decision) == (
        "captured",
        "00",
        "approve",
    )
    assert record.expires_at is None  # a sale holds nothing
    assert service.state(sale.payment_id).status is AuthorizationStatus.CAPTURED


async def test_a_pre_authorization_holds_until_its_expiry_and_is_not_captured() -> None:
    service = Service()
    preauth = scored(5_000, capture=False)

    uow = await service.deliver(preauth)

    assert uow.topics == [topics.PAYMENT_AUTHORIZED]
    assert service.issuer.calls == []
    record = service.repositories.authorizations_store.records[preauth.payment_id]
    assert record.expires_at == NOW + PREAUTH_EXPIRY


async def test_a_fraud_decline_is_code_59_without_an_issuer_call() -> None:
    service = Service()
    blocked = scored(decision=FraudDecision.DECLINE)

    uow = await service.deliver(blocked)

    [declined] = uow.events
    assert isinstance(declined, PaymentDeclined)
    assert (declined.response_code, declined.declined_by, declined.reason) == (
        "59",
        "fraud",
        "suspected fraud",
    )
    assert_caused_by(uow, blocked.payment_id)
    assert service.issuer.requests == []
    record = service.repositories.authorizations_store.records[blocked.payment_id]
    assert (record.status, record.response_code, record.auth_code) == ("declined", "59", None)


async def test_an_issuer_decline_carries_the_issuers_code() -> None:
    service = Service(issuer=FakeIssuer(answer=ResponseCode.INSUFFICIENT_FUNDS))
    payment = scored()

    uow = await service.deliver(payment)

    [declined] = uow.events
    assert isinstance(declined, PaymentDeclined)
    assert (declined.response_code, declined.declined_by) == ("51", "issuer")
    assert service.issuer.calls == []  # nothing captured


async def test_a_review_holds_the_payment_and_asks_for_action_without_an_issuer_call() -> None:
    service = Service()
    doubtful = scored(decision=FraudDecision.REVIEW)

    uow = await service.deliver(doubtful)

    [action] = uow.events
    assert isinstance(action, PaymentActionRequired)
    assert (action.action, action.score) == (ActionRequired.REVIEW, 75)
    assert uow.topics == [topics.PAYMENT_ACTION_REQUIRED]
    assert service.repositories.reviews_store.status[doubtful.payment_id] == "pending"
    assert service.issuer.requests == []
    assert doubtful.payment_id not in service.repositories.authorizations_store.records
    # a second score of a held payment changes nothing
    assert (await service.deliver(doubtful)).outbox == []


async def test_an_approved_review_authorizes_the_held_payment() -> None:
    service = Service()
    doubtful = scored(7_000, decision=FraudDecision.REVIEW)
    await service.deliver(doubtful)

    resolution = ReviewResolved(
        payment_id=doubtful.payment_id,
        merchant_id=MERCHANT,
        decision=ReviewDecision.APPROVE,
        resolved_by="analyst@example.com",
    )
    uow = await service.deliver(resolution)

    assert uow.topics == [topics.PAYMENT_AUTHORIZED, topics.PAYMENT_CAPTURED]
    assert_caused_by(uow, doubtful.payment_id)
    assert service.repositories.reviews_store.status[doubtful.payment_id] == "approved"
    assert service.state(doubtful.payment_id).status is AuthorizationStatus.CAPTURED
    assert (await service.deliver(resolution)).outbox == []  # resolved already


async def test_a_declined_review_declines_with_code_59() -> None:
    service = Service()
    doubtful = scored(decision=FraudDecision.REVIEW)
    await service.deliver(doubtful)

    uow = await service.deliver(
        ReviewResolved(
            payment_id=doubtful.payment_id,
            merchant_id=MERCHANT,
            decision=ReviewDecision.DECLINE,
            resolved_by="analyst@example.com",
        )
    )

    [declined] = uow.events
    assert isinstance(declined, PaymentDeclined)
    assert (declined.response_code, declined.declined_by, declined.reason) == (
        "59",
        "fraud",
        REVIEW_DECLINE_REASON,
    )
    assert service.repositories.reviews_store.status[doubtful.payment_id] == "declined"
    assert service.issuer.requests == []


async def test_a_review_of_another_merchant_is_not_resolved() -> None:
    service = Service()
    doubtful = scored(decision=FraudDecision.REVIEW)
    await service.deliver(doubtful)

    uow = await service.deliver(
        ReviewResolved(
            payment_id=doubtful.payment_id,
            merchant_id="mer_other",
            decision=ReviewDecision.APPROVE,
            resolved_by="x",
        )
    )

    assert uow.outbox == []
    assert service.repositories.reviews_store.status[doubtful.payment_id] == "pending"


async def test_a_resolution_before_its_score_is_kept_and_applied_with_the_score() -> None:
    service = Service()
    doubtful = scored(7_000, decision=FraudDecision.REVIEW)
    resolution = ReviewResolved(
        payment_id=doubtful.payment_id,
        merchant_id=MERCHANT,
        decision=ReviewDecision.APPROVE,
        resolved_by="analyst@example.com",
    )

    assert (await service.deliver(resolution)).outbox == []  # kept, nothing to act on yet
    uow = await service.deliver(doubtful)

    assert uow.topics == [
        topics.PAYMENT_ACTION_REQUIRED,
        topics.PAYMENT_AUTHORIZED,
        topics.PAYMENT_CAPTURED,
    ]
    assert service.repositories.reviews_store.status[doubtful.payment_id] == "approved"
    assert service.repositories.reviews_store.early == {}
    assert (await service.deliver(resolution)).outbox == []
    assert (await service.deliver(doubtful)).outbox == []


def capture(payment_id: uuid.UUID, amount: int, merchant: str = MERCHANT) -> CapturePayment:
    return CapturePayment(
        payment_id=payment_id,
        merchant_id=merchant,
        amount=amount,
        currency="TRY",
        requested_at=NOW,
    )


def void(payment_id: uuid.UUID) -> VoidPayment:
    return VoidPayment(payment_id=payment_id, merchant_id=MERCHANT, requested_at=NOW)


def refund(payment_id: uuid.UUID, amount: int, refund_id: uuid.UUID | None = None) -> RefundPayment:
    return RefundPayment(
        refund_id=refund_id or uuid.uuid4(),
        payment_id=payment_id,
        merchant_id=MERCHANT,
        amount=amount,
        currency="TRY",
        reason="returned",
        requested_at=NOW,
    )


async def test_capture_of_a_pre_authorization_captures_at_most_the_hold() -> None:
    service = Service()
    preauth = scored(8_000, capture=False)
    await service.deliver(preauth)

    too_much = await service.deliver(capture(preauth.payment_id, 9_000))
    [failed] = too_much.events
    assert isinstance(failed, PaymentOperationFailed)
    assert (failed.operation, failed.amount) == (PaymentOperation.CAPTURE, 9_000)
    assert "exceeds" in failed.reason
    assert service.issuer.calls == []

    uow = await service.deliver(capture(preauth.payment_id, 6_000))
    [captured] = uow.events
    assert isinstance(captured, PaymentCaptured)
    assert (captured.amount, captured.authorized_amount, captured.auth_code) == (
        6_000,
        8_000,
        "A1B2C3",
    )
    assert_caused_by(uow, preauth.payment_id)
    assert service.issuer.calls == [("capture", preauth.payment_id, 6_000)]
    state = service.state(preauth.payment_id)
    assert (state.status, state.captured_amount) == (AuthorizationStatus.CAPTURED, 6_000)


async def test_a_capture_past_expiry_expires_the_hold_and_fails() -> None:
    service = Service()
    preauth = scored(4_000, capture=False)
    await service.deliver(preauth)
    service.now = NOW + PREAUTH_EXPIRY

    uow = await service.deliver(capture(preauth.payment_id, 4_000))

    assert uow.topics == [topics.PAYMENT_EXPIRED, topics.PAYMENT_OPERATION_FAILED]
    expired, failed = uow.events
    assert isinstance(expired, PaymentExpired) and expired.amount == 4_000
    assert isinstance(failed, PaymentOperationFailed)
    assert failed.reason == "cannot capture a payment that is expired"
    assert service.issuer.calls == [("release", preauth.payment_id, 4_000)]
    assert service.state(preauth.payment_id).status is AuthorizationStatus.EXPIRED


@pytest.mark.parametrize("capture_first", [False, True])
async def test_void_releases_before_capture_and_reverses_after(capture_first: bool) -> None:
    service = Service()
    payment = scored(3_000, capture=capture_first)
    await service.deliver(payment)

    uow = await service.deliver(void(payment.payment_id))

    [voided] = uow.events
    assert isinstance(voided, PaymentVoided)
    assert (voided.amount, voided.after_capture) == (3_000, capture_first)
    assert service.issuer.calls[-1] == (
        "reverse" if capture_first else "release",
        payment.payment_id,
        3_000,
    )
    assert service.state(payment.payment_id).status is AuthorizationStatus.VOIDED


async def test_a_command_in_the_wrong_state_is_answered_with_operation_failed() -> None:
    service = Service()
    payment = scored(3_000, capture=True)
    await service.deliver(payment)
    await service.deliver(void(payment.payment_id))
    calls_before = list(service.issuer.calls)

    for command, operation in (
        (void(payment.payment_id), PaymentOperation.VOID),
        (refund(payment.payment_id, 1_000), PaymentOperation.REFUND),
        (capture(payment.payment_id, 1_000), PaymentOperation.CAPTURE),
    ):
        uow = await service.deliver(command)
        [failed] = uow.events
        assert isinstance(failed, PaymentOperationFailed)
        assert failed.operation is operation
        assert "voided" in failed.reason
        assert_caused_by(uow, payment.payment_id)
    assert service.issuer.calls == calls_before


async def test_commands_for_unknown_or_reviewed_payments_fail_with_the_reason() -> None:
    service = Service()
    doubtful = scored(decision=FraudDecision.REVIEW)
    await service.deliver(doubtful)

    in_review = (await service.deliver(capture(doubtful.payment_id, 100))).events
    unknown = (await service.deliver(void(uuid.uuid4()))).events

    assert [type(e) for e in in_review + unknown] == [PaymentOperationFailed] * 2
    assert "awaiting fraud review" in in_review[0].reason  # type: ignore[attr-defined]
    assert unknown[0].reason == "no authorization for this payment"  # type: ignore[attr-defined]


async def test_refunds_are_partial_then_full_and_a_repeat_changes_nothing() -> None:
    service = Service()
    sale = scored(10_000, capture=True)
    await service.deliver(sale)
    first = refund(sale.payment_id, 4_000)

    uow = await service.deliver(first)
    [refunded] = uow.events
    assert isinstance(refunded, PaymentRefunded)
    assert (refunded.refund_id, refunded.amount) == (first.refund_id, 4_000)
    assert service.state(sale.payment_id).status is AuthorizationStatus.PARTIALLY_REFUNDED

    assert (await service.deliver(first)).outbox == []  # the same refund again
    over = (await service.deliver(refund(sale.payment_id, 7_000))).events
    assert isinstance(over[0], PaymentOperationFailed) and "exceeds" in over[0].reason

    await service.deliver(refund(sale.payment_id, 6_000))
    state = service.state(sale.payment_id)
    assert (state.status, state.refunded_amount) == (AuthorizationStatus.REFUNDED, 10_000)
    assert [c for c in service.issuer.calls if c[0] == "refund"] == [
        ("refund", sale.payment_id, 4_000),
        ("refund", sale.payment_id, 6_000),
    ]


async def test_decisions_are_counted_by_outcome_and_decline_code_only_once_committed() -> None:
    registry = CollectorRegistry()
    service = Service(metrics=PaymentMetrics(registry))

    def count(outcome: str, code: str = "") -> float | None:
        return registry.get_sample_value(
            "sanalpos_payments_total", {"outcome": outcome, "decline_code": code}
        )

    approved = await service.deliver(scored())
    assert count("authorized") == 0  # not before the transaction commits
    for hook in approved.committed_hooks:
        hook()
    service.issuer.answer = ResponseCode.INSUFFICIENT_FUNDS
    declined = await service.deliver(scored())
    held = await service.deliver(scored(decision=FraudDecision.REVIEW))
    by_fraud = await service.deliver(scored(decision=FraudDecision.DECLINE))
    for uow in (declined, held, by_fraud):
        for hook in uow.committed_hooks:
            hook()

    assert count("authorized") == 1
    assert count("declined", ResponseCode.INSUFFICIENT_FUNDS.value) == 1
    assert count("declined", ResponseCode.SUSPECTED_FRAUD.value) == 1
    assert count("review") == 1
