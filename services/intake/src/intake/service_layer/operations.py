"""Capture and refund as every entry point runs them (HTTP and Kafka call these, in a unit
of work of their own choosing; void and fraud reports are `lifecycle`'s own functions). An amount that is too large is a
different refusal for a capture (an invalid amount) than for a refund (more than was
captured), so it is told apart here."""

from __future__ import annotations

import uuid

from intake.domain.payment import AmountTooLarge
from intake.service_layer import lifecycle
from intake.service_layer.idempotency import Response
from sanalpos_common.db import UnitOfWork


class CaptureTooLarge(AmountTooLarge):
    """The capture asks for more than the authorization holds."""


class RefundTooLarge(AmountTooLarge):
    """The refund, with the refunds before it, exceeds the captured amount."""


async def capture(
    uow: UnitOfWork, merchant_id: str, payment_id: uuid.UUID, amount: int | None
) -> Response:
    try:
        return await lifecycle.capture_payment(uow, merchant_id, payment_id, amount)
    except AmountTooLarge as exc:
        raise CaptureTooLarge(exc.detail, exc.available) from None


async def refund(
    uow: UnitOfWork, merchant_id: str, payment_id: uuid.UUID, amount: int, reason: str
) -> Response:
    try:
        return await lifecycle.refund_payment(uow, merchant_id, payment_id, amount, reason)
    except AmountTooLarge as exc:
        raise RefundTooLarge(exc.detail, exc.available) from None
