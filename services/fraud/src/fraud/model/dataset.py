"""Read the labeled Sparkov-style CSV into payment records, in event-time order.

The data file is never part of the repository: callers pass its path (the tests read it from
`SANALPOS_FRAUD_DATA`, default `<repo>/../shared/data/fraud/sparkov_dev.csv`).
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np

from fraud.model.features import PaymentRecord, feature_matrix

DATA_ENV = "SANALPOS_FRAUD_DATA"
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def default_data_path() -> Path:
    """`$SANALPOS_FRAUD_DATA`, else `<repo>/../shared/data/fraud/sparkov_dev.csv`."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[5]
    return repo.parent / "shared" / "data" / "fraud" / "sparkov_dev.csv"


@dataclass(frozen=True)
class Labeled:
    """Rows in event-time order: the card key, the record and the label of each."""

    cards: list[str]
    records: list[PaymentRecord]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.records)

    def features(self) -> np.ndarray:
        return feature_matrix(zip(self.cards, self.records, strict=True))

    @property
    def last_local_time(self) -> datetime:
        return max(r.local_time for r in self.records)

    def head(self, n: int) -> Labeled:
        return Labeled(self.cards[:n], self.records[:n], self.labels[:n])


def _float(text: str | None) -> float | None:
    if text is None or not text.strip():
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def _date(text: str | None) -> date | None:
    if text is None or not text.strip():
        return None
    return date.fromisoformat(text.strip())


def parse_row(row: dict[str, str]) -> tuple[str, PaymentRecord, int]:
    local = datetime.strptime(row["trans_date_trans_time"], _TIME_FORMAT)
    unix = _float(row.get("unix_time"))
    record = PaymentRecord(
        amount=float(row["amt"]),
        event_time=unix if unix is not None else local.timestamp(),
        local_time=local,
        category=row.get("category") or None,
        birth_date=_date(row.get("dob")),
        home_lat=_float(row.get("lat")),
        home_lon=_float(row.get("long")),
        merchant_lat=_float(row.get("merch_lat")),
        merchant_lon=_float(row.get("merch_long")),
    )
    return row["cc_num"], record, int(row["is_fraud"])


def read_csv(path: str | os.PathLike[str], limit: int | None = None) -> Labeled:
    """The first `limit` rows (file order) sorted by event time (stable, ties by file order)."""
    parsed: list[tuple[str, PaymentRecord, int]] = []
    with open(path, newline="", encoding="utf-8") as f:
        for i, row in enumerate(csv.DictReader(f)):
            if limit is not None and i >= limit:
                break
            parsed.append(parse_row(row))
    order = sorted(range(len(parsed)), key=lambda i: (parsed[i][1].event_time, i))
    return Labeled(
        cards=[parsed[i][0] for i in order],
        records=[parsed[i][1] for i in order],
        labels=np.array([parsed[i][2] for i in order], dtype=np.int8),
    )
