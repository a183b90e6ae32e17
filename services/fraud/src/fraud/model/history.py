"""The platform's own labeled history as training data (`train --data history`).

Every decision stores the streaming features the payment was scored with
(`fraud_decisions.attributes -> 'features'`, NaN as null); fraud reports label payments in
`fraud_labeled_history` (label 1 = fraud). A decided payment without a report counts as
legitimate (label 0) once it is older than `min_age_days` (reports arrive late: a recent
unreported payment is not yet evidence of anything). Training on these stored features is
exactly what live scoring saw, so there is no train/serve skew by construction.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from fraud.domain.features import FEATURE_NAMES, storable

features_for_storage = storable

QUERY = """
SELECT d.card_fingerprint, d.payment_created_at,
       d.attributes -> 'features' AS features,
       COALESCE(h.label, 0) AS label
FROM fraud_decisions d
LEFT JOIN fraud_labeled_history h ON h.payment_id = d.payment_id
WHERE d.attributes ? 'features'
  AND (h.label = 1 OR d.payment_created_at < $1)
ORDER BY d.payment_created_at, d.payment_id
LIMIT $2
"""


class HistoryUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class StoredHistory:
    """Labeled rows with the features stored at scoring time (same interface as Labeled)."""

    cards: list[str]
    rows: list[dict[str, float]]
    labels: np.ndarray
    times: list[datetime]

    def __len__(self) -> int:
        return len(self.rows)

    def features(self, names: Sequence[str] = FEATURE_NAMES) -> np.ndarray:
        if not self.rows:
            return np.empty((0, len(names)), dtype=np.float64)
        return np.array(
            [[row.get(n, math.nan) for n in names] for row in self.rows], dtype=np.float64
        )

    @property
    def last_time(self) -> datetime:
        return max(self.times)


def stored_features(value: Any) -> dict[str, float]:
    """The stored JSON (null for missing) back to floats with NaN."""
    data: Mapping[str, Any] = json.loads(value) if isinstance(value, str) else value
    return {k: math.nan if v is None else float(v) for k, v in data.items()}


def from_records(records: Sequence[Mapping[str, Any]]) -> StoredHistory:
    return StoredHistory(
        cards=[str(r["card_fingerprint"]) for r in records],
        rows=[stored_features(r["features"]) for r in records],
        labels=np.array([int(r["label"]) for r in records], dtype=np.int8),
        times=[r["payment_created_at"] for r in records],
    )


async def fetch(database_url: str, min_age_days: float, limit: int | None) -> StoredHistory:
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        cutoff = datetime.now().astimezone() - timedelta(days=min_age_days)
        try:
            records = await conn.fetch(QUERY, cutoff, limit)
        except asyncpg.UndefinedTableError as exc:
            raise HistoryUnavailable(f"no labeled history in this database: {exc}") from exc
    finally:
        await conn.close()
    return from_records([dict(r) for r in records])


def read_history(limit: int | None = None, min_age_days: float = 30.0) -> StoredHistory:
    from fraud.config import FraudSettings

    url = FraudSettings().database_url.get_secret_value()
    history = asyncio.run(fetch(url, min_age_days, limit))
    if not len(history) or not int(history.labels.sum()):
        raise HistoryUnavailable(
            f"{len(history)} labeled payments with stored features, "
            f"{int(history.labels.sum())} reported as fraud: not enough to train"
        )
    return history
