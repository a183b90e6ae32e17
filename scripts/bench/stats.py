"""Percentiles and rate summaries (pure)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (the smallest value with at least pct% of values at or below it);
    NaN for no values."""
    if not values:
        return math.nan
    if not 0 <= pct <= 100:
        raise ValueError(f"percentile out of range: {pct}")
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float) -> float | None:
    """Seconds to milliseconds rounded for a report; None for NaN (JSON has no NaN)."""
    return None if math.isnan(seconds) else round(1000 * seconds, 1)


def latency_summary(seconds: Sequence[float]) -> dict[str, float | int | None]:
    return {
        "count": len(seconds),
        "p50_ms": ms(percentile(seconds, 50)),
        "p99_ms": ms(percentile(seconds, 99)),
        "max_ms": ms(max(seconds)) if seconds else None,
    }


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


def ratio(value: float, baseline: float) -> float | None:
    return round(value / baseline, 4) if baseline > 0 else None
