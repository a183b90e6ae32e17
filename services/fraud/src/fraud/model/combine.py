"""How a model probability becomes score points and reason codes (pure; for domain/scoring).

The rules score is BASE_SCORE (5) + rule points, capped at 99; review at 65, decline at 75.
The model adds `model_points(p)`, a monotone piecewise-linear map through these knots:

    p      0     0.02   0.10   0.40   1.0
    points 0     20     60     70     94

so on its own (base 5) a payment is reviewed from p = 0.10 and declined from p = 0.40.
In the by-card cross-validation on the dev file (see README) p >= 0.10 flagged 0.74% of
payments with precision 0.47 / recall 0.67, and p >= 0.40 flagged 0.35% with precision
0.77 / recall 0.53. These knots are a starting point picked from that estimate; re-fit them
on replayed traffic (shadow mode) before the model can decline on its own.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

KNOTS: tuple[tuple[float, int], ...] = ((0.0, 0), (0.02, 20), (0.10, 60), (0.40, 70), (1.0, 94))
REASON_MIN_P = 0.02
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
    """`model:<p to 2 decimals>` plus `model_feature:<name>` for each top feature, or ()."""
    if not math.isfinite(p) or p < REASON_MIN_P:
        return ()
    return (f"model:{p:.2f}", *(f"model_feature:{name}" for name, _ in top))
