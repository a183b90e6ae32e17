"""3-D Secure: the decision, the simulated directory server/ACS, and the handlers' use of
them (in-memory stores, as test_handlers.py)."""

from __future__ import annotations

import base64
import dataclasses
import time
import uuid
from datetime import timedelta

import pytest

from authorization.adapters.acs_simulator import AcsSimulator
from authorization.domain.seed_cards import SIMULATOR_CARDS
from authorization.domain.three_ds import (
    AcsAnswer,
    AuthenticationCause,
    CardProfile,
    ChallengeOutcome,
    acs_answer,
    authentication_cause,
    authentication_result,
    card_profile,
    challenge_code,
    code_matches,
    eci,
    hash_code,
    is_manual_review,
    judge_code,
)
from authorization.service_layer.handlers import (
    CANCELLED_REASON,
    EXPIRED_REASON,
    FAILED_REASON,
    UNAVAILABLE_REASON,
    AuthorizationHandlers,
)
from sanalpos_common.crypto.aad import cvc_aad, pan_aad
from sanalpos_common.crypto.card import luhn_check_digit
from sanalpos_common.crypto.envelope import encrypt
from sanalpos_common.schemas.events import (
    ActionRequired,
    AuthenticationStatus,
    EncryptedCard,
    FraudDecision,
    PaymentActionRequired,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentDeclined,
    PaymentScored,
    ThreeDSRequest,
)
from sanalpos_common.testing import RecordingUnitOfWork

from .test_handlers import CVC_RING, MERCHANT, NOW, PAN_RING, FakeIssuer, FakeRepositories

FRICTIONLESS = "4000003100000005"
CHALLENGE = "4000003200000004"
CHALLENGE_FAILS = "4000003300000003"
NOT_ENROLLED = "4000003400000002"
UNAVAILABLE = "4000003500000001"
ISSUER_REQUIRED = "4000003600000000"
ORDINARY = "4111111111111111"
ACS = AcsSimulator(
    public_url="https://acs.test", key=b"k" * 32, timeout_s=0.05, challenge_ttl=timedelta(minutes=5)
)


def scored(
    pan: str,
    *,
    three_d_secure: ThreeDSRequest = ThreeDSRequest.AUTOMATIC,
    decision: FraudDecision = FraudDecision.APPROVE,
    reasons: tuple[str, ...] = (),
    brand: str = "visa",
    return_url: str | None = "https://shop.test/back",
) -> PaymentScored:
    payment_id = uuid.uuid4()
    return PaymentScored(
        payment_id=payment_id,
        merchant_id=MERCHANT,
        score=60 if decision is FraudDecision.REVIEW else 5,
        decision=decision,
        reasons=reasons,
        amount=10_000,
        currency="TRY",
        capture=True,
        installments=1,
        card=EncryptedCard(
            pan_ciphertext=encrypt(PAN_RING, pan.encode(), pan_aad(MERCHANT, payment_id)),
            cvc_ciphertext=encrypt(CVC_RING, b"737", cvc_aad(MERCHANT, payment_id)),
            fingerprint="fp1_unit",
            bin=pan[:8],
            last4=pan[-4:],
            exp_month=12,
            exp_year=2031,
            brand=brand,
        ),
        three_d_secure=three_d_secure,
        return_url=return_url,
    )


STEP_UP = {"decision": FraudDecision.REVIEW, "reasons": ("rule:x", "action:3ds")}


# --- deciding ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "profile", "cause"),
    [
        ({}, CardProfile.ORDINARY, None),
        ({}, CardProfile.CHALLENGE, None),  # enrolled is not required: as today
        ({"three_d_secure": ThreeDSRequest.REQUIRED}, CardProfile.ORDINARY, "requested"),
        (STEP_UP, CardProfile.ORDINARY, "fraud_step_up"),
        ({}, CardProfile.ISSUER_REQUIRED, "issuer"),
        (
            {"three_d_secure": ThreeDSRequest.REQUIRED, **STEP_UP},
            CardProfile.ORDINARY,
            "fraud_step_up",
        ),
    ],
)
def test_authentication_is_needed_when_asked_stepped_up_or_insisted_on(
    kwargs: dict[str, object], profile: CardProfile, cause: str | None
) -> None:
    got = authentication_cause(scored(ORDINARY, **kwargs), profile)  # type: ignore[arg-type]
    assert got == (None if cause is None else AuthenticationCause(cause))


def test_a_review_without_the_3ds_action_stays_a_manual_review() -> None:
    assert is_manual_review(scored(ORDINARY, decision=FraudDecision.REVIEW, reasons=("band",)))
    assert not is_manual_review(scored(ORDINARY, **STEP_UP))  # type: ignore[arg-type]
    assert not is_manual_review(scored(ORDINARY))


def test_test_cards_have_their_ranges_profile_and_ordinary_seed_cards_are_ordinary() -> None:
    assert card_profile(FRICTIONLESS) is CardProfile.FRICTIONLESS
    assert card_profile(CHALLENGE) is CardProfile.CHALLENGE
    assert card_profile(CHALLENGE_FAILS) is CardProfile.CHALLENGE_FAILS
    assert card_profile(NOT_ENROLLED) is CardProfile.NOT_ENROLLED
    assert card_profile(UNAVAILABLE) is CardProfile.UNAVAILABLE
    assert card_profile(ISSUER_REQUIRED) is CardProfile.ISSUER_REQUIRED
    fresh = "40000032" + "1234567"
    assert card_profile(fresh + luhn_check_digit(fresh)) is CardProfile.CHALLENGE
    for card in SIMULATOR_CARDS:
        assert luhn_check_digit(card.pan[:-1]) == card.pan[-1], card.pan
        if not card.note.startswith("3DS"):
            assert card_profile(card.pan) is CardProfile.ORDINARY, card.pan


@pytest.mark.parametrize(
    ("profile", "mandated", "answer"),
    [
        (CardProfile.ORDINARY, False, AcsAnswer.FRICTIONLESS),
        (CardProfile.ORDINARY, True, AcsAnswer.CHALLENGE),
        (CardProfile.FRICTIONLESS, True, AcsAnswer.FRICTIONLESS),
        (CardProfile.CHALLENGE, False, AcsAnswer.CHALLENGE),
        (CardProfile.CHALLENGE_FAILS, False, AcsAnswer.CHALLENGE),
        (CardProfile.NOT_ENROLLED, True, AcsAnswer.ATTEMPTED),
        (CardProfile.UNAVAILABLE, False, AcsAnswer.UNAVAILABLE),
        (CardProfile.ISSUER_REQUIRED, False, AcsAnswer.CHALLENGE),
    ],
)
def test_the_acs_answers_by_profile_and_challenge_indicator(
    profile: CardProfile, mandated: bool, answer: AcsAnswer
) -> None:
    assert acs_answer(profile, mandated) is answer


def test_eci_by_scheme_and_status() -> None:
    assert [eci("visa", s) for s in AuthenticationStatus] == ["05", "06", "07", "07", "07"]
    assert eci("mastercard", AuthenticationStatus.AUTHENTICATED) == "02"
    assert eci("mastercard", AuthenticationStatus.ATTEMPTED) == "01"
    assert eci("mastercard", AuthenticationStatus.FAILED) == "00"
    assert eci("troy", AuthenticationStatus.AUTHENTICATED) == "05"


def test_results_carry_a_random_cavv_and_shift_liability_only_when_authenticated_or_attempted() -> (
    None
):
    ds = uuid.uuid4()
    ok = authentication_result("visa", AuthenticationStatus.AUTHENTICATED, "challenge", ds)
    again = authentication_result("visa", AuthenticationStatus.AUTHENTICATED, "challenge", ds)
    assert (
        ok.authentication_value is not None
        and ok.authentication_value != again.authentication_value
    )
    assert len(base64.b64decode(ok.authentication_value)) == 20
    assert (ok.eci, ok.liability_shift, ok.ds_transaction_id) == ("05", True, ds)
    attempted = authentication_result("visa", AuthenticationStatus.ATTEMPTED, None, ds)
    assert (attempted.eci, attempted.liability_shift) == ("06", True)
    for status in (AuthenticationStatus.FAILED, AuthenticationStatus.UNAVAILABLE):
        failed = authentication_result("visa", status, None, ds)
        assert (failed.liability_shift, failed.authentication_value) == (False, None)


def test_the_one_time_code_is_derived_and_only_matched_by_hash() -> None:
    code = challenge_code(b"key", "ch_1")
    assert len(code) == 6 and code.isdigit()
    assert len({challenge_code(b"key", f"ch_{n}") for n in range(20)}) > 15  # per challenge
    stored = hash_code(b"key", "ch_1", code)
    assert code not in stored
    assert code_matches(b"key", "ch_1", f" {code} ", stored)
    assert not code_matches(b"key", "ch_1", "000000" if code != "000000" else "1", stored)
    assert not code_matches(b"other", "ch_1", code, stored)


def test_judging_codes_limits_attempts_and_the_failing_card_always_fails() -> None:
    assert judge_code(CardProfile.CHALLENGE, True, 0, 3).outcome is ChallengeOutcome.AUTHENTICATED
    first = judge_code(CardProfile.CHALLENGE, False, 0, 3)
    assert (first.outcome, first.attempts_left) == (ChallengeOutcome.RETRY, 2)
    assert judge_code(CardProfile.CHALLENGE, False, 1, 3).attempts_left == 1
    assert judge_code(CardProfile.CHALLENGE, False, 2, 3).outcome is ChallengeOutcome.FAILED
    assert judge_code(CardProfile.CHALLENGE_FAILS, True, 0, 3).outcome is ChallengeOutcome.FAILED


async def test_an_acs_that_does_not_answer_is_given_up_on_after_the_timeout() -> None:
    started = time.monotonic()
    profile, answer = await ACS.authenticate(UNAVAILABLE, challenge_mandated=False)
    assert (profile, answer) == (CardProfile.UNAVAILABLE, AcsAnswer.UNAVAILABLE)
    assert 0.04 <= time.monotonic() - started < 1.0
    assert ACS.challenge_url("ch_x") == "https://acs.test/acs/challenges/ch_x"


# --- the handlers -----------------------------------------------------------------------


@dataclasses.dataclass
class ThreeDS:
    repositories: FakeRepositories = dataclasses.field(default_factory=FakeRepositories)
    issuer: FakeIssuer = dataclasses.field(default_factory=FakeIssuer)
    now: object = NOW

    @property
    def handlers(self) -> AuthorizationHandlers:
        return AuthorizationHandlers(
            self.issuer,  # type: ignore[arg-type]
            self.repositories,  # type: ignore[arg-type]
            PAN_RING,
            CVC_RING,
            clock=lambda: self.now,  # type: ignore[arg-type,return-value]
            acs=ACS,
        )

    async def score(self, payment: PaymentScored) -> RecordingUnitOfWork:
        from sanalpos_common.testing import deliver

        return await deliver(self.handlers.table(), payment, producer="authorization")

    def challenge_id(self) -> str:
        (challenge_id,) = self.repositories.challenges_store.challenges
        return challenge_id


async def test_an_ordinary_payment_is_authorized_without_authentication() -> None:
    service = ThreeDS()
    uow = await service.score(scored(CHALLENGE))
    authorized = uow.events[0]
    assert isinstance(authorized, PaymentAuthorized) and authorized.authentication is None


async def test_a_required_frictionless_payment_is_authorized_with_its_authentication() -> None:
    service = ThreeDS()
    uow = await service.score(scored(FRICTIONLESS, three_d_secure=ThreeDSRequest.REQUIRED))
    authorized, captured = uow.events
    assert isinstance(authorized, PaymentAuthorized) and isinstance(captured, PaymentCaptured)
    assert authorized.authentication is not None
    assert authorized.authentication.status is AuthenticationStatus.AUTHENTICATED
    assert (authorized.authentication.flow, authorized.authentication.eci) == ("frictionless", "05")
    record = service.repositories.authorizations_store.records[authorized.payment_id]
    assert record.authentication == authorized.authentication


async def test_not_enrolled_is_attempted_and_authorized_with_eci_06() -> None:
    uow = await ThreeDS().score(scored(NOT_ENROLLED, three_d_secure=ThreeDSRequest.REQUIRED))
    authorized = uow.events[0]
    assert isinstance(authorized, PaymentAuthorized) and authorized.authentication is not None
    assert authorized.authentication.status is AuthenticationStatus.ATTEMPTED
    assert (authorized.authentication.eci, authorized.authentication.liability_shift) == (
        "06",
        True,
    )


async def test_an_unavailable_acs_declines_a_payment_that_needed_authentication() -> None:
    service = ThreeDS()
    uow = await service.score(scored(UNAVAILABLE, three_d_secure=ThreeDSRequest.REQUIRED))
    (declined,) = uow.events
    assert isinstance(declined, PaymentDeclined)
    assert (declined.declined_by, declined.reason, declined.response_code) == (
        "authentication",
        UNAVAILABLE_REASON,
        "N8",
    )
    assert declined.authentication is not None
    assert declined.authentication.status is AuthenticationStatus.UNAVAILABLE
    assert service.issuer.requests == []  # the issuer is never asked


async def test_fraud_step_up_is_a_challenge_not_a_manual_review() -> None:
    service = ThreeDS()
    payment = scored(ORDINARY, **STEP_UP)  # type: ignore[arg-type]
    uow = await service.score(payment)
    (asked,) = uow.events
    assert isinstance(asked, PaymentActionRequired)
    assert asked.action is ActionRequired.THREE_DS
    challenge_id = service.challenge_id()
    assert asked.next_action_url == f"https://acs.test/acs/challenges/{challenge_id}"
    assert asked.expires_at == NOW + timedelta(minutes=5)
    assert service.repositories.reviews_store.held == {}
    assert service.issuer.requests == []
    challenge = service.repositories.challenges_store.challenges[challenge_id]
    assert challenge.cause is AuthenticationCause.FRAUD_STEP_UP
    assert challenge.code_hash == hash_code(
        ACS.key, challenge_id, challenge_code(ACS.key, challenge_id)
    )
    assert (await service.score(payment)).events == []  # a second score changes nothing
    assert len(service.repositories.challenges_store.challenges) == 1


async def test_the_issuer_insisting_challenges_even_an_automatic_payment() -> None:
    service = ThreeDS()
    uow = await service.score(scored(ISSUER_REQUIRED))
    asked = uow.events[0]
    assert isinstance(asked, PaymentActionRequired) and asked.action is ActionRequired.THREE_DS


async def answer(service: ThreeDS, code: str) -> RecordingUnitOfWork:
    uow = RecordingUnitOfWork("authorization")
    await service.handlers.answer_challenge(uow, service.challenge_id(), code)
    return uow


async def test_the_right_code_authorizes_once_with_a_challenge_authentication() -> None:
    service = ThreeDS()
    await service.score(scored(CHALLENGE, three_d_secure=ThreeDSRequest.REQUIRED))
    code = challenge_code(ACS.key, service.challenge_id())
    uow = await answer(service, code)
    authorized, _ = uow.events
    assert isinstance(authorized, PaymentAuthorized) and authorized.authentication is not None
    assert authorized.authentication.flow == "challenge"
    assert (authorized.authentication.eci, authorized.authentication.liability_shift) == (
        "05",
        True,
    )
    assert (await answer(service, code)).events == []  # a double post: nothing more
    assert len(service.issuer.requests) == 1


async def test_wrong_codes_retry_then_decline_by_authentication() -> None:
    service = ThreeDS()
    await service.score(scored(CHALLENGE, three_d_secure=ThreeDSRequest.REQUIRED))
    right = challenge_code(ACS.key, service.challenge_id())
    wrong = "111111" if right != "111111" else "222222"
    assert (await answer(service, wrong)).events == []
    assert (await answer(service, wrong)).events == []
    (declined,) = (await answer(service, wrong)).events
    assert isinstance(declined, PaymentDeclined)
    assert (declined.declined_by, declined.reason) == ("authentication", FAILED_REASON)
    assert declined.authentication is not None
    assert declined.authentication.status is AuthenticationStatus.FAILED
    assert (await answer(service, right)).events == []  # too late


async def test_cancel_and_expiry_end_in_abandoned_declines() -> None:
    service = ThreeDS()
    await service.score(scored(CHALLENGE, three_d_secure=ThreeDSRequest.REQUIRED))
    uow = RecordingUnitOfWork("authorization")
    await service.handlers.abandon_challenge(uow, service.challenge_id())
    (declined,) = uow.events
    assert isinstance(declined, PaymentDeclined) and declined.reason == CANCELLED_REASON
    assert declined.authentication is not None
    assert declined.authentication.status is AuthenticationStatus.ABANDONED

    later = ThreeDS()
    await later.score(scored(CHALLENGE, three_d_secure=ThreeDSRequest.REQUIRED))
    later.now = NOW + timedelta(minutes=6)
    code = challenge_code(ACS.key, later.challenge_id())
    (expired,) = (await answer(later, code)).events  # past its limit: even the right code
    assert isinstance(expired, PaymentDeclined) and expired.reason == EXPIRED_REASON


def test_the_acs_url_defaults_to_this_service_in_development_only() -> None:
    from authorization.config import AuthorizationSettings

    assert AuthorizationSettings(http_port=18123).acs_public_url == "http://127.0.0.1:18123"
    given = AuthorizationSettings(acs_public_url="https://acs.shop.example")
    assert given.acs_public_url == "https://acs.shop.example"
    with pytest.raises(ValueError, match="http"):
        AuthorizationSettings(acs_public_url="javascript:alert(1)")
