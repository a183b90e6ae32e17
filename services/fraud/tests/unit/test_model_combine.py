"""Model probability -> score points and reason codes."""

from __future__ import annotations

import math

import pytest

from fraud.domain.scoring import BASE_SCORE, MAX_SCORE, ScoringRules, decide
from fraud.model.combine import KNOTS, model_points, model_reasons
from sanalpos_common.schemas.events import FraudDecision


@pytest.mark.parametrize(
    ("p", "points"),
    [(0.0, 0), (0.01, 10), (0.02, 20), (0.06, 40), (0.10, 60), (0.40, 70), (0.70, 82), (1.0, 94)],
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
    assert decide(BASE_SCORE + model_points(0.09), rules) is FraudDecision.APPROVE
    assert decide(BASE_SCORE + model_points(0.10), rules) is FraudDecision.REVIEW
    assert decide(BASE_SCORE + model_points(0.39), rules) is FraudDecision.REVIEW
    assert decide(BASE_SCORE + model_points(0.40), rules) is FraudDecision.DECLINE


def test_reasons() -> None:
    assert model_reasons(0.01) == ()
    assert model_reasons(math.nan) == ()
    assert model_reasons(0.4321, [("amount", 2.1), ("hour", 0.7)]) == (
        "model:0.43",
        "model_feature:amount",
        "model_feature:hour",
    )
