"""What each outcome event means to intake, in one registry keyed by event type: the facts it
records in the read model, what the payment's timeline shows of it, the pending operation and
refund it settles, and whether it ends a synchronous (`Prefer: wait`) request. Pure: no I/O.

Adding an outcome event type to intake is one entry in OUTCOMES; the consumer's handler table
and its topics follow from it (intake.service_layer.lifecycle).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from intake.domain.payment import Operation, PaymentFacts, PaymentStatus
from sanalpos_common.schemas.events import (
    PaymentActionRequired,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentDeclined,
    PaymentExpired,
    PaymentOperationFailed,
    PaymentRefunded,
    PaymentSettled,
    PaymentVoided,
    ThreeDSAuthentication,
)

P = TypeVar("P", bound=BaseModel)
Details = dict[str, Any]


def authentication_details(authentication: ThreeDSAuthentication | None) -> Details:
    """The 3-D Secure result as the payment shows it: no CAVV-like value (the issuer's
    proof, of no use to the merchant's API)."""
    if authentication is None:
        return {}
    shown = authentication.model_dump(mode="json", exclude={"authentication_value"})
    return {"authentication": shown}


def next_action_details(p: PaymentActionRequired) -> Details:
    if p.next_action_url is None:
        return {}
    expires = None if p.expires_at is None else p.expires_at.isoformat()
    return {"next_action_url": p.next_action_url, "next_action_expires_at": expires}


class WaitEnd(Enum):
    """Whether an outcome ends a request waiting for the payment's outcome (`Prefer: wait`)."""

    NEVER = "never"
    ALWAYS = "always"
    PRE_AUTHORIZATION = "pre-authorization"
    """Ends the wait of a pre-authorization only: a sale's answer is its capture."""


@dataclass(frozen=True)
class RefundSucceeded:
    refund_id: uuid.UUID
    amount: int
    currency: str
    reason: str


@dataclass(frozen=True)
class RefundFailed:
    refund_id: uuid.UUID
    reason: str


RefundChange = RefundSucceeded | RefundFailed


def _no_facts(_payload: BaseModel) -> PaymentFacts:
    return PaymentFacts()


def _answers_nothing(_payload: BaseModel) -> tuple[Operation, ...]:
    return ()


def _no_refund(_payload: BaseModel) -> RefundChange | None:
    return None


@dataclass(frozen=True)
class OutcomeRule(Generic[P]):
    """How intake records one outcome event type."""

    details: Callable[[P], Details]
    """What the timeline shows of the event (never card data)."""
    facts: Callable[[P], PaymentFacts] = _no_facts
    """The facts the event establishes on its own (they only ever grow)."""
    ends_wait: WaitEnd = WaitEnd.ALWAYS
    answers: Callable[[P], tuple[Operation, ...]] = _answers_nothing
    """The pending merchant operations it answers (then another may be asked)."""
    refund: Callable[[P], RefundChange | None] = _no_refund
    """What happens to the refund row it concerns, if any."""
    marks_capture: bool = False
    """Its time is the capture's, from which the end-of-day batch (void or refund) follows."""

    def ends_wait_for(self, *, is_sale: bool) -> bool:
        if self.ends_wait is WaitEnd.PRE_AUTHORIZATION:
            return not is_sale
        return self.ends_wait is WaitEnd.ALWAYS


def _operation_failed_refund(payload: PaymentOperationFailed) -> RefundChange | None:
    if payload.refund_id is None:
        return None
    return RefundFailed(payload.refund_id, payload.reason)


OUTCOMES: Mapping[type[BaseModel], OutcomeRule[Any]] = {
    PaymentAuthorized: OutcomeRule[PaymentAuthorized](
        facts=lambda p: PaymentFacts(authorized=True),
        details=lambda p: {
            "response_code": p.response_code,
            "auth_code": p.auth_code,
            **authentication_details(p.authentication),
        },
        ends_wait=WaitEnd.PRE_AUTHORIZATION,
    ),
    PaymentDeclined: OutcomeRule[PaymentDeclined](
        facts=lambda p: PaymentFacts(declined=True),
        details=lambda p: {
            "response_code": p.response_code,
            "decline_reason": p.reason,
            "declined_by": p.declined_by,
            **authentication_details(p.authentication),
        },
        answers=lambda p: (Operation.CAPTURE, Operation.VOID),
    ),
    PaymentCaptured: OutcomeRule[PaymentCaptured](
        # A capture implies the authorization, even if that event is still on its way.
        facts=lambda p: PaymentFacts(authorized=True, captured_amount=p.amount),
        # The capture carries the auth code too: it may be applied before payment.authorized
        # (another topic), and a synchronous answer at `captured` must show it.
        details=lambda p: {
            "captured_amount": p.amount,
            "authorized_amount": p.authorized_amount,
            "auth_code": p.auth_code,
        },
        answers=lambda p: (Operation.CAPTURE,),
        marks_capture=True,
    ),
    PaymentSettled: OutcomeRule[PaymentSettled](
        facts=lambda p: PaymentFacts(authorized=True, settled=True, captured_amount=p.gross_amount),
        details=lambda p: {
            "fee_amount": p.fee_amount,
            "net_amount": p.net_amount,
            **settled_fx_details(p),  # issue 13, fx
        },
    ),
    PaymentActionRequired: OutcomeRule[PaymentActionRequired](
        facts=lambda p: PaymentFacts(action_required=True),
        details=lambda p: {"action": p.action.value, "score": p.score, **next_action_details(p)},
    ),
    PaymentVoided: OutcomeRule[PaymentVoided](
        facts=lambda p: PaymentFacts(voided=True),
        details=lambda p: {"amount": p.amount, "after_capture": p.after_capture},
        answers=lambda p: (Operation.VOID,),
    ),
    PaymentRefunded: OutcomeRule[PaymentRefunded](
        facts=lambda p: PaymentFacts(authorized=True, refunds={p.refund_id: p.amount}),
        details=lambda p: {"refund_id": str(p.refund_id), "amount": p.amount},
        refund=lambda p: RefundSucceeded(p.refund_id, p.amount, p.currency, p.reason),
    ),
    PaymentExpired: OutcomeRule[PaymentExpired](
        facts=lambda p: PaymentFacts(authorized=True, expired=True),
        details=lambda p: {"amount": p.amount, "expired_at": p.expired_at.isoformat()},
        answers=lambda p: (Operation.CAPTURE, Operation.VOID),
    ),
    # Touches only a refund or a pending operation: the payment's status stays where it is.
    PaymentOperationFailed: OutcomeRule[PaymentOperationFailed](
        details=lambda p: {
            "operation": p.operation.value,
            "refund_id": None if p.refund_id is None else str(p.refund_id),
            "amount": p.amount,
            "reason": p.reason,
        },
        ends_wait=WaitEnd.NEVER,
        answers=lambda p: (Operation(p.operation.value),),
        refund=_operation_failed_refund,
    ),
}


def rule_of(payload: BaseModel) -> OutcomeRule[Any]:
    """The rule of an outcome event (KeyError for anything else)."""
    return OUTCOMES[type(payload)]


def event_details(payload: BaseModel) -> Details:
    return rule_of(payload).details(payload)


def record(facts: PaymentFacts, payload: BaseModel) -> PaymentFacts:
    return facts.merge(rule_of(payload).facts(payload))


def replay(events: Iterable[BaseModel]) -> PaymentFacts:
    facts = PaymentFacts()
    for payload in events:
        facts = record(facts, payload)
    return facts


def status_answers_wait(status: PaymentStatus, *, is_sale: bool) -> bool:
    """A status the shopper can be told: any but pending, and for a sale not `authorized`
    (its answer is the capture). Statuses an event type with `ends_wait` reaches."""
    if status is PaymentStatus.PENDING:
        return False
    return not (status is PaymentStatus.AUTHORIZED and is_sale)


# The authorization decision an outcome event carries (a sale's capture may arrive before its
# authorization: either one is the decision). Labels of the authorization latency metric.
_DECISIONS: Mapping[type[BaseModel], str] = {
    PaymentAuthorized: "authorized",
    PaymentCaptured: "authorized",
    PaymentDeclined: "declined",
    PaymentActionRequired: "review",
}


def decision_of(payload: BaseModel) -> str | None:
    """ "authorized", "declined" or "review" for an event that decides a payment, else None."""
    return _DECISIONS.get(type(payload))


# --- multi-currency (issue 13, fx) ---
def settled_fx_details(p: PaymentSettled) -> dict[str, Any]:
    """A converted payment's FX figures, kept on its payment.settled event for the reports."""
    if p.settlement_currency is None:
        return {}
    return {
        "settlement_currency": p.settlement_currency,
        "settlement_net_amount": p.settlement_net_amount,
        "fx_markup_amount": p.fx_markup_amount,
        "fx_rate": None if p.fx_rate is None else str(p.fx_rate),
        "fx_rate_id": None if p.fx_rate_id is None else str(p.fx_rate_id),
    }
