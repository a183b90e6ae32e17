"""What the model says about one payment (no lightgbm import: cheap for the domain side)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelScore:
    probability: float
    version: str
    """The artifact's model_version (content hash), recorded with the decision."""
    top_features: tuple[tuple[str, float], ...] = ()
    """(feature, log-odds contribution), largest first; only features that push up."""
