"""The model artifact: LightGBM's text model inside a small versioned JSON envelope.

No pickle anywhere. The text model is data (trees and thresholds) that
`lightgbm.Booster(model_str=...)` parses; loading never executes code from the file.
The envelope carries what must match at inference time (feature names, category list)
and the sha256 of the model text, which `load_artifact` verifies before parsing.
Serialisation is canonical (sorted keys, fixed separators), so the same training run gives
byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fraud.domain.features import CATEGORIES

FORMAT = "sanalpos-fraud-model"
FORMAT_VERSION = 2
"""2: `feature_names` is the subset of `fraud.domain.features.FEATURE_NAMES` the model reads."""


class ArtifactError(ValueError):
    """The file is not a valid, untampered sanalpos fraud model."""


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Artifact:
    model_text: str
    feature_names: tuple[str, ...]
    categorical_features: tuple[str, ...]
    trained_at: str
    """Latest event (local) time in the training data, ISO 8601: not the wall clock."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Training facts: seed, params, rows, positives, rounds."""
    categories: tuple[str, ...] = CATEGORIES
    """The category list whose indexes are the `category` codes the model was trained on."""

    @property
    def model_sha256(self) -> str:
        return sha256_text(self.model_text)

    @property
    def model_version(self) -> str:
        """Short content id, e.g. for the rules/model version recorded with a decision."""
        return f"lgbm-{self.model_sha256[:12]}"

    def to_json(self) -> str:
        envelope = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "model_version": self.model_version,
            "feature_names": list(self.feature_names),
            "categories": list(self.categories),
            "categorical_features": list(self.categorical_features),
            "trained_at": self.trained_at,
            "metadata": self.metadata,
            "model_sha256": self.model_sha256,
            "model": self.model_text,
        }
        return json.dumps(envelope, sort_keys=True, indent=1, ensure_ascii=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Artifact:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ArtifactError(f"not JSON: {e}") from e
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ArtifactError(f"not a {FORMAT} file")
        if data.get("version") != FORMAT_VERSION:
            raise ArtifactError(
                f"unsupported {FORMAT} version {data.get('version')!r} (want {FORMAT_VERSION})"
            )
        model = data.get("model")
        if not isinstance(model, str) or not model:
            raise ArtifactError("no model text")
        declared = data.get("model_sha256")
        if declared != sha256_text(model):
            raise ArtifactError("model sha256 mismatch: the model text was altered")
        try:
            artifact = cls(
                model_text=model,
                feature_names=tuple(str(n) for n in data["feature_names"]),
                categories=tuple(str(c) for c in data["categories"]),
                categorical_features=tuple(str(c) for c in data["categorical_features"]),
                trained_at=str(data["trained_at"]),
                metadata=dict(data.get("metadata") or {}),
            )
        except (KeyError, TypeError) as e:
            raise ArtifactError(f"malformed envelope: {e}") from e
        if data.get("model_version") != artifact.model_version:
            raise ArtifactError("model_version does not match the model text")
        return artifact


def write_artifact(artifact: Artifact, path: str | os.PathLike[str]) -> Path:
    """Write atomically (temp file + rename) so a reader never sees half a model."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(artifact.to_json(), encoding="utf-8")
    os.replace(tmp, target)
    return target


def load_artifact(path: str | os.PathLike[str]) -> Artifact:
    return Artifact.from_json(Path(path).read_text(encoding="utf-8"))
