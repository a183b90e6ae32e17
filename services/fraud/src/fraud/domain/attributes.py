"""The attribute map a payment offers to rules and lists (pure). Names: policy.ATTRIBUTES."""

from __future__ import annotations

import math
from datetime import UTC
from typing import Any

from fraud.domain.scoring import Velocity, normalised_amount
from sanalpos_common.schemas.events import GeoPoint, PaymentInitiated

EARTH_RADIUS_KM = 6371.0088


def distance_km(a: GeoPoint, b: GeoPoint) -> float:
    """Great-circle (haversine) distance."""
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    dlat, dlon = lat2 - lat1, math.radians(b.lon - a.lon)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def payment_attributes(
    payment: PaymentInitiated,
    velocity: Velocity,
    score: int,
    model_probability: float | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """JSON-safe; what is not known is None. `extra`: more features by their catalogue name."""
    context = payment.context
    email = context.customer_email.lower() if context and context.customer_email else None
    billing = context.billing_location if context else None
    merchant = context.merchant_location if context else None
    attributes: dict[str, Any] = {
        "amount": payment.amount,
        "amount_normalised": normalised_amount(payment.amount, payment.currency),
        "currency": payment.currency,
        "merchant_id": payment.merchant_id,
        "installments": payment.installments,
        "capture": payment.capture,
        "hour_utc": payment.created_at.astimezone(UTC).hour,
        "score": score,
        "card.bin": payment.card.bin,
        "card.brand": payment.card.brand,
        "card.fingerprint": str(payment.card.fingerprint),
        "card.velocity_10m_count": velocity.card_10m,
        "card.velocity_1h_count": velocity.card_1h,
        "customer.ip": str(context.customer_ip) if context and context.customer_ip else None,
        "customer.email": email,
        "customer.email_domain": email.rsplit("@", 1)[1] if email else None,
        "customer.device_id": context.device_id if context else None,
        "billing.country": context.billing_country if context else None,
        "billing.distance_to_merchant_km": (
            round(distance_km(billing, merchant), 1) if billing and merchant else None
        ),
        "merchant.category_code": context.merchant_category_code if context else None,
        "ip_country": None,
        "card_country": None,
        "model.probability": model_probability,
    }
    if extra:
        attributes.update(extra)
    return attributes
