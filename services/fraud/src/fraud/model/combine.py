"""How a model probability becomes score points and reason codes (pure).

The rules score is BASE_SCORE (5) + rule points, capped at 99; review at 65, decline at 75.
The model adds `model_points(p)`, a monotone piecewise-linear map through these knots:

    p      0     0.01   0.05   0.40   1.0
    points 0     20     60     70     94

so on its own (base 5) a payment is reviewed from p = 0.05 and declined from p = 0.40.
Picked from the by-card cross-validation on the dev file (out-of-fold scores of the shipped
feature set, 3 split seeds; docs/fraud-model.md): p >= 0.05 flagged 0.97% of payments with
precision 0.45 / recall 0.84 (the "1% review rate"), p >= 0.40 flagged 0.40% with precision
0.75 / recall 0.58. Re-fit them on replayed traffic (shadow mode) before relying on them.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence

from fraud.domain.scoring import MAX_SCORE, Assessment, ScoringRules, decide
from fraud.model.score import ModelScore

KNOTS: tuple[tuple[float, int], ...] = ((0.0, 0), (0.01, 20), (0.05, 60), (0.40, 70), (1.0, 94))
REASON_MIN_P = 0.01
"""Below this the model leaves no reason code (it adds no points either)."""


def model_points(p: float, knots: Sequence[tuple[float, int]] = KNOTS) -> int:
    """Points for probability p, rounded down so a band starts exactly at its knot
    (NaN or <= 0 -> 0; >= 1 -> the last knot)."""
    if not math.isfinite(p) or p <= knots[0][0]:
        return knots[0][1]
    for (p0, s0), (p1, s1) in itertools.pairwise(knots):
        if p <= p1:
            return math.floor(s0 + (s1 - s0) * (p - p0) / (p1 - p0) + 1e-9)
    return knots[-1][1]


def model_reasons(p: float, top: Sequence[tuple[str, float]] = ()) -> tuple[str, ...]:
    """`model:<p to 4 decimals>` plus `model_feature:<name>` for each top feature, or ()."""
    if not math.isfinite(p) or p < REASON_MIN_P:
        return ()
    return (f"model:{p:.4f}", *(f"model_feature:{name}" for name, _ in top))


def with_model(assessment: Assessment, model: ModelScore, rules: ScoringRules) -> Assessment:
    """The rules' assessment plus the model's points and reasons, decided again.

    Rules that fired keep their points, so an allow/block rule outcome should be applied
    after this (lists and allow/block rules override scores)."""
    score = min(MAX_SCORE, assessment.score + model_points(model.probability))
    return dataclasses.replace(
        assessment,
        score=score,
        decision=decide(score, rules),
        reasons=(*assessment.reasons, *model_reasons(model.probability, model.top_features)),
    )
