"""Simulated EMV 3-D Secure 2: when a payment must be authenticated, and what the directory
server and the issuer's ACS answer for a card. Pure: no I/O (the ACS that does not answer is
the adapter's part, `adapters/acs_simulator.py`).

docs/3d-secure.md lists the test cards and the results below.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

from sanalpos_common.schemas.events import (
    AuthenticationStatus,
    FraudDecision,
    PaymentScored,
    ThreeDSAuthentication,
    ThreeDSRequest,
)

FRAUD_STEP_UP_REASON = "action:3ds"


class AuthenticationCause(StrEnum):
    """Why a payment is authenticated; None of them means the flow of a payment without 3DS."""

    REQUESTED = "requested"
    """The merchant asked (`three_d_secure: required`, or its "always 3-D Secure" setting)."""
    FRAUD_STEP_UP = "fraud_step_up"
    """Fraud's `3ds` rule action (decision review with reason "action:3ds")."""
    ISSUER = "issuer"
    """The card's issuer authenticates every payment of the card."""


class CardProfile(StrEnum):
    """How the simulated directory server and ACS treat a card (its 3DS test range)."""

    ORDINARY = "ordinary"
    """Enrolled; frictionless unless a challenge is mandated (fraud's step-up)."""
    FRICTIONLESS = "frictionless"
    """Enrolled; the ACS authenticates without a challenge, even when one is mandated."""
    CHALLENGE = "challenge"
    """Enrolled; always a challenge, passed with the one-time code."""
    CHALLENGE_FAILS = "challenge_fails"
    """Enrolled; always a challenge, which fails whatever code is typed (the issuer refuses)."""
    NOT_ENROLLED = "not_enrolled"
    """Not enrolled: the attempts server answers (status attempted)."""
    UNAVAILABLE = "unavailable"
    """The ACS does not answer within the bounded timeout (status unavailable)."""
    ISSUER_REQUIRED = "issuer_required"
    """The issuer insists on 3-D Secure for every payment, and challenges."""


# Any Luhn-valid number with one of these 8-digit prefixes has that profile (as the issuer
# simulator's TEST_RANGES), so tests can use fresh numbers.
THREE_DS_RANGES: dict[str, CardProfile] = {
    "40000031": CardProfile.FRICTIONLESS,
    "40000032": CardProfile.CHALLENGE,
    "40000033": CardProfile.CHALLENGE_FAILS,
    "40000034": CardProfile.NOT_ENROLLED,
    "40000035": CardProfile.UNAVAILABLE,
    "40000036": CardProfile.ISSUER_REQUIRED,
    "52000031": CardProfile.FRICTIONLESS,
    "52000032": CardProfile.CHALLENGE,
}


def card_profile(pan: str) -> CardProfile:
    return THREE_DS_RANGES.get(pan[:8], CardProfile.ORDINARY)


def fraud_stepped_up(scored: PaymentScored) -> bool:
    return scored.decision is FraudDecision.REVIEW and FRAUD_STEP_UP_REASON in scored.reasons


def is_manual_review(scored: PaymentScored) -> bool:
    """Fraud's review without its 3DS step-up: held for a reviewer, as before 3-D Secure."""
    return scored.decision is FraudDecision.REVIEW and not fraud_stepped_up(scored)


def authentication_cause(scored: PaymentScored, profile: CardProfile) -> AuthenticationCause | None:
    """Whether this payment must pass 3-D Secure before the issuer is asked, and why.

    None: the flow is exactly that of a payment without 3-D Secure. Call it only for a
    payment fraud approved or stepped up (a decline or a manual review never reaches it).
    """
    if fraud_stepped_up(scored):
        return AuthenticationCause.FRAUD_STEP_UP
    if scored.three_d_secure is ThreeDSRequest.REQUIRED:
        return AuthenticationCause.REQUESTED
    if profile is CardProfile.ISSUER_REQUIRED:
        return AuthenticationCause.ISSUER
    return None


class AcsAnswer(StrEnum):
    """The ACS's first answer (EMV 3DS ARes transStatus)."""

    FRICTIONLESS = "frictionless"  # Y
    CHALLENGE = "challenge"  # C
    ATTEMPTED = "attempted"  # A
    UNAVAILABLE = "unavailable"  # U


def acs_answer(profile: CardProfile, challenge_mandated: bool) -> AcsAnswer:
    """What the ACS answers the authentication request; `challenge_mandated` is the 3DS
    requestor's challenge indicator 04 (our fraud step-up asks for it)."""
    if profile is CardProfile.UNAVAILABLE:
        return AcsAnswer.UNAVAILABLE
    if profile is CardProfile.NOT_ENROLLED:
        return AcsAnswer.ATTEMPTED
    if profile is CardProfile.FRICTIONLESS:
        return AcsAnswer.FRICTIONLESS
    if profile in (CardProfile.CHALLENGE, CardProfile.CHALLENGE_FAILS):
        return AcsAnswer.CHALLENGE
    if profile is CardProfile.ISSUER_REQUIRED or challenge_mandated:
        return AcsAnswer.CHALLENGE
    return AcsAnswer.FRICTIONLESS


# ECI by scheme: (authenticated, attempted, not authenticated). Visa and the others that
# follow it use 05/06/07, Mastercard 02/01/00.
_ECI = {"mastercard": ("02", "01", "00")}
_ECI_DEFAULT = ("05", "06", "07")


def eci(brand: str, status: AuthenticationStatus) -> str:
    authenticated, attempted, failed = _ECI.get(brand.lower(), _ECI_DEFAULT)
    if status is AuthenticationStatus.AUTHENTICATED:
        return authenticated
    if status is AuthenticationStatus.ATTEMPTED:
        return attempted
    return failed


def new_authentication_value() -> str:
    """A CAVV-like value: 20 random bytes, base64 (28 characters). Proof, not a secret."""
    return base64.b64encode(secrets.token_bytes(20)).decode()


def authentication_result(
    brand: str,
    status: AuthenticationStatus,
    flow: str | None,
    ds_transaction_id: object,
) -> ThreeDSAuthentication:
    """The recorded result. Liability shifts to the issuer when the cardholder was
    authenticated, and also on an attempt (not enrolled: the attempts server vouches, as
    the schemes' rules give it); never on failed, unavailable or abandoned."""
    succeeded = status in (AuthenticationStatus.AUTHENTICATED, AuthenticationStatus.ATTEMPTED)
    return ThreeDSAuthentication.model_validate(
        {
            "status": status,
            "flow": flow,
            "eci": eci(brand, status),
            "authentication_value": new_authentication_value() if succeeded else None,
            "liability_shift": succeeded,
            "ds_transaction_id": ds_transaction_id,
        }
    )


def proceeds_to_issuer(authentication: ThreeDSAuthentication) -> bool:
    """A payment that needed 3-D Secure goes on to the issuer only when authenticated or
    attempted; failed, unavailable (no ACS answer) and abandoned ones are declined."""
    return authentication.status in (
        AuthenticationStatus.AUTHENTICATED,
        AuthenticationStatus.ATTEMPTED,
    )


# --- the challenge -------------------------------------------------------------------------

CODE_DIGITS = 6


def challenge_code(key: bytes, challenge_id: str) -> str:
    """The challenge's one-time code, derived from the key so that the development page can
    show it (a real ACS would text it); only its hash is stored."""
    digest = hmac.new(key, b"otp:" + challenge_id.encode(), hashlib.sha256).digest()
    return f"{int.from_bytes(digest[:8], 'big') % 10**CODE_DIGITS:0{CODE_DIGITS}d}"


def hash_code(key: bytes, challenge_id: str, code: str) -> str:
    return hmac.new(key, f"code:{challenge_id}:{code}".encode(), hashlib.sha256).hexdigest()


def code_matches(key: bytes, challenge_id: str, code: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_code(key, challenge_id, code.strip()), stored_hash)


class ChallengeOutcome(StrEnum):
    AUTHENTICATED = "authenticated"
    RETRY = "retry"
    """Wrong code, attempts left."""
    FAILED = "failed"
    """Wrong code and no attempts left, or the issuer refused the cardholder."""


@dataclass(frozen=True)
class ChallengeAnswer:
    outcome: ChallengeOutcome
    attempts_left: int


def judge_code(
    profile: CardProfile, code_is_right: bool, attempts_before: int, max_attempts: int
) -> ChallengeAnswer:
    """One answer to a pending challenge."""
    attempts = attempts_before + 1
    left = max(max_attempts - attempts, 0)
    if code_is_right and profile is not CardProfile.CHALLENGE_FAILS:
        return ChallengeAnswer(ChallengeOutcome.AUTHENTICATED, left)
    if profile is CardProfile.CHALLENGE_FAILS and code_is_right:
        return ChallengeAnswer(ChallengeOutcome.FAILED, left)
    if left == 0:
        return ChallengeAnswer(ChallengeOutcome.FAILED, 0)
    return ChallengeAnswer(ChallengeOutcome.RETRY, left)
