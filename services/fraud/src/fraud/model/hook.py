"""The model as the scorer's `ModelHook` (service_layer/scoring.py): attribute maps in,
`ModelOutput`s out, one LightGBM call per batch.

Each attribute map carries the payment's streaming features under `features` (computed by
`fraud.domain.features` in the stream, NaN stored as null); the same map is stored with the
decision, which is what `train --data history` reads back.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fraud.model.combine import model_points
from fraud.model.inference import ModelScorer

if TYPE_CHECKING:
    from fraud.service_layer.scoring import ModelOutput

FEATURES_KEY = "features"


def features_of(attributes: Mapping[str, Any]) -> dict[str, float]:
    stored = attributes.get(FEATURES_KEY) or {}
    return {k: math.nan if v is None else float(v) for k, v in stored.items()}


class ModelHook:
    def __init__(self, scorer: ModelScorer) -> None:
        self.scorer = scorer

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> ModelHook:
        return cls(ModelScorer.load(path))

    def predict(self, rows: Sequence[Mapping[str, Any]]) -> list[ModelOutput]:
        from fraud.service_layer.scoring import ModelOutput

        scores = self.scorer.score_many([features_of(row) for row in rows])
        return [
            ModelOutput(
                probability=s.probability,
                points=model_points(s.probability),
                version=s.version,
                top_features=s.top_features,
            )
            for s in scores
        ]
