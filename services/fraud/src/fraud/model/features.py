"""Feature extraction for the fraud model. Pure: no I/O, no clock, no labels.

One payment (`PaymentRecord`) plus the card's running state (`CardState`, what the service
keeps per card fingerprint) give one feature vector. Nothing here keys on a merchant name,
a card number or a person: the card key only selects *which* running state to use (the
card's own past), it is never a feature.

Streaming per-card features look only at the card's *earlier* payments, in event-time
order: `CardState` is updated with a payment after its features were computed
(`CardState.updated`), so a row never sees itself, a later row, or any label.

Missing inputs (no date of birth, no coordinates, no category, first payment of a card)
become NaN, which LightGBM treats as "missing" (its own branch at every split).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np

# Merchant categories of the labeled data set (Sparkov), in a fixed order: the categorical
# code of a category is its index here; anything else (or unknown) is OTHER_CODE.
CATEGORIES: tuple[str, ...] = (
    "entertainment",
    "food_dining",
    "gas_transport",
    "grocery_net",
    "grocery_pos",
    "health_fitness",
    "home",
    "kids_pets",
    "misc_net",
    "misc_pos",
    "personal_care",
    "shopping_net",
    "shopping_pos",
    "travel",
)
OTHER_CODE = len(CATEGORIES)
_CATEGORY_CODE = {name: code for code, name in enumerate(CATEGORIES)}

NIGHT_HOURS = frozenset({22, 23, 0, 1, 2, 3})
"""Local hours counted as night (22:00-03:59)."""

EARTH_RADIUS_KM = 6371.0088
MIN_STD = 1.0
"""Floor of the running standard deviation (major units) in the amount z-score."""

FEATURE_NAMES: tuple[str, ...] = (
    "amount",
    "log_amount",
    "hour",
    "night",
    "day_of_week",
    "category",
    "age_years",
    "distance_km",
    "card_prev_count",
    "card_secs_since_prev",
    "card_amount_z",
    "card_amount_ratio",
)
CATEGORICAL_FEATURES: tuple[str, ...] = ("category",)
BASELINE_FEATURES: tuple[str, ...] = (
    "amount",
    "hour",
    "night",
    "category",
    "age_years",
    "distance_km",
)
"""The plain baseline of the data set's README: no per-card history."""

_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}
NAN = math.nan


@dataclass(frozen=True)
class PaymentRecord:
    """What the model needs to know about one payment; everything optional is "if known"."""

    amount: float
    """Amount in major units (e.g. 12.50)."""
    event_time: float
    """Event time in seconds (epoch); only differences between a card's payments are used."""
    local_time: datetime
    """Wall-clock time at the payment's location (naive): hour, night, day of week."""
    category: str | None = None
    birth_date: date | None = None
    home_lat: float | None = None
    home_lon: float | None = None
    merchant_lat: float | None = None
    merchant_lon: float | None = None


@dataclass(frozen=True)
class CardState:
    """Running per-card history: count, Welford mean / M2 of amounts, last event time.

    Small and plain (four numbers) so the service can keep it per card fingerprint in a
    table; `as_dict` / `from_dict` are its serialised form.
    """

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    last_event_time: float | None = None

    def updated(self, record: PaymentRecord) -> CardState:
        """The state after `record` (call after its features were computed)."""
        count = self.count + 1
        delta = record.amount - self.mean
        mean = self.mean + delta / count
        m2 = self.m2 + delta * (record.amount - mean)
        last = record.event_time
        if self.last_event_time is not None:
            last = max(last, self.last_event_time)
        return CardState(count=count, mean=mean, m2=m2, last_event_time=last)

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "count": self.count,
            "mean": self.mean,
            "m2": self.m2,
            "last_event_time": self.last_event_time,
        }

    @classmethod
    def from_dict(cls, data: dict[str, float | int | None]) -> CardState:
        last = data.get("last_event_time")
        return cls(
            count=int(data.get("count") or 0),
            mean=float(data.get("mean") or 0.0),
            m2=float(data.get("m2") or 0.0),
            last_event_time=None if last is None else float(last),
        )


def category_code(category: str | None) -> int:
    if category is None:
        return OTHER_CODE
    return _CATEGORY_CODE.get(category.strip().lower(), OTHER_CODE)


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def age_years(birth_date: date | None, on: date) -> float:
    """Age in (fractional) years on `on`; NaN if unknown or born after `on`."""
    if birth_date is None or birth_date > on:
        return NAN
    return (on - birth_date).days / 365.25


def _finite(*values: float | None) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def extract(record: PaymentRecord, state: CardState | None = None) -> np.ndarray:
    """Feature vector (float64, in FEATURE_NAMES order) of `record` given the card's past."""
    state = state or CardState()
    out = np.full(len(FEATURE_NAMES), NAN, dtype=np.float64)
    amount = record.amount
    if math.isfinite(amount) and amount >= 0:
        out[_INDEX["amount"]] = amount
        out[_INDEX["log_amount"]] = math.log1p(amount)
    local = record.local_time
    out[_INDEX["hour"]] = local.hour
    out[_INDEX["night"]] = 1.0 if local.hour in NIGHT_HOURS else 0.0
    out[_INDEX["day_of_week"]] = local.weekday()
    out[_INDEX["category"]] = category_code(record.category)
    out[_INDEX["age_years"]] = age_years(record.birth_date, local.date())
    if _finite(record.home_lat, record.home_lon, record.merchant_lat, record.merchant_lon):
        out[_INDEX["distance_km"]] = haversine_km(
            record.home_lat,  # type: ignore[arg-type]
            record.home_lon,  # type: ignore[arg-type]
            record.merchant_lat,  # type: ignore[arg-type]
            record.merchant_lon,  # type: ignore[arg-type]
        )
    out[_INDEX["card_prev_count"]] = state.count
    if state.last_event_time is not None:
        out[_INDEX["card_secs_since_prev"]] = max(0.0, record.event_time - state.last_event_time)
    if state.count >= 1 and math.isfinite(amount):
        out[_INDEX["card_amount_ratio"]] = amount / max(state.mean, 0.01)
    if state.count >= 2 and math.isfinite(amount):
        std = math.sqrt(state.m2 / (state.count - 1))
        out[_INDEX["card_amount_z"]] = (amount - state.mean) / max(std, MIN_STD)
    return out


def stream_features(cards_and_records: Iterable[tuple[str, PaymentRecord]]) -> Iterator[np.ndarray]:
    """Features of payments given in event-time order, each seeing only its card's past.

    The card key is an opaque grouping key (e.g. a fingerprint); it is never a feature.
    """
    states: dict[str, CardState] = {}
    for card, record in cards_and_records:
        state = states.get(card, CardState())
        yield extract(record, state)
        states[card] = state.updated(record)


def feature_matrix(cards_and_records: Iterable[tuple[str, PaymentRecord]]) -> np.ndarray:
    rows = list(stream_features(cards_and_records))
    if not rows:
        return np.empty((0, len(FEATURE_NAMES)), dtype=np.float64)
    return np.vstack(rows)


def column_indices(names: Iterable[str]) -> list[int]:
    return [_INDEX[name] for name in names]
