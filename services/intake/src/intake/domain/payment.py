"""Payment status as intake's read model sees it. Pure: no I/O."""

from __future__ import annotations

from enum import StrEnum

from sanalpos_common import topics


class PaymentStatus(StrEnum):
    PENDING = "pending"
    AUTHORIZED = "authorized"
    DECLINED = "declined"
    CAPTURED = "captured"
    SETTLED = "settled"


# Events may arrive twice or out of order; the read model only ever moves forward.
_RANK = {
    PaymentStatus.PENDING: 0,
    PaymentStatus.AUTHORIZED: 1,
    PaymentStatus.DECLINED: 1,
    PaymentStatus.CAPTURED: 2,
    PaymentStatus.SETTLED: 3,
}

STATUS_FOR_TOPIC = {
    topics.PAYMENT_AUTHORIZED: PaymentStatus.AUTHORIZED,
    topics.PAYMENT_DECLINED: PaymentStatus.DECLINED,
    topics.PAYMENT_CAPTURED: PaymentStatus.CAPTURED,
    topics.PAYMENT_SETTLED: PaymentStatus.SETTLED,
}


def rank(status: PaymentStatus) -> int:
    return _RANK[status]


def advances(current: PaymentStatus, new: PaymentStatus) -> bool:
    if current is PaymentStatus.DECLINED:
        return False
    return rank(new) > rank(current)
