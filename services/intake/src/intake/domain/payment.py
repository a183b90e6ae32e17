"""Payment status as intake's read model sees it, and which merchant operations each status
allows. Pure: no I/O, no clock. The state machine is documented in docs/payment-states.md.

Events may arrive twice or out of order. Instead of moving a single status along, the read
model keeps *facts* that only ever grow (flags turn on, the captured amount takes its maximum,
refunds are a set keyed by refund id) and derives the status from them by precedence. Facts
merge the same way whatever the order, so the final status is order-independent. Which facts
each outcome event establishes is declared in intake.domain.outcomes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class PaymentStatus(StrEnum):
    PENDING = "pending"
    REQUIRES_ACTION = "requires_action"
    AUTHORIZED = "authorized"
    DECLINED = "declined"
    CAPTURED = "captured"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    VOIDED = "voided"
    EXPIRED = "expired"
    SETTLED = "settled"


# Position along the lifecycle: a derived status never has a lower rank than an earlier one
# (tests check it over every order of event sets). Stored as payments.status_rank.
_RANK = {
    PaymentStatus.PENDING: 0,
    PaymentStatus.REQUIRES_ACTION: 1,
    PaymentStatus.AUTHORIZED: 2,
    PaymentStatus.CAPTURED: 3,
    PaymentStatus.EXPIRED: 3,
    PaymentStatus.SETTLED: 4,
    PaymentStatus.PARTIALLY_REFUNDED: 5,
    PaymentStatus.REFUNDED: 6,
    PaymentStatus.VOIDED: 7,
    PaymentStatus.DECLINED: 7,
}

TERMINAL = frozenset(
    {PaymentStatus.DECLINED, PaymentStatus.VOIDED, PaymentStatus.EXPIRED, PaymentStatus.REFUNDED}
)


def rank(status: PaymentStatus) -> int:
    return _RANK[status]


@dataclass(frozen=True)
class PaymentFacts:
    """What the events so far established about one payment. Every field only grows."""

    action_required: bool = False
    authorized: bool = False
    declined: bool = False
    captured_amount: int = 0
    voided: bool = False
    expired: bool = False
    settled: bool = False
    refunds: Mapping[uuid.UUID, int] = field(default_factory=dict)

    @property
    def refunded_amount(self) -> int:
        """Sum over distinct refunds: a refund event seen twice counts once."""
        return sum(self.refunds.values())

    def merge(self, other: PaymentFacts) -> PaymentFacts:
        """Union of two fact sets (commutative, associative, idempotent)."""
        return PaymentFacts(
            action_required=self.action_required or other.action_required,
            authorized=self.authorized or other.authorized,
            declined=self.declined or other.declined,
            captured_amount=max(self.captured_amount, other.captured_amount),
            voided=self.voided or other.voided,
            expired=self.expired or other.expired,
            settled=self.settled or other.settled,
            refunds={**self.refunds, **other.refunds},
        )


def derive_status(facts: PaymentFacts) -> PaymentStatus:
    """Status by precedence, first match wins (docs/payment-states.md)."""
    refunded = facts.refunded_amount
    if facts.declined:
        return PaymentStatus.DECLINED
    if facts.voided:
        return PaymentStatus.VOIDED
    if refunded > 0:
        captured_known = facts.captured_amount > 0
        if captured_known and refunded >= facts.captured_amount:
            return PaymentStatus.REFUNDED
        return PaymentStatus.PARTIALLY_REFUNDED
    if facts.settled:
        return PaymentStatus.SETTLED
    if facts.captured_amount > 0:
        return PaymentStatus.CAPTURED
    if facts.expired:
        return PaymentStatus.EXPIRED
    if facts.authorized:
        return PaymentStatus.AUTHORIZED
    if facts.action_required:
        return PaymentStatus.REQUIRES_ACTION
    return PaymentStatus.PENDING


# --------------------------------------------------------------------- merchant operations


REFUNDABLE = frozenset(
    {PaymentStatus.CAPTURED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.SETTLED}
)


class Operation(StrEnum):
    CAPTURE = "capture"
    VOID = "void"
    REFUND = "refund"


class OperationNotAllowed(Exception):
    """The payment's state does not allow the operation (HTTP 409 naming the state)."""

    def __init__(self, operation: Operation, current_state: str, detail: str) -> None:
        super().__init__(detail)
        self.operation, self.current_state, self.detail = operation, current_state, detail


class AmountTooLarge(Exception):
    """The requested amount exceeds what may be captured or refunded."""

    def __init__(self, detail: str, available: int) -> None:
        super().__init__(detail)
        self.detail, self.available = detail, available


@dataclass(frozen=True)
class PaymentState:
    """What the operation checks need from the read model."""

    status: PaymentStatus
    amount: int
    is_preauth: bool
    captured_amount: int = 0
    pending_operation: str | None = None


def _busy(state: PaymentState, operation: Operation) -> None:
    if state.pending_operation is not None:
        raise OperationNotAllowed(
            operation,
            state.status.value,
            f"a {state.pending_operation} of this payment is already in progress; "
            "read the payment again once it completes",
        )


def check_capture(state: PaymentState, amount: int) -> None:
    if state.status is not PaymentStatus.AUTHORIZED or not state.is_preauth:
        kind = "pre-authorization" if state.is_preauth else "sale (captured on authorization)"
        raise OperationNotAllowed(
            Operation.CAPTURE,
            state.status.value,
            f"only an authorized pre-authorization can be captured; this {kind} is "
            f"{state.status.value}",
        )
    _busy(state, Operation.CAPTURE)
    if amount > state.amount:
        raise AmountTooLarge(
            f"amount {amount} exceeds the authorized amount {state.amount}", state.amount
        )


def check_void(state: PaymentState, now: datetime, batch_closes_at: datetime | None) -> None:
    """Before capture: always. After capture: only until the capture's batch closes."""
    if state.status is PaymentStatus.AUTHORIZED:
        _busy(state, Operation.VOID)
        return
    if state.status is PaymentStatus.CAPTURED:
        if batch_closes_at is None or now >= batch_closes_at:
            raise OperationNotAllowed(
                Operation.VOID,
                state.status.value,
                "the end-of-day cut-off for this capture has passed; refund it instead "
                "(POST /v1/payments/{id}/refunds)",
            )
        _busy(state, Operation.VOID)
        return
    hint = (
        "; refund it instead (POST /v1/payments/{id}/refunds)" if state.status in REFUNDABLE else ""
    )
    raise OperationNotAllowed(
        Operation.VOID,
        state.status.value,
        f"a {state.status.value} payment cannot be voided{hint}",
    )


def check_refund(state: PaymentState, amount: int, committed: int) -> None:
    """`committed`: the sum of this payment's refunds that have not failed."""
    if state.status not in REFUNDABLE:
        raise OperationNotAllowed(
            Operation.REFUND,
            state.status.value,
            f"only a captured, partially refunded or settled payment can be refunded; this "
            f"payment is {state.status.value}",
        )
    if state.pending_operation == Operation.VOID:
        _busy(state, Operation.REFUND)
    available = max(state.captured_amount - committed, 0)
    if amount > available:
        raise AmountTooLarge(
            f"amount {amount} exceeds the refundable remainder {available} "
            f"(captured {state.captured_amount}, already refunded or pending {committed})",
            available,
        )
