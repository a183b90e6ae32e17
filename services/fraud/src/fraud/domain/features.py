"""Streaming fraud features. Pure: no I/O, no clock, no labels.

One code path serves offline training (a labeled file replayed in event-time order) and
live scoring (the faust agent): `FeatureEngine.features(obs)` reads the running state of
the keys the payment touches, `FeatureEngine.observe(obs)` folds the payment into them.
The state lives behind a tiny `StateStore` (a dict offline; a faust changelog table plus a
per-batch overlay live), and every stored value is plain JSON with integer money, so the
same payments in the same order give the same features whichever store holds them.

Keys and partitions. The card's state (`card|<fingerprint>`) lives with the card's stream
partition. State shared by many cards (customer IP, email, device id, merchant, merchant
category) is kept per partition (`ip|<value>|<partition>`) and summed over partitions when
read: integer counts and sums merge exactly, so a single worker sees the same totals as
one global counter; with several workers each sees the totals of the partitions it owns.

Time. Event time is the payment's own timestamp (`created_at`), never the wall clock, so
a replay scores like live traffic did. Windows are trailing and bucketed: the 10 min
window sums the last 10 one-minute buckets (the current one included), 1 h the last 12
five-minute buckets, 24 h the last 24 one-hour buckets, so a window covers between
size - bucket and size of history. Counts and sums are of *earlier* payments only.

Nothing here keys a feature on a merchant name, a card number or a person: keys only
select whose history to read; the features are counts, sums and ratios of that history.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

NAN = math.nan
EARTH_RADIUS_KM = 6371.0088
NIGHT_HOURS = frozenset({22, 23, 0, 1, 2, 3})
MIN_STD_MINOR = 100
"""Floor of a running standard deviation (1.00 in major units) in z-scores."""

# Merchant categories (the labeled data set's 14) and the merchant category code each maps
# to. Live payments carry an MCC; offline rows carry the category and go through the same
# MCC, so both sides derive the category code the same way. Unknown MCC -> "other".
CATEGORY_MCC: tuple[tuple[str, str], ...] = (
    ("entertainment", "7999"),
    ("food_dining", "5812"),
    ("gas_transport", "5541"),
    ("grocery_net", "5499"),
    ("grocery_pos", "5411"),
    ("health_fitness", "7997"),
    ("home", "5200"),
    ("kids_pets", "5995"),
    ("misc_net", "5969"),
    ("misc_pos", "5999"),
    ("personal_care", "7230"),
    ("shopping_net", "5964"),
    ("shopping_pos", "5311"),
    ("travel", "4722"),
)
CATEGORIES: tuple[str, ...] = tuple(name for name, _ in CATEGORY_MCC)
OTHER_CATEGORY = len(CATEGORIES)
MCC_OF_CATEGORY = dict(CATEGORY_MCC)
_CODE_OF_MCC = {mcc: code for code, (_, mcc) in enumerate(CATEGORY_MCC)}

WINDOWS: tuple[tuple[str, int, int], ...] = (
    ("10m", 600, 60),
    ("1h", 3600, 300),
    ("24h", 86400, 3600),
)
"""(name, size seconds, bucket seconds)."""
SHARED_KINDS: tuple[str, ...] = ("ip", "email", "device", "merchant")
HOUR_BLOCK = 3
"""Hours are profiled in 3-hour blocks (8 per day)."""


@dataclass(frozen=True)
class Observation:
    """What feature extraction knows about one payment; optional fields are "if known"."""

    card: str
    """Opaque card key (fingerprint): selects the card's history, never a feature."""
    amount_minor: int
    """Amount in minor units, normalised to two decimals."""
    event_time: float
    """Seconds since the epoch (the payment's created_at)."""
    local_time: datetime
    """Wall-clock time of the payment (naive): hour, night, day of week."""
    merchant: str | None = None
    mcc: str | None = None
    customer_ip: str | None = None
    email: str | None = None
    device_id: str | None = None
    billing_country: str | None = None
    ip_country: str | None = None
    bin_country: str | None = None
    billing_lat: float | None = None
    billing_lon: float | None = None
    merchant_lat: float | None = None
    merchant_lon: float | None = None

    def shared_keys(self) -> dict[str, str]:
        values = {
            "ip": self.customer_ip,
            "email": self.email.strip().lower() if self.email else None,
            "device": self.device_id,
            "merchant": self.merchant,
        }
        return {kind: value for kind, value in values.items() if value}


def category_code(mcc: str | None) -> int:
    return _CODE_OF_MCC.get(mcc or "", OTHER_CATEGORY)


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dlmb = math.radians(lon2 - lon1)
    a = math.sin((phi2 - phi1) / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def _names() -> tuple[str, ...]:
    names = ["amount", "log_amount", "hour", "night", "day_of_week", "category"]
    names += ["distance_km", "country_mismatch_bin", "country_mismatch_ip"]
    names += ["card_prev_count", "card_secs_since_prev", "card_amount_z", "card_amount_ratio"]
    names += ["card_category_share", "card_hour_share"]
    for kind in ("card", *SHARED_KINDS):
        names += [f"{kind}_count_{w}" for w, _, _ in WINDOWS]
        names.append(f"{kind}_sum_24h")
    names += ["category_amount_z", "category_amount_ratio"]
    return tuple(names)


FEATURE_NAMES: tuple[str, ...] = _names()
CATEGORICAL_FEATURES: tuple[str, ...] = ("category",)


# ----------------------------------------------------------------------- state values
# Every state value is a JSON-friendly dict of ints/floats/lists (a faust table stores it
# as JSON): windows are {"10m": [[bucket, count, sum_minor], ...], ...}; profiles are
# {"n": count, "s": sum_minor, "q": sum of squares (minor^2, exponent-form string)}.


def _empty_windows() -> dict[str, list[list[int]]]:
    return {name: [] for name, _, _ in WINDOWS}


def _add_to_windows(windows: dict[str, Any], t: float, amount: int) -> dict[str, Any]:
    out = {}
    for name, size, bucket in WINDOWS:
        current = int(t // bucket)
        keep = size // bucket
        buckets = {int(b): [int(c), int(s)] for b, c, s in windows.get(name, [])}
        slot = buckets.setdefault(current, [0, 0])
        slot[0] += 1
        slot[1] += amount
        newest = max(buckets)
        out[name] = [[b, c, s] for b, (c, s) in sorted(buckets.items()) if b > newest - keep]
    return out


def _window_totals(windows: Mapping[str, Any], t: float) -> dict[str, tuple[int, int]]:
    """(count, sum) per window over the buckets ending with the one containing t."""
    totals = {}
    for name, size, bucket in WINDOWS:
        current = int(t // bucket)
        first = current - size // bucket + 1
        count = total = 0
        for b, c, s in windows.get(name, []):
            if first <= b <= current:
                count += c
                total += s
        totals[name] = (count, total)
    return totals


def _add_to_profile(profile: Mapping[str, Any] | None, amount: int) -> dict[str, Any]:
    # The sum of squares is stored as an exponent-form string ("8.5000200000000000e+15"):
    # printed as a plain integer it runs to 16+ digits, some of them Luhn-valid, which reads
    # like a card number in the changelog. The variance is computed in floating point anyway.
    p = profile or {}
    return {
        "n": int(p.get("n", 0)) + 1,
        "s": int(p.get("s", 0)) + amount,
        "q": f"{float(p.get('q', 0)) + float(amount) * amount:.16e}",
    }


def _merge_profiles(profiles: Iterable[Mapping[str, Any] | None]) -> dict[str, float]:
    out: dict[str, float] = {"n": 0, "s": 0, "q": 0.0}
    for p in profiles:
        if p:
            out["n"] += int(p.get("n", 0))
            out["s"] += int(p.get("s", 0))
            out["q"] += float(p.get("q", 0))
    return out


def _merge_windows(states: Iterable[Mapping[str, Any] | None]) -> dict[str, list[list[int]]]:
    merged = _empty_windows()
    for state in states:
        if state:
            for name, _, _ in WINDOWS:
                merged[name].extend(state.get("w", {}).get(name, []))
    return merged


def _mean_std(profile: Mapping[str, float]) -> tuple[float, float]:
    n, s, q = profile["n"], profile["s"], float(profile["q"])
    mean = s / n
    var = (q - s * s / n) / (n - 1) if n > 1 else 0.0
    return mean, math.sqrt(max(var, 0.0))


# ----------------------------------------------------------------------- the engine
class StateStore(Protocol):
    def get(self, key: str) -> Mapping[str, Any] | None: ...

    def put(self, key: str, value: Mapping[str, Any], partition: int) -> None: ...


class MemoryStore:
    """A dict: the offline store (and the reference for the live one)."""

    def __init__(self) -> None:
        self.values: dict[str, Mapping[str, Any]] = {}

    def get(self, key: str) -> Mapping[str, Any] | None:
        return self.values.get(key)

    def put(self, key: str, value: Mapping[str, Any], partition: int) -> None:
        self.values[key] = value


def card_key(card: str) -> str:
    return f"card|{card}"


def shared_key(kind: str, value: str, partition: int) -> str:
    return f"{kind}|{value}|{partition}"


def category_key(code: int, partition: int) -> str:
    return f"category|{code}|{partition}"


def key_partition(key: str) -> int | None:
    """The stream partition a shared or category key names; None for a card's key (it lives
    with its card's stream partition, which the key does not name)."""
    if key.startswith("card|"):
        return None
    return int(key.rpartition("|")[2])


class FeatureEngine:
    """Features of a payment from the running state, and the state update after it.

    `partitions` is how many stream partitions the shared state is split over (1 offline);
    reads merge all of them, writes go to the payment's own `partition`.
    """

    def __init__(self, store: StateStore, partitions: int = 1) -> None:
        self.store = store
        self.partitions = partitions

    # -- reading
    def _shared(self, kind: str, value: str) -> list[Mapping[str, Any] | None]:
        return [self.store.get(shared_key(kind, value, p)) for p in range(self.partitions)]

    def _category(self, code: int) -> list[Mapping[str, Any] | None]:
        return [self.store.get(category_key(code, p)) for p in range(self.partitions)]

    def features(self, obs: Observation) -> dict[str, float]:
        out: dict[str, float] = dict.fromkeys(FEATURE_NAMES, NAN)
        _payment_features(obs, out)
        card = self.store.get(card_key(obs.card))
        _card_features(obs, card, out)
        _window_features("card", obs.event_time, _merge_windows([card]), out)
        keys = obs.shared_keys()
        for kind in SHARED_KINDS:
            if kind in keys:
                merged = _merge_windows(self._shared(kind, keys[kind]))
                _window_features(kind, obs.event_time, merged, out)
        code = category_code(obs.mcc)
        profile = _merge_profiles(s.get("p") if s else None for s in self._category(code))
        _relative_amount("category", obs.amount_minor, profile, out)
        return out

    # -- writing
    def observe(self, obs: Observation, partition: int = 0) -> None:
        amount, t = obs.amount_minor, obs.event_time
        key = card_key(obs.card)
        card = self.store.get(key) or {}
        code = str(category_code(obs.mcc))
        block = str(obs.local_time.hour // HOUR_BLOCK)
        cats = dict(card.get("c", {}))
        hours = dict(card.get("h", {}))
        cats[code] = int(cats.get(code, 0)) + 1
        hours[block] = int(hours.get(block, 0)) + 1
        last = card.get("t")
        self.store.put(
            key,
            {
                **card,  # fields kept by others in the same value (the velocity buckets)
                "p": _add_to_profile(card.get("p"), amount),
                "t": t if last is None else max(float(last), t),
                "c": cats,
                "h": hours,
                "w": _add_to_windows(card.get("w", {}), t, amount),
            },
            partition,
        )
        for kind, value in obs.shared_keys().items():
            skey = shared_key(kind, value, partition)
            state = self.store.get(skey) or {}
            self.store.put(skey, {"w": _add_to_windows(state.get("w", {}), t, amount)}, partition)
        ckey = category_key(category_code(obs.mcc), partition)
        state = self.store.get(ckey) or {}
        self.store.put(ckey, {"p": _add_to_profile(state.get("p"), amount)}, partition)


def _payment_features(obs: Observation, out: dict[str, float]) -> None:
    amount = obs.amount_minor / 100
    out["amount"] = amount
    out["log_amount"] = math.log1p(amount)
    local = obs.local_time
    out["hour"] = local.hour
    out["night"] = 1.0 if local.hour in NIGHT_HOURS else 0.0
    out["day_of_week"] = local.weekday()
    out["category"] = category_code(obs.mcc)
    coords = (obs.billing_lat, obs.billing_lon, obs.merchant_lat, obs.merchant_lon)
    if all(c is not None and math.isfinite(c) for c in coords):
        out["distance_km"] = haversine_km(*coords)  # type: ignore[arg-type]
    if obs.billing_country and obs.bin_country:
        out["country_mismatch_bin"] = float(obs.billing_country != obs.bin_country)
    if obs.billing_country and obs.ip_country:
        out["country_mismatch_ip"] = float(obs.billing_country != obs.ip_country)


def _card_features(obs: Observation, card: Mapping[str, Any] | None, out: dict[str, float]) -> None:
    profile = _merge_profiles([card.get("p") if card else None])
    n = profile["n"]
    out["card_prev_count"] = n
    if not card or n == 0:
        return
    out["card_secs_since_prev"] = max(0.0, obs.event_time - float(card["t"]))
    _relative_amount("card", obs.amount_minor, profile, out)
    code = str(category_code(obs.mcc))
    block = str(obs.local_time.hour // HOUR_BLOCK)
    out["card_category_share"] = int(card.get("c", {}).get(code, 0)) / n
    out["card_hour_share"] = int(card.get("h", {}).get(block, 0)) / n


def _relative_amount(
    prefix: str, amount: int, profile: Mapping[str, float], out: dict[str, float]
) -> None:
    """`<prefix>_amount_ratio` (to the running mean) and `_amount_z` (needs 2 payments)."""
    n = profile["n"]
    if n == 0:
        return
    mean, std = _mean_std(profile)
    out[f"{prefix}_amount_ratio"] = amount / max(mean, 1.0)
    if n >= 2:
        out[f"{prefix}_amount_z"] = (amount - mean) / max(std, MIN_STD_MINOR)


def _window_features(
    kind: str, t: float, windows: Mapping[str, Any], out: dict[str, float]
) -> None:
    totals = _window_totals(windows, t)
    for name, _, _ in WINDOWS:
        out[f"{kind}_count_{name}"] = totals[name][0]
    out[f"{kind}_sum_24h"] = totals["24h"][1] / 100


def storable(features: Mapping[str, float]) -> dict[str, float | None]:
    """JSON-safe (PostgreSQL JSONB has no NaN): a missing feature becomes null."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in features.items()}


def replay(observations: Iterable[Observation]) -> list[dict[str, float]]:
    """Features of payments given in event-time order, each seeing only earlier ones."""
    engine = FeatureEngine(MemoryStore())
    rows = []
    for obs in observations:
        rows.append(engine.features(obs))
        engine.observe(obs)
    return rows
