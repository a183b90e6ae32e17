"""Webhook endpoints, the deliveries an event makes, and their identity. Pure: no I/O."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from notification.domain.public_events import header_of, public_event, webhook_body
from notification.domain.signing import secret_bytes
from sanalpos_common.net import webhook_url_refusal
from sanalpos_common.schemas.envelope import Envelope

# Namespace for ids that must be the same on every start (static endpoints).
_STATIC_NAMESPACE = uuid.UUID("6f1c2f0e-5a8d-4c57-9a64-2f6c3b8e1d10")


class InvalidEndpoint(ValueError):
    pass


@dataclass(frozen=True)
class Endpoint:
    endpoint_id: uuid.UUID
    merchant_id: str
    url: str
    secret: str
    enabled: bool = True
    previous_secret: str | None = None
    previous_secret_expires_at: datetime | None = None

    def signing_keys(self, now: datetime) -> list[bytes]:
        """The current secret, plus the previous one while its rotation grace lasts."""
        keys = [secret_bytes(self.secret)]
        if (
            self.previous_secret
            and self.previous_secret_expires_at is not None
            and self.previous_secret_expires_at > now
        ):
            keys.append(secret_bytes(self.previous_secret))
        return keys


def validate_endpoint(
    merchant_id: str, url: str, secret: str, *, allow_http: bool, allow_loopback: bool = False
) -> None:
    """Raises InvalidEndpoint or InvalidSecret. The URL's host must be able to be public
    (no IP literal or name of a private range); what a name resolves to is checked again
    on every connection (adapters.http_sender)."""
    if not merchant_id:
        raise InvalidEndpoint("merchant_id is required")
    refusal = webhook_url_refusal(url, allow_http=allow_http, allow_loopback=allow_loopback)
    if refusal is not None:
        raise InvalidEndpoint(f"endpoint URL refused: {refusal}")
    secret_bytes(secret)


def static_endpoint_id(merchant_id: str, url: str) -> uuid.UUID:
    """Stable across restarts, so re-loading the settings upserts instead of duplicating."""
    return uuid.uuid5(_STATIC_NAMESPACE, f"{merchant_id}\n{url}")


def delivery_id(message_id: uuid.UUID, endpoint_id: uuid.UUID) -> uuid.UUID:
    """The webhook-id: one per (event, endpoint), identical on every retry and redelivery."""
    return uuid.uuid5(message_id, f"webhook:{endpoint_id}")


@dataclass(frozen=True)
class NewDelivery:
    id: uuid.UUID
    endpoint_id: uuid.UUID
    merchant_id: str
    payment_id: uuid.UUID
    message_id: uuid.UUID
    event_type: str
    """The public event type sent."""
    body: str


@dataclass(frozen=True)
class OutcomeEvent:
    """An internal outcome event as consumed. `data` is its payload; it never leaves as is."""

    message_id: uuid.UUID
    event_type: str
    occurred_at: datetime
    merchant_id: str
    payment_id: uuid.UUID
    data: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_envelope(cls, envelope: Envelope[Any]) -> OutcomeEvent:
        payload = envelope.payload
        return cls(
            message_id=envelope.message_id,
            event_type=envelope.type,
            occurred_at=envelope.occurred_at,
            merchant_id=payload.merchant_id,
            payment_id=payload.payment_id,
            data=payload.model_dump(mode="json"),
        )


def plan_deliveries(event: OutcomeEvent, endpoints: Sequence[Endpoint]) -> list[NewDelivery]:
    """One delivery per enabled endpoint of the event's merchant, all with the same body:
    the event's public counterpart. An event with none makes no delivery."""
    targets = [e.endpoint_id for e in endpoints if e.enabled and e.merchant_id == event.merchant_id]
    return plan_deliveries_to(event, targets)


def plan_deliveries_to(event: OutcomeEvent, endpoint_ids: Sequence[uuid.UUID]) -> list[NewDelivery]:
    """`plan_deliveries` given only the ids of the merchant's enabled endpoints (all a
    delivery needs: it is signed when sent, with the endpoint's secret of that moment)."""
    if not endpoint_ids:
        return []
    public = public_event(
        event.event_type, event.data, header_of(event.message_id, event.occurred_at)
    )
    if public is None:
        return []
    body = webhook_body(public)
    return [
        NewDelivery(
            id=delivery_id(event.message_id, endpoint_id),
            endpoint_id=endpoint_id,
            merchant_id=event.merchant_id,
            payment_id=event.payment_id,
            message_id=event.message_id,
            event_type=public.type,
            body=body,
        )
        for endpoint_id in endpoint_ids
    ]
