"""Labeled transactions for training and evaluation, in event-time order.

Reads a Sparkov-style CSV (`fraud.model.sparkov` maps each row to the payment the platform
would see) and builds feature matrices by replaying the rows through the streaming feature
code (`fraud.domain.features`), the same code the service runs live. The data file is never
part of the repository: callers pass its path (default `$SANALPOS_FRAUD_DATA`, else
`<repo>/../shared/data/fraud/sparkov_dev.csv`).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from fraud.domain.features import FEATURE_NAMES, category_code, replay
from fraud.model.sparkov import SparkovRow, parse_row

DATA_ENV = "SANALPOS_FRAUD_DATA"
BASELINE_FEATURES: tuple[str, ...] = (
    "amount",
    "hour",
    "night",
    "category",
    "age_years",
    "distance_km",
)
"""The data README's plain gradient-boosting baseline (offline only: the platform never
receives a date of birth, so `age_years` is not a live feature)."""


def repo_root() -> Path:
    return Path(__file__).resolve().parents[5]


def default_data_path() -> Path:
    """`$SANALPOS_FRAUD_DATA`, else `<repo>/../shared/data/fraud/sparkov_dev.csv`."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env)
    return repo_root().parent / "shared" / "data" / "fraud" / "sparkov_dev.csv"


def matrix(rows: Sequence[dict[str, float]], names: Sequence[str]) -> np.ndarray:
    if not rows:
        return np.empty((0, len(names)), dtype=np.float64)
    return np.array([[row[n] for n in names] for row in rows], dtype=np.float64)


@dataclass(frozen=True)
class Labeled:
    """Rows in event-time order, with their labels."""

    rows: list[SparkovRow]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def cards(self) -> list[str]:
        return [r.cc_num for r in self.rows]

    def feature_rows(self) -> list[dict[str, float]]:
        """Streaming features of every row (each sees only earlier payments; no labels)."""
        return replay(r.observation() for r in self.rows)

    def features(self, names: Sequence[str] = FEATURE_NAMES) -> np.ndarray:
        return matrix(self.feature_rows(), names)

    def baseline_features(self) -> np.ndarray:
        """The README baseline's columns (adds age from the date of birth)."""
        rows = self.feature_rows()
        for row, src in zip(rows, self.rows, strict=True):
            row["age_years"] = _age(src)
            row["category"] = category_code(src.mcc)
        return matrix(rows, BASELINE_FEATURES)

    @property
    def last_time(self) -> datetime:
        return max(r.local_time for r in self.rows)

    def head(self, n: int) -> Labeled:
        return Labeled(self.rows[:n], self.labels[:n])


def _age(row: SparkovRow) -> float:
    born, on = row.birth_date, row.local_time.date()
    if born is None or born > on:
        return math.nan
    return (on - born).days / 365.25


def read_csv(path: str | os.PathLike[str], limit: int | None = None) -> Labeled:
    """The first `limit` rows (file order), sorted by event time (ties by file order)."""
    parsed: list[SparkovRow] = []
    with open(path, newline="", encoding="utf-8") as f:
        for i, row in enumerate(csv.DictReader(f)):
            if limit is not None and i >= limit:
                break
            parsed.append(parse_row(row))
    order = sorted(range(len(parsed)), key=lambda i: (parsed[i].event_time, i))
    rows = [parsed[i] for i in order]
    return Labeled(rows=rows, labels=np.array([r.label for r in rows], dtype=np.int8))
