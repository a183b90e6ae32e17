"""In-process inference from a verified artifact (numpy + lightgbm only; no pickle).

    scorer = ModelScorer.load(path)             # format, version, sha256, features checked
    features = engine.features(observation)     # fraud.domain.features (a name -> value map)
    result = scorer.score(features)             # ModelScore(probability, version, top_features)
    results = scorer.score_many([f1, f2, ...])  # one LightGBM call for a batch

Deterministic for a fixed artifact: prediction is a pure tree walk on one thread.
`top_features` are the largest positive per-feature log-odds contributions (LightGBM's
`pred_contrib`, TreeSHAP), for reason codes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from fraud.domain.features import CATEGORIES, FEATURE_NAMES
from fraud.model.artifact import Artifact, ArtifactError, load_artifact
from fraud.model.combine import REASON_MIN_P
from fraud.model.features import vector
from fraud.model.lightgbm_import import sklearn_hidden
from fraud.model.score import ModelScore

with sklearn_hidden():
    import lightgbm as lgb

SHIPPED_ARTIFACT = Path(__file__).resolve().parent / "artifacts" / "fraud-model.json"
"""Trained on sparkov_dev.csv (docs/fraud-model.md); FRAUD_MODEL_PATH overrides it."""
TOP_K = 3
EXPLAIN_MIN_PROBABILITY = REASON_MIN_P
"""Top features cost ~100 µs a row (TreeSHAP), so they are computed only for payments the
model finds at least this risky (below it the model leaves no reason code)."""


class ModelScorer:
    def __init__(self, artifact: Artifact) -> None:
        unknown = [n for n in artifact.feature_names if n not in FEATURE_NAMES]
        if unknown:
            raise ArtifactError(f"artifact uses features this code does not compute: {unknown}")
        if artifact.categories != CATEGORIES:
            raise ArtifactError("artifact category list does not match this code's: retrain")
        self.artifact = artifact
        self.feature_names = artifact.feature_names
        self.version = artifact.model_version
        self._booster = lgb.Booster(model_str=artifact.model_text)
        if tuple(self._booster.feature_name()) != self.feature_names:
            raise ArtifactError("model text features do not match the envelope")

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> ModelScorer:
        return cls(load_artifact(path or SHIPPED_ARTIFACT))

    def matrix(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
        if not rows:
            return np.empty((0, len(self.feature_names)), dtype=np.float64)
        return np.vstack([vector(row, self.feature_names) for row in rows])

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self._booster.predict(x, num_threads=1), dtype=np.float64)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """(n, features + 1) log-odds contributions; the last column is the bias."""
        return np.asarray(
            self._booster.predict(x, pred_contrib=True, num_threads=1), dtype=np.float64
        )

    def score(
        self,
        features: Mapping[str, float],
        explain: bool = True,
        explain_min: float = EXPLAIN_MIN_PROBABILITY,
    ) -> ModelScore:
        return self.score_many([features], explain, explain_min)[0]

    def score_many(
        self,
        rows: Sequence[Mapping[str, float]],
        explain: bool = True,
        explain_min: float = EXPLAIN_MIN_PROBABILITY,
    ) -> list[ModelScore]:
        """One LightGBM call for the batch; top features for rows with p >= explain_min."""
        if not rows:
            return []
        x = self.matrix(rows)
        probabilities = self.probabilities(x)
        tops: list[tuple[tuple[str, float], ...]] = [()] * len(rows)
        risky = np.flatnonzero(probabilities >= explain_min) if explain else np.empty(0, int)
        if len(risky):
            for i, contrib in zip(risky, self.contributions(x[risky]), strict=True):
                tops[int(i)] = self._top(contrib)
        return [
            ModelScore(float(p), self.version, top)
            for p, top in zip(probabilities, tops, strict=True)
        ]

    def _top(self, contrib: np.ndarray, k: int = TOP_K) -> tuple[tuple[str, float], ...]:
        ranked = sorted(
            (
                (name, float(value))
                for name, value in zip(self.feature_names, contrib[:-1], strict=True)
                if value > 0
            ),
            key=lambda item: (-item[1], self.feature_names.index(item[0])),
        )
        return tuple(ranked[:k])
