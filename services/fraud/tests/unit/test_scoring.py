"""The scoring rules: pure functions, every band and every reason."""

from __future__ import annotations

import pytest

from fraud.domain.scoring import (
    BASE_SCORE,
    RULES_VERSION,
    PaymentFacts,
    ScoringRules,
    Velocity,
    assess,
    decide,
    normalised_amount,
)
from sanalpos_common.schemas.events import FraudDecision

RULES = ScoringRules()
QUIET = Velocity(card_10m=1, card_1h=1)


def score(amount: int = 12_500, currency: str = "TRY", v10: int = 1, v1h: int = 1):
    return assess(PaymentFacts(amount, currency), Velocity(v10, max(v1h, v10)), RULES)


def test_an_ordinary_payment_is_approved_with_no_reasons() -> None:
    result = score()
    assert result.score == BASE_SCORE
    assert result.decision is FraudDecision.APPROVE
    assert result.reasons == ()
    assert result.rules_version == RULES_VERSION


@pytest.mark.parametrize(
    ("amount", "decision", "reasons"),
    [
        (999_999, FraudDecision.APPROVE, ()),
        (1_000_000, FraudDecision.REVIEW, ("amount_high",)),
        (4_999_999, FraudDecision.REVIEW, ("amount_high",)),
        (5_000_000, FraudDecision.DECLINE, ("amount_very_high",)),
        (201, FraudDecision.APPROVE, ()),
        (200, FraudDecision.APPROVE, ("amount_card_testing",)),
        (1, FraudDecision.APPROVE, ("amount_card_testing",)),
    ],
)
def test_amount_rules_at_their_boundaries(
    amount: int, decision: FraudDecision, reasons: tuple[str, ...]
) -> None:
    result = score(amount)
    assert result.decision is decision
    assert result.reasons == reasons


def test_amounts_are_compared_in_two_decimal_units_whatever_the_currency() -> None:
    assert normalised_amount(10_000, "JPY") == 1_000_000  # JPY has no minor unit
    assert normalised_amount(12_345, "TRY") == 12_345
    assert normalised_amount(10_000_000, "KWD") == 1_000_000  # KWD has three decimals
    assert score(10_000, "JPY").reasons == ("amount_high",)
    assert score(9_999, "JPY").reasons == ()
    assert score(10_000_000, "KWD").reasons == ("amount_high",)
    assert score(2_000, "KWD").reasons == ("amount_card_testing",)


@pytest.mark.parametrize(
    ("count", "expected_score", "decision"),
    [
        (3, BASE_SCORE, FraudDecision.APPROVE),
        (4, BASE_SCORE + 20, FraudDecision.APPROVE),
        (6, BASE_SCORE + 30, FraudDecision.APPROVE),
        (8, BASE_SCORE + 40, FraudDecision.APPROVE),
        (9, BASE_SCORE + 80, FraudDecision.DECLINE),
    ],
)
def test_short_window_velocity_raises_then_declines(
    count: int, expected_score: int, decision: FraudDecision
) -> None:
    result = assess(PaymentFacts(12_500, "TRY"), Velocity(count, count), RULES)
    assert result.score == expected_score
    assert result.decision is decision
    if count > 3:
        assert f"velocity_card_10m:{count}" in result.reasons
    else:
        assert result.reasons == ()


def test_long_window_velocity() -> None:
    assert score(v10=1, v1h=10).reasons == ()
    raised = score(v10=1, v1h=11)
    assert raised.reasons == ("velocity_card_1h:11",)
    assert raised.decision is FraudDecision.APPROVE
    declined = score(v10=1, v1h=21)
    assert declined.reasons == ("velocity_card_1h:21",)
    assert declined.decision is FraudDecision.DECLINE


def test_rules_combine_and_the_score_is_capped_at_99() -> None:
    high_and_fast = score(1_000_000, v10=4)
    assert high_and_fast.reasons == ("amount_high", "velocity_card_10m:4")
    assert high_and_fast.decision is FraudDecision.DECLINE
    everything = score(5_000_000, v10=9, v1h=21)
    assert everything.score == 99
    assert everything.reasons == (
        "amount_very_high",
        "velocity_card_10m:9",
        "velocity_card_1h:21",
    )


def test_card_testing_burst_small_amounts_in_quick_succession() -> None:
    single = score(100, v10=1)
    assert single.decision is FraudDecision.APPROVE
    burst = score(100, v10=4)
    assert burst.reasons == ("amount_card_testing", "velocity_card_10m:4", "card_testing_burst")
    assert burst.score == BASE_SCORE + 15 + 20 + 30
    assert burst.decision is FraudDecision.REVIEW
    assert score(100, v10=6).decision is FraudDecision.DECLINE


def test_decision_bands_are_configurable() -> None:
    strict = ScoringRules(review_threshold=20, decline_threshold=40)
    assert decide(19, strict) is FraudDecision.APPROVE
    assert decide(20, strict) is FraudDecision.REVIEW
    assert decide(40, strict) is FraudDecision.DECLINE
    assert assess(PaymentFacts(100, "TRY"), QUIET, strict).decision is FraudDecision.REVIEW
    assert decide(64, RULES) is FraudDecision.APPROVE
    assert decide(65, RULES) is FraudDecision.REVIEW
    assert decide(74, RULES) is FraudDecision.REVIEW
    assert decide(75, RULES) is FraudDecision.DECLINE


def test_thresholds_are_configurable() -> None:
    rules = ScoringRules(amount_high_minor=50_000, velocity_10m_raise_above=1)
    result = assess(PaymentFacts(60_000, "TRY"), Velocity(2, 2), rules)
    assert result.reasons == ("amount_high", "velocity_card_10m:2")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"review_threshold": 80, "decline_threshold": 75},
        {"review_threshold": 0},
        {"decline_threshold": 100},
        {"amount_high_minor": 100, "card_testing_max_minor": 200},
        {"velocity_10m_raise_above": 8, "velocity_10m_decline_above": 8},
        {"velocity_1h_raise_above": -1},
        {"amount_very_high_factor": 0},
    ],
)
def test_inconsistent_rules_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        ScoringRules(**kwargs)


def test_velocity_counts_include_the_payment_itself() -> None:
    with pytest.raises(ValueError):
        Velocity(card_10m=0, card_1h=1)


def test_score_stays_in_range_for_every_combination() -> None:
    for amount in (1, 200, 12_500, 1_000_000, 5_000_000, 10**12):
        for v10 in (1, 3, 4, 8, 9, 50):
            for v1h in (v10, 11, 21, 500):
                result = score(amount, v10=v10, v1h=v1h)
                assert 0 <= result.score <= 99
                assert result.decision is decide(result.score, RULES)
