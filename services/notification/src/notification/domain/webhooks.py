"""Webhook endpoints, message bodies and delivery identity. Pure: no I/O."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from notification.domain.signing import secret_bytes

# Namespace for ids that must be the same on every start (static endpoints).
_STATIC_NAMESPACE = uuid.UUID("6f1c2f0e-5a8d-4c57-9a64-2f6c3b8e1d10")

# Belt and braces: outcome events carry no card data today; if one ever does, it must not
# leave the platform in a webhook. Keys dropped at any depth of the payload.
_CARD_KEYS = frozenset({"card", "pan", "cvc", "cvv", "cvc2", "cvv2", "security_code"})


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


def validate_endpoint(merchant_id: str, url: str, secret: str, *, allow_http: bool) -> None:
    """Raises InvalidEndpoint or InvalidSecret."""
    if not merchant_id:
        raise InvalidEndpoint("merchant_id is required")
    parts = urlsplit(url)
    allowed = {"https", "http"} if allow_http else {"https"}
    if parts.scheme not in allowed:
        raise InvalidEndpoint(f"endpoint URL scheme must be one of {sorted(allowed)}")
    if not parts.hostname:
        raise InvalidEndpoint("endpoint URL has no host")
    if parts.username or parts.password:
        raise InvalidEndpoint("endpoint URL must not carry credentials")
    secret_bytes(secret)


def static_endpoint_id(merchant_id: str, url: str) -> uuid.UUID:
    """Stable across restarts, so re-loading the settings upserts instead of duplicating."""
    return uuid.uuid5(_STATIC_NAMESPACE, f"{merchant_id}\n{url}")


def delivery_id(message_id: uuid.UUID, endpoint_id: uuid.UUID) -> uuid.UUID:
    """The webhook-id: one per (event, endpoint), identical on every retry and redelivery."""
    return uuid.uuid5(message_id, f"webhook:{endpoint_id}")


def scrub_card_data(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            k: scrub_card_data(v)
            for k, v in value.items()
            if k.lower() not in _CARD_KEYS and "ciphertext" not in k.lower()
        }
    if isinstance(value, list | tuple):
        return [scrub_card_data(v) for v in value]
    return value


def build_body(event_type: str, occurred_at: datetime, data: Mapping[str, Any]) -> str:
    """The Standard Webhooks JSON body: {"type", "timestamp", "data"}, compact, UTF-8 text."""
    if occurred_at.tzinfo is None:
        occurred_at = occurred_at.replace(tzinfo=UTC)
    document = {
        "type": event_type,
        "timestamp": occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": scrub_card_data(data),
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class NewDelivery:
    id: uuid.UUID
    endpoint_id: uuid.UUID
    merchant_id: str
    payment_id: uuid.UUID
    message_id: uuid.UUID
    event_type: str
    body: str


@dataclass(frozen=True)
class OutcomeEvent:
    message_id: uuid.UUID
    event_type: str
    occurred_at: datetime
    merchant_id: str
    payment_id: uuid.UUID
    data: Mapping[str, Any] = field(default_factory=dict)


def plan_deliveries(event: OutcomeEvent, endpoints: Sequence[Endpoint]) -> list[NewDelivery]:
    """One delivery per enabled endpoint of the event's merchant, all with the same body."""
    targets = [e for e in endpoints if e.enabled and e.merchant_id == event.merchant_id]
    if not targets:
        return []
    body = build_body(event.event_type, event.occurred_at, event.data)
    return [
        NewDelivery(
            id=delivery_id(event.message_id, endpoint.endpoint_id),
            endpoint_id=endpoint.endpoint_id,
            merchant_id=event.merchant_id,
            payment_id=event.payment_id,
            message_id=event.message_id,
            event_type=event.event_type,
            body=body,
        )
        for endpoint in targets
    ]
