"""Model probability -> score points and reason codes."""

from __future__ import annotations

import math

import pytest

from fraud.domain.scoring import BASE_SCORE, MAX_SCORE, ScoringRules, decide
from fraud.model.combine import KNOTS, model_points, model_reasons
from sanalpos_common.schemas.events import FraudDecision


@pytest.mark.parametrize(
    ("p", "points"),
    [(0.0, 0), (0.005, 10), (0.01, 20), (0.03, 40), (0.05, 60), (0.40, 70), (0.70, 82), (1.0, 94)],
)
def test_points_interpolate_the_knots(p: float, points: int) -> None:
    assert model_points(p) == points


def test_points_are_monotone_and_bounded() -> None:
    values = [model_points(i / 1000) for i in range(1001)]
    assert values == sorted(values)
    assert values[0] == 0 and values[-1] == KNOTS[-1][1] <= MAX_SCORE - BASE_SCORE
    assert model_points(math.nan) == 0 and model_points(-1.0) == 0 and model_points(2.0) == 94


def test_bands_on_their_own() -> None:
    rules = ScoringRules()
    assert decide(BASE_SCORE + model_points(0.049), rules) is FraudDecision.APPROVE
    assert decide(BASE_SCORE + model_points(0.05), rules) is FraudDecision.REVIEW
    assert decide(BASE_SCORE + model_points(0.39), rules) is FraudDecision.REVIEW
    assert decide(BASE_SCORE + model_points(0.40), rules) is FraudDecision.DECLINE


def test_reasons() -> None:
    assert model_reasons(0.009) == ()
    assert model_reasons(math.nan) == ()
    assert model_reasons(0.4321, [("amount", 2.1), ("hour", 0.7)]) == (
        "model:0.4321",
        "model_feature:amount",
        "model_feature:hour",
    )


def test_with_model_adds_points_and_reasons_and_decides_again() -> None:
    from fraud.domain.scoring import Assessment
    from fraud.model.combine import with_model
    from fraud.model.score import ModelScore

    rules = ScoringRules()
    quiet = Assessment(score=BASE_SCORE, decision=FraudDecision.APPROVE, reasons=())
    risky = ModelScore(0.5, "lgbm-x", (("amount", 1.5),))
    combined = with_model(quiet, risky, rules)
    assert combined.score == BASE_SCORE + model_points(0.5)
    assert combined.decision is FraudDecision.DECLINE
    assert combined.reasons == ("model:0.5000", "model_feature:amount")
    assert combined.rules_version == quiet.rules_version
    calm = with_model(quiet, ModelScore(0.0, "lgbm-x"), rules)
    assert calm == quiet
    loud = Assessment(score=90, decision=FraudDecision.DECLINE, reasons=("amount_high",))
    assert with_model(loud, risky, rules).score == MAX_SCORE
