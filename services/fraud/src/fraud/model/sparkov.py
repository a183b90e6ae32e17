"""How a row of the labeled (Sparkov-style) file becomes a payment, in one place.

Used by offline training/evaluation (row -> `Observation`) and by the replay harness
(`scripts/fraud_eval.py`: row -> payment request), so both see the same payment:

- `cc_num` -> a stable, Luhn-valid test card number (`replay_card_number`); offline the card
  key is the cc_num itself (an opaque key either way: only grouping, never a feature);
- `merchant` -> a merchant id (`merchant_id`, a hash of the name);
- `category` -> a merchant category code (`domain.features.MCC_OF_CATEGORY`);
- `amt` -> minor units of USD;
- `trans_date_trans_time` -> the payment's timestamp (taken as UTC, so the hour the model
  sees live is the file's local hour); `lat`/`long` -> billing location;
  `merch_lat`/`merch_long` -> merchant location.

Cardholder name, address, job and date of birth are never mapped: the platform does not
receive them. (`dob` is read only for the README's offline baseline, which uses age.)
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from fraud.domain.features import MCC_OF_CATEGORY, Observation

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
CARD_PREFIX = "424242"
"""Test cards the issuer simulator approves (outside its special ranges; see authorization)."""


@dataclass(frozen=True)
class SparkovRow:
    cc_num: str
    merchant: str
    category: str
    amount_minor: int
    local_time: datetime
    billing_lat: float | None
    billing_lon: float | None
    merchant_lat: float | None
    merchant_lon: float | None
    birth_date: date | None
    label: int

    @property
    def event_time(self) -> float:
        return self.local_time.replace(tzinfo=UTC).timestamp()

    @property
    def mcc(self) -> str | None:
        return MCC_OF_CATEGORY.get(self.category)

    def observation(self, card: str | None = None) -> Observation:
        return Observation(
            card=card or self.cc_num,
            amount_minor=self.amount_minor,
            event_time=self.event_time,
            local_time=self.local_time,
            merchant=merchant_id(self.merchant),
            mcc=self.mcc,
            billing_lat=self.billing_lat,
            billing_lon=self.billing_lon,
            merchant_lat=self.merchant_lat,
            merchant_lon=self.merchant_lon,
            billing_country="US",
        )


def risk_context(row: SparkovRow) -> dict[str, Any]:
    """The payment request's `context` for a row (RiskContext fields, JSON-ready)."""
    context: dict[str, Any] = {}
    if row.mcc:
        context["merchant_category_code"] = row.mcc
    if row.billing_lat is not None and row.billing_lon is not None:
        context["billing_location"] = {"lat": row.billing_lat, "lon": row.billing_lon}
    if row.merchant_lat is not None and row.merchant_lon is not None:
        context["merchant_location"] = {"lat": row.merchant_lat, "lon": row.merchant_lon}
    context["billing_country"] = "US"
    return context


def occurred_at(row: SparkovRow) -> str:
    """The payment's timestamp for the replay: the file's local time, sent as UTC."""
    return row.local_time.replace(tzinfo=UTC).isoformat()


def _float(text: str | None) -> float | None:
    if text is None or not text.strip():
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def _minor(text: str) -> int:
    value = Decimal(text.strip())
    if value <= 0:
        raise ValueError(f"amount must be positive, got {text!r}")
    return int((value * 100).to_integral_value())


def parse_row(row: dict[str, str]) -> SparkovRow:
    dob = (row.get("dob") or "").strip()
    return SparkovRow(
        cc_num=row["cc_num"].strip(),
        merchant=row["merchant"],
        category=row["category"].strip().lower(),
        amount_minor=_minor(row["amt"]),
        local_time=datetime.strptime(row["trans_date_trans_time"], TIME_FORMAT),
        billing_lat=_float(row.get("lat")),
        billing_lon=_float(row.get("long")),
        merchant_lat=_float(row.get("merch_lat")),
        merchant_lon=_float(row.get("merch_long")),
        birth_date=date.fromisoformat(dob) if dob else None,
        label=int(row["is_fraud"]),
    )


def merchant_id(name: str) -> str:
    return "mer_spk_" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]


def luhn_check_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:  # doubled: the digit next to the (future) check digit, then every other
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def replay_card_number(cc_num: str) -> str:
    """A 16-digit Luhn-valid number, the same for the same cc_num (not the cc_num)."""
    digest = int(hashlib.sha256(f"sparkov-card|{cc_num}".encode()).hexdigest(), 16)
    body = CARD_PREFIX + f"{digest % 10**9:09d}"
    return body + luhn_check_digit(body)
