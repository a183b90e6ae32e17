"""Fraud scoring rules. Pure: no I/O, no clock, no Kafka, no database.

The score is 0-99 and is the sum of rule contributions on top of a small base, capped at
99. Each rule that fires leaves a short reason code, so every decision can be explained
(and audited) without re-running the rules. Decision bands: score >= decline threshold ->
decline, score >= review threshold -> review, anything lower -> approve.

Amounts are compared after normalising them to two decimal places (a JPY amount has no
minor unit, KWD has three), so one threshold roughly fits every currency; there is no FX
conversion yet, which a later rule set can add.
"""

from __future__ import annotations

from dataclasses import dataclass

from sanalpos_common.money import currency_exponent
from sanalpos_common.schemas.events import FraudDecision

RULES_VERSION = "rules-v1"

BASE_SCORE = 5
MAX_SCORE = 99

# Contributions of each rule. They are named so the tests and the docs can refer to them.
AMOUNT_HIGH = 60
AMOUNT_VERY_HIGH = 80
AMOUNT_CARD_TESTING = 15
VELOCITY_10M_RAISE = 20
VELOCITY_10M_STEP = 5
VELOCITY_10M_DECLINE = 80
VELOCITY_1H_RAISE = 15
VELOCITY_1H_DECLINE = 75
CARD_TESTING_BURST = 30


@dataclass(frozen=True)
class ScoringRules:
    """Thresholds, all configurable (see FraudSettings). Counts include the payment itself."""

    review_threshold: int = 65
    decline_threshold: int = 75
    amount_high_minor: int = 1_000_000
    """Amount (normalised to 2 decimals) at or above which `amount_high` fires: 10,000.00."""
    amount_very_high_factor: int = 5
    """`amount_very_high` fires at this many times `amount_high_minor`."""
    card_testing_max_minor: int = 200
    """Tiny amounts (<= 2.00) are typical of card testing: `amount_card_testing`."""
    velocity_10m_raise_above: int = 3
    velocity_10m_decline_above: int = 8
    velocity_1h_raise_above: int = 10
    velocity_1h_decline_above: int = 20

    def __post_init__(self) -> None:
        if not 0 < self.review_threshold <= self.decline_threshold <= MAX_SCORE:
            raise ValueError("need 0 < review_threshold <= decline_threshold <= 99")
        if self.amount_high_minor <= self.card_testing_max_minor:
            raise ValueError("amount_high_minor must be above card_testing_max_minor")
        if self.amount_very_high_factor < 1:
            raise ValueError("amount_very_high_factor must be >= 1")
        if not 0 <= self.velocity_10m_raise_above < self.velocity_10m_decline_above:
            raise ValueError("need 0 <= velocity_10m_raise_above < velocity_10m_decline_above")
        if not 0 <= self.velocity_1h_raise_above < self.velocity_1h_decline_above:
            raise ValueError("need 0 <= velocity_1h_raise_above < velocity_1h_decline_above")


@dataclass(frozen=True)
class PaymentFacts:
    amount: int
    currency: str


@dataclass(frozen=True)
class Velocity:
    """Payments seen on the same card fingerprint in the trailing windows, this one included."""

    card_10m: int
    card_1h: int

    def __post_init__(self) -> None:
        if self.card_10m < 1 or self.card_1h < 1:
            raise ValueError("velocity counts include the payment being scored: >= 1")


@dataclass(frozen=True)
class Assessment:
    score: int
    decision: FraudDecision
    reasons: tuple[str, ...]
    rules_version: str = RULES_VERSION


def normalised_amount(amount: int, currency: str) -> int:
    """Amount in minor units rescaled to two decimals (JPY 1000 -> 100000, KWD 1000 -> 100)."""
    exponent = currency_exponent(currency)
    if exponent <= 2:
        return amount * 10 ** (2 - exponent)
    return amount // 10 ** (exponent - 2)


def decide(score: int, rules: ScoringRules) -> FraudDecision:
    if score >= rules.decline_threshold:
        return FraudDecision.DECLINE
    if score >= rules.review_threshold:
        return FraudDecision.REVIEW
    return FraudDecision.APPROVE


def assess(payment: PaymentFacts, velocity: Velocity, rules: ScoringRules) -> Assessment:
    score = BASE_SCORE
    reasons: list[str] = []

    amount = normalised_amount(payment.amount, payment.currency)
    card_testing = False
    if amount >= rules.amount_high_minor * rules.amount_very_high_factor:
        score += AMOUNT_VERY_HIGH
        reasons.append("amount_very_high")
    elif amount >= rules.amount_high_minor:
        score += AMOUNT_HIGH
        reasons.append("amount_high")
    elif amount <= rules.card_testing_max_minor:
        card_testing = True
        score += AMOUNT_CARD_TESTING
        reasons.append("amount_card_testing")

    v10 = velocity.card_10m
    if v10 > rules.velocity_10m_decline_above:
        score += VELOCITY_10M_DECLINE
        reasons.append(f"velocity_card_10m:{v10}")
    elif v10 > rules.velocity_10m_raise_above:
        score += VELOCITY_10M_RAISE + VELOCITY_10M_STEP * (v10 - rules.velocity_10m_raise_above - 1)
        reasons.append(f"velocity_card_10m:{v10}")

    v1h = velocity.card_1h
    if v1h > rules.velocity_1h_decline_above:
        score += VELOCITY_1H_DECLINE
        reasons.append(f"velocity_card_1h:{v1h}")
    elif v1h > rules.velocity_1h_raise_above:
        score += VELOCITY_1H_RAISE
        reasons.append(f"velocity_card_1h:{v1h}")

    if card_testing and v10 > rules.velocity_10m_raise_above:
        score += CARD_TESTING_BURST
        reasons.append("card_testing_burst")

    score = min(score, MAX_SCORE)
    return Assessment(score=score, decision=decide(score, rules), reasons=tuple(reasons))
