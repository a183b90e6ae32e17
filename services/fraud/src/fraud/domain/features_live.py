"""A live payment (payment.initiated) as a feature `Observation`. Pure.

Event time is the payment's `created_at`; its hour, night flag and day of week are read in
UTC (the payment carries no time zone; the replay harness sends the labeled file's local
time as UTC, so training and live scoring see the same hour). Amounts are normalised to two
decimals (JPY x100, KWD /10) like the rules do. The BIN and IP countries are not carried by
the payment yet, so those mismatch features stay missing (NaN) live.
"""

from __future__ import annotations

from datetime import UTC

from fraud.domain.features import Observation
from fraud.domain.scoring import normalised_amount
from sanalpos_common.schemas.events import PaymentInitiated


def observation_of(payment: PaymentInitiated) -> Observation:
    created = payment.created_at
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    ctx = payment.context
    billing = ctx.billing_location if ctx else None
    merchant_at = ctx.merchant_location if ctx else None
    return Observation(
        card=str(payment.card.fingerprint),
        amount_minor=normalised_amount(payment.amount, payment.currency),
        event_time=created.timestamp(),
        local_time=created.astimezone(UTC).replace(tzinfo=None),
        merchant=payment.merchant_id,
        mcc=ctx.merchant_category_code if ctx else None,
        customer_ip=str(ctx.customer_ip) if ctx and ctx.customer_ip else None,
        email=ctx.customer_email if ctx else None,
        device_id=ctx.device_id if ctx else None,
        billing_country=ctx.billing_country if ctx else None,
        billing_lat=billing.lat if billing else None,
        billing_lon=billing.lon if billing else None,
        merchant_lat=merchant_at.lat if merchant_at else None,
        merchant_lon=merchant_at.lon if merchant_at else None,
    )
