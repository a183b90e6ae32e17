"""Which of the streaming features (`fraud.domain.features`) the model uses.

All features are computed for every payment (rules and explanations can use them); the
model reads the subset below, chosen by cross-validation split by card on the dev file
(docs/fraud-model.md): the per-card history and velocity features did not improve ranking
on that file (it is a sparse sample: ~16 payments per card over 18 months), the merchant
category's running amount profile did. `train --features all` trains on everything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from fraud.domain.features import CATEGORICAL_FEATURES, FEATURE_NAMES

MODEL_FEATURES: tuple[str, ...] = (
    "amount",
    "hour",
    "night",
    "category",
    "distance_km",
    "category_amount_z",
    "category_amount_ratio",
)
FEATURE_SETS: dict[str, tuple[str, ...]] = {"model": MODEL_FEATURES, "all": FEATURE_NAMES}


def categorical_among(names: Sequence[str]) -> tuple[str, ...]:
    return tuple(n for n in CATEGORICAL_FEATURES if n in names)


def vector(features: Mapping[str, float], names: Sequence[str]) -> np.ndarray:
    """One row in `names` order; a missing feature is NaN (LightGBM's "missing")."""
    return np.array([features.get(n, np.nan) for n in names], dtype=np.float64)
