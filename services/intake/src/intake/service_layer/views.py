"""What a merchant sees of a payment: never the PAN, CVC or ciphertexts."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from intake.domain.payment import PaymentStatus
from intake.domain.read_models import (
    AuthenticationOut,
    CardOut,
    NextActionOut,
    PaymentEventOut,
    PaymentOut,
    RefundOut,
)


def refund_view(row: Mapping[str, Any] | Any) -> dict[str, Any]:
    return RefundOut.model_validate(dict(row)).model_dump(mode="json")


def next_action_view(row: Mapping[str, Any] | Any) -> NextActionOut | None:
    """Shown only while the payment requires the action (a later status hides it)."""
    url = row.get("next_action_url")
    if url is None or row["status"] != PaymentStatus.REQUIRES_ACTION.value:
        return None
    return NextActionOut(
        type="redirect_to_url", url=url, expires_at=row.get("next_action_expires_at")
    )


def authentication_view(row: Mapping[str, Any] | Any) -> AuthenticationOut | None:
    stored = row.get("authentication")
    if stored is None:
        return None
    if isinstance(stored, str):
        stored = json.loads(stored)
    return AuthenticationOut.model_validate(
        {k: stored.get(k) for k in ("status", "flow", "eci", "liability_shift")}
    )


def payment_view(
    row: Mapping[str, Any] | Any,
    events: Sequence[Mapping[str, Any] | Any],
    refunds: Sequence[Mapping[str, Any] | Any] = (),
) -> dict[str, Any]:
    metadata = row["metadata"]
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    out = PaymentOut(
        id=row["id"],
        status=row["status"],
        amount=row["amount"],
        currency=row["currency"],
        capture=row["capture"],
        installments=row["installments"],
        order_id=row["order_id"],
        description=row["description"],
        metadata=metadata,
        card=CardOut(
            brand=row["card_brand"],
            bin=row["card_bin"],
            last4=row["card_last4"],
            exp_month=row["card_exp_month"],
            exp_year=row["card_exp_year"],
            fingerprint=row["card_fingerprint"],
        ),
        card_token=row.get("card_token"),
        initiated_by=row.get("initiated_by") or "customer",
        response_code=row.get("response_code"),
        auth_code=row.get("auth_code"),
        decline_reason=row.get("decline_reason"),
        fee_amount=row.get("fee_amount"),
        net_amount=row.get("net_amount"),
        captured_amount=row.get("captured_amount") or 0,
        refunded_amount=row.get("refunded_amount") or 0,
        pending_operation=row.get("pending_operation"),
        next_action=next_action_view(row),
        authentication=authentication_view(row),
        refunds=[RefundOut.model_validate(dict(r)) for r in refunds],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        events=[
            PaymentEventOut(
                type=e["type"],
                occurred_at=e["occurred_at"],
                details=json.loads(e["details"]) if isinstance(e["details"], str) else e["details"],
            )
            for e in events
        ],
    )
    return out.model_dump(mode="json")
