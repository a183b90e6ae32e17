"""The acquirer-side life of one authorization: which command may run in which state. Pure.

```
            ┌──────── capture (amount ≤ hold) ────────┐
authorized ─┤── void (release hold) ──▶ voided        ▼
 (pre-auth) └── expiry (release hold) ─▶ expired    captured ── void (reversal) ──▶ voided
                                                       │
                                          refund (part)▼        refund (rest)
                                              partially_refunded ──────────▶ refunded
```
A sale is authorized and captured in one step. `declined` is final.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class AuthorizationStatus(StrEnum):
    AUTHORIZED = "authorized"
    DECLINED = "declined"
    CAPTURED = "captured"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    VOIDED = "voided"
    EXPIRED = "expired"


REFUNDABLE = frozenset({AuthorizationStatus.CAPTURED, AuthorizationStatus.PARTIALLY_REFUNDED})


class OperationRefused(Exception):
    """The command cannot run against the payment as it stands; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Authorization:
    payment_id: uuid.UUID
    merchant_id: str
    amount: int
    """The authorized amount: the hold placed with the issuer."""
    currency: str
    status: AuthorizationStatus
    auth_code: str | None
    installments: int
    captured_amount: int = 0
    refunded_amount: int = 0
    expires_at: datetime | None = None
    """When an uncaptured pre-authorization lapses; None once captured or for declines."""

    def is_past_expiry(self, now: datetime) -> bool:
        return (
            self.status is AuthorizationStatus.AUTHORIZED
            and self.expires_at is not None
            and self.expires_at <= now
        )

    @property
    def refundable(self) -> int:
        return self.captured_amount - self.refunded_amount


@dataclass(frozen=True)
class VoidPlan:
    after_capture: bool
    amount: int
    """The released hold, or the reversed captured amount."""


def _not_in(state: Authorization, operation: str) -> OperationRefused:
    return OperationRefused(f"cannot {operation} a payment that is {state.status.value}")


def _same_currency(state: Authorization, currency: str) -> None:
    if currency != state.currency:
        raise OperationRefused(f"currency {currency} does not match the payment's {state.currency}")


def check_capture(state: Authorization, amount: int, currency: str, now: datetime) -> None:
    """Only an open, unexpired pre-authorization, for at most its hold, in its currency."""
    if state.status is not AuthorizationStatus.AUTHORIZED:
        raise _not_in(state, "capture")
    if state.is_past_expiry(now):
        raise OperationRefused("cannot capture a pre-authorization past its expiry")
    _same_currency(state, currency)
    if amount > state.amount:
        raise OperationRefused(
            f"capture amount {amount} exceeds the authorized amount {state.amount}"
        )


def plan_void(state: Authorization) -> VoidPlan:
    """Before capture: release the hold. After capture, with no refund yet: reverse the sale.
    Whether a captured payment is still within the merchant's cut-off is intake's call."""
    if state.status is AuthorizationStatus.AUTHORIZED:
        return VoidPlan(after_capture=False, amount=state.amount)
    if state.status is AuthorizationStatus.CAPTURED:
        return VoidPlan(after_capture=True, amount=state.captured_amount)
    raise _not_in(state, "void")


def check_refund(state: Authorization, amount: int, currency: str) -> None:
    """A captured, unvoided payment; all refunds together at most the captured amount."""
    if state.status not in REFUNDABLE:
        raise _not_in(state, "refund")
    _same_currency(state, currency)
    if amount > state.refundable:
        raise OperationRefused(
            f"refund amount {amount} exceeds the refundable remainder {state.refundable} "
            f"(captured {state.captured_amount}, refunded {state.refunded_amount})"
        )


def status_after_refund(state: Authorization, amount: int) -> AuthorizationStatus:
    if state.refunded_amount + amount == state.captured_amount:
        return AuthorizationStatus.REFUNDED
    return AuthorizationStatus.PARTIALLY_REFUNDED
