"""In-process inference from a verified artifact (numpy + lightgbm only; no pickle).

    model = FraudModel.load(path)            # format, version, sha256 and features checked
    x = extract(record, card_state)          # fraud.model.features
    p = model.score(x)                       # fraud probability in [0, 1]
    model.top_features(x, k=3)               # [(feature, log-odds contribution), ...]

Deterministic for a fixed artifact: prediction is a pure tree walk, run on one thread.
"""

from __future__ import annotations

import os
from pathlib import Path

import lightgbm as lgb
import numpy as np

from fraud.model.artifact import Artifact, ArtifactError, load_artifact
from fraud.model.features import CATEGORIES, FEATURE_NAMES


class FraudModel:
    def __init__(self, artifact: Artifact) -> None:
        if artifact.feature_names != FEATURE_NAMES:
            raise ArtifactError(
                f"artifact features {artifact.feature_names} do not match this code's "
                f"{FEATURE_NAMES}: retrain"
            )
        if artifact.categories != CATEGORIES:
            raise ArtifactError("artifact category list does not match this code's: retrain")
        self.artifact = artifact
        self._booster = lgb.Booster(model_str=artifact.model_text)
        if tuple(self._booster.feature_name()) != FEATURE_NAMES:
            raise ArtifactError("model text features do not match the envelope")

    @classmethod
    def load(cls, path: str | os.PathLike[str] | Path) -> FraudModel:
        return cls(load_artifact(path))

    @property
    def version(self) -> str:
        return self.artifact.model_version

    @staticmethod
    def _matrix(features: np.ndarray) -> np.ndarray:
        x = np.asarray(features, dtype=np.float64)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        if x.ndim != 2 or x.shape[1] != len(FEATURE_NAMES):
            raise ValueError(f"expected (n, {len(FEATURE_NAMES)}) features, got {x.shape}")
        return x

    def score(self, features: np.ndarray) -> float:
        """Fraud probability of one feature vector."""
        x = self._matrix(features)
        if x.shape[0] != 1:
            raise ValueError("score() takes one row; use score_many()")
        return float(np.asarray(self._booster.predict(x, num_threads=1))[0])

    def score_many(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(
            self._booster.predict(self._matrix(features), num_threads=1), dtype=np.float64
        )

    def contributions(self, features: np.ndarray) -> dict[str, float]:
        """SHAP-style log-odds contribution of every feature (plus `bias`) for one row."""
        x = self._matrix(features)
        raw = np.asarray(self._booster.predict(x[:1], pred_contrib=True, num_threads=1))[0]
        out = {name: float(v) for name, v in zip(FEATURE_NAMES, raw[:-1], strict=True)}
        out["bias"] = float(raw[-1])
        return out

    def top_features(self, features: np.ndarray, k: int = 3) -> list[tuple[str, float]]:
        """The k features that push this row's score up the most (largest positive
        log-odds contribution first; ties by feature order). Empty if none pushes up."""
        contrib = self.contributions(features)
        contrib.pop("bias")
        ranked = sorted(
            ((name, v) for name, v in contrib.items() if v > 0),
            key=lambda item: (-item[1], FEATURE_NAMES.index(item[0])),
        )
        return ranked[:k]
