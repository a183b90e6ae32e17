"""From internal events to the public webhook events merchants receive. Pure: no I/O.

`PUBLIC_EVENT_MAPPINGS` is the whole list of what may leave the platform: an internal event
type with no entry sends nothing, and a mapping copies only the fields its public model
declares (fraud scores, who declined, ledger ids and card data never do).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from sanalpos_common import topics
from sanalpos_common.schemas import events as internal
from sanalpos_common.schemas import webhooks as public
from sanalpos_common.schemas.events import event_type

_EVENT_ID_NAMESPACE = uuid.UUID("c1b7e0a4-2f55-4c7e-9d0b-7a6e5f4d3c21")

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Header:
    """What every public event of one internal event shares."""

    id: str
    created_at: datetime


def public_event_id(message_id: uuid.UUID) -> str:
    """Stable for a redelivered event, the same for every endpoint, and not our message id."""
    return f"evt_{uuid.uuid5(_EVENT_ID_NAMESPACE, str(message_id)).hex}"


def header_of(message_id: uuid.UUID, occurred_at: datetime) -> Header:
    if occurred_at.tzinfo is None:
        occurred_at = occurred_at.replace(tzinfo=UTC)
    return Header(public_event_id(message_id), occurred_at.astimezone(UTC))


# ----------------------------------------------------------------------------- decline codes

_DECLINES: dict[str, tuple[public.DeclineCode, str]] = {
    "05": (public.DeclineCode.DO_NOT_HONOR, "do not honour"),
    "14": (public.DeclineCode.INVALID_CARD, "invalid card number"),
    "51": (public.DeclineCode.INSUFFICIENT_FUNDS, "insufficient funds"),
    "54": (public.DeclineCode.EXPIRED_CARD, "expired card"),
    "59": (public.DeclineCode.SUSPECTED_FRAUD, "suspected fraud"),
    "N7": (public.DeclineCode.SECURITY_CODE_EXPIRED, "security code expired"),
    "N8": (public.DeclineCode.AUTHENTICATION_FAILED, "3-D Secure authentication failed"),
}
_GENERIC_DECLINE = (public.DeclineCode.GENERIC_DECLINE, "declined")


def public_decline(response_code: str) -> tuple[public.DeclineCode, str]:
    """The public code and wording for a response code; internal reason texts never leave."""
    return _DECLINES.get(response_code, _GENERIC_DECLINE)


_NEXT_ACTIONS = {
    internal.ActionRequired.REVIEW: public.NextAction.AWAIT_REVIEW,
    internal.ActionRequired.THREE_DS: public.NextAction.THREE_D_SECURE,
}


# ----------------------------------------------------------------------------- mappings

D = TypeVar("D", bound=BaseModel)
E = TypeVar("E", bound=public.WebhookEvent)


def _data(model: type[D], p: BaseModel, **translated: Any) -> D:
    """The public data object `model`: each field it declares is the internal event's field of
    the same name, except those given in `translated`. Undeclared fields stay behind."""
    same_name = {name: getattr(p, name) for name in model.model_fields if name not in translated}
    return model(**same_name, **translated)


def _event(model: type[E], h: Header, data: BaseModel) -> E:
    # Each subclass declares its own `data` type (WebhookEvent has none), hence validation.
    return model.model_validate({"id": h.id, "created_at": h.created_at, "data": data})


def _authentication(a: internal.ThreeDSAuthentication | None) -> public.Authentication | None:
    """Status, flow, ECI and liability shift only: the CAVV-like value stays behind."""
    if a is None:
        return None
    return public.Authentication(
        status=a.status.value, flow=a.flow, eci=a.eci, liability_shift=a.liability_shift
    )


def _authorized(p: internal.PaymentAuthorized, h: Header) -> public.WebhookEvent:
    # A sale is authorized and captured in one transaction: to the merchant it succeeded.
    event: type[public.WebhookEvent] = (
        public.PaymentSucceeded if p.capture else public.PaymentAuthorized
    )
    data = _data(public.PaymentAuthorization, p, authentication=_authentication(p.authentication))
    return _event(event, h, data)


def _captured(p: internal.PaymentCaptured, h: Header) -> public.PaymentCaptured:
    return _event(public.PaymentCaptured, h, _data(public.PaymentCapture, p))


def _declined(p: internal.PaymentDeclined, h: Header) -> public.PaymentFailed:
    code, reason = public_decline(p.response_code)
    data = _data(
        public.PaymentFailure,
        p,
        decline_code=code,
        decline_reason=reason,
        authentication=_authentication(p.authentication),
    )
    return _event(public.PaymentFailed, h, data)


def _action_required(p: internal.PaymentActionRequired, h: Header) -> public.PaymentRequiresAction:
    data = _data(public.PaymentActionRequest, p, next_action=_NEXT_ACTIONS[p.action])
    return _event(public.PaymentRequiresAction, h, data)


def _voided(p: internal.PaymentVoided, h: Header) -> public.PaymentVoided:
    return _event(public.PaymentVoided, h, _data(public.PaymentVoid, p))


def _expired(p: internal.PaymentExpired, h: Header) -> public.PaymentExpired:
    return _event(public.PaymentExpired, h, _data(public.PaymentExpiry, p))


def _settled(p: internal.PaymentSettled, h: Header) -> public.PaymentSettled:
    return _event(public.PaymentSettled, h, _data(public.PaymentSettlement, p))


def _refunded(p: internal.PaymentRefunded, h: Header) -> public.RefundSucceeded:
    return _event(public.RefundSucceeded, h, _data(public.Refund, p))


_FAILED_OPERATIONS: dict[
    internal.PaymentOperation, tuple[type[public.WebhookEvent], type[BaseModel]]
] = {
    internal.PaymentOperation.CAPTURE: (public.PaymentCaptureFailed, public.PaymentCaptureFailure),
    internal.PaymentOperation.VOID: (public.PaymentVoidFailed, public.PaymentVoidFailure),
    internal.PaymentOperation.REFUND: (public.RefundFailed, public.RefundFailure),
}


def _operation_failed(p: internal.PaymentOperationFailed, h: Header) -> public.WebhookEvent:
    if p.operation is internal.PaymentOperation.REFUND and p.refund_id is None:
        raise ValueError("a failed refund without its refund_id cannot be told to the merchant")
    event, data_model = _FAILED_OPERATIONS[p.operation]
    return _event(event, h, _data(data_model, p, failure_reason=p.reason))


@dataclass(frozen=True)
class PublicMapping(Generic[M]):
    """How one internal event type becomes a public one."""

    internal_model: type[M]
    build: Callable[[M, Header], public.WebhookEvent]

    def __call__(self, payload: Mapping[str, Any], header: Header) -> public.WebhookEvent:
        # Re-validated strictly (extra="forbid"): an internal contract change fails loudly here.
        return self.build(self.internal_model.model_validate(payload), header)


PUBLIC_EVENT_MAPPINGS: dict[str, PublicMapping[Any]] = {
    event_type(topics.PAYMENT_AUTHORIZED): PublicMapping(internal.PaymentAuthorized, _authorized),
    event_type(topics.PAYMENT_CAPTURED): PublicMapping(internal.PaymentCaptured, _captured),
    event_type(topics.PAYMENT_DECLINED): PublicMapping(internal.PaymentDeclined, _declined),
    event_type(topics.PAYMENT_ACTION_REQUIRED): PublicMapping(
        internal.PaymentActionRequired, _action_required
    ),
    event_type(topics.PAYMENT_VOIDED): PublicMapping(internal.PaymentVoided, _voided),
    event_type(topics.PAYMENT_EXPIRED): PublicMapping(internal.PaymentExpired, _expired),
    event_type(topics.PAYMENT_SETTLED): PublicMapping(internal.PaymentSettled, _settled),
    event_type(topics.PAYMENT_REFUNDED): PublicMapping(internal.PaymentRefunded, _refunded),
    event_type(topics.PAYMENT_OPERATION_FAILED): PublicMapping(
        internal.PaymentOperationFailed, _operation_failed
    ),
}
"""Internal event type (envelope `type`) -> its public mapping. Absent = never sent."""


def public_event(
    internal_type: str, payload: Mapping[str, Any], header: Header
) -> public.WebhookEvent | None:
    """The public event for an internal one, or None when it has no public counterpart."""
    mapping = PUBLIC_EVENT_MAPPINGS.get(internal_type)
    return mapping(payload, header) if mapping is not None else None


def webhook_body(event: public.WebhookEvent) -> str:
    """The exact text that is signed and sent: compact JSON, UTF-8."""
    return event.model_dump_json()


# ----------------------------------------------------------------------------- payouts


def _payout(p: internal.PayoutUpdated, h: Header) -> public.WebhookEvent:
    """Paid -> payout.paid, returned -> payout.failed; a payout in transit is not told."""
    batch_ids = [line.batch_id for line in p.lines]
    if p.status is internal.PayoutStatus.PAID:
        return _event(public.PayoutPaid, h, _data(public.Payout, p, batch_ids=batch_ids))
    if p.status is internal.PayoutStatus.RETURNED:
        data = _data(
            public.PayoutFailure,
            p,
            batch_ids=batch_ids,
            failure_reason=p.reason or "returned by the bank",
        )
        return _event(public.PayoutFailed, h, data)
    raise ValueError(f"a payout {p.status} has no public event")


PUBLIC_EVENT_MAPPINGS[event_type(topics.PAYOUT_UPDATED)] = PublicMapping(
    internal.PayoutUpdated, _payout
)


# ----------------------------------------------------------------------------- disputes


def _dispute(d: internal.DisputeUpdated, h: Header) -> public.WebhookEvent:
    """Its first version -> dispute.created; won or lost -> dispute.won / dispute.lost. An
    answer of yours (under review) is not told: you gave it."""
    if d.status is internal.DisputeStatus.WON:
        return _event(public.DisputeWon, h, _data(public.DisputeOutcome, d))
    if d.status is internal.DisputeStatus.LOST:
        return _event(public.DisputeLost, h, _data(public.DisputeOutcome, d))
    if d.version == 1:
        return _event(public.DisputeCreated, h, _data(public.Dispute, d))
    raise ValueError(f"a dispute {d.status} (version {d.version}) has no public event")


def dispute_is_told(d: internal.DisputeUpdated) -> bool:
    return d.version == 1 or d.status in {internal.DisputeStatus.WON, internal.DisputeStatus.LOST}


PUBLIC_EVENT_MAPPINGS[event_type(topics.DISPUTE_UPDATED)] = PublicMapping(
    internal.DisputeUpdated, _dispute
)
