"""Consumes outcome events and endpoint registrations; records deliveries to make."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from notification.adapters.repository import WebhookRepository
from notification.config import StaticEndpoint
from notification.domain.webhooks import (
    Endpoint,
    OutcomeEvent,
    plan_deliveries,
    static_endpoint_id,
    validate_endpoint,
)
from sanalpos_common import topics
from sanalpos_common.db import UnitOfWork
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import WebhookEndpointRegistered, event_type

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NotificationHandlers:
    allow_http_endpoints: bool
    rotation_grace_s: float

    async def handle(self, uow: UnitOfWork, topic: str, envelope: Envelope[Any]) -> None:
        if topic == topics.WEBHOOK_ENDPOINT_REGISTERED:
            await self.on_endpoint_registered(uow, envelope)
        elif topic in topics.OUTCOME_TOPICS:
            await self.on_outcome(uow, topic, envelope)

    async def on_endpoint_registered(self, uow: UnitOfWork, envelope: Envelope[Any]) -> None:
        registered: WebhookEndpointRegistered = envelope.payload
        # An invalid URL or secret raises: the consumer retries, then dead-letters it.
        validate_endpoint(
            registered.merchant_id,
            registered.url,
            registered.secret,
            allow_http=self.allow_http_endpoints,
        )
        endpoint = Endpoint(
            endpoint_id=registered.endpoint_id,
            merchant_id=registered.merchant_id,
            url=registered.url,
            secret=registered.secret,
            enabled=registered.enabled,
        )
        await WebhookRepository(uow.conn).upsert_endpoint(
            endpoint, source="event", rotation_grace_s=self.rotation_grace_s
        )
        log.info(
            "webhook endpoint %s for merchant %s %s",
            endpoint.endpoint_id,
            endpoint.merchant_id,
            "enabled" if endpoint.enabled else "disabled",
        )

    async def on_outcome(self, uow: UnitOfWork, topic: str, envelope: Envelope[Any]) -> None:
        payload = envelope.payload
        event = OutcomeEvent(
            message_id=envelope.message_id,
            event_type=event_type(topic),
            occurred_at=envelope.occurred_at,
            merchant_id=payload.merchant_id,
            payment_id=payload.payment_id,
            data=payload.model_dump(mode="json"),
        )
        repository = WebhookRepository(uow.conn)
        endpoints = await repository.enabled_endpoints(event.merchant_id)
        deliveries = plan_deliveries(event, endpoints)
        added = await repository.add_deliveries(deliveries)
        if added:
            log.info("%s: %d webhook deliveries queued", event.event_type, added)


async def load_static_endpoints(
    uow: UnitOfWork,
    endpoints: Sequence[StaticEndpoint],
    *,
    allow_http_endpoints: bool,
    rotation_grace_s: float,
) -> int:
    """Upsert the operator-configured endpoints; a bad one stops start-up."""
    repository = WebhookRepository(uow.conn)
    for configured in endpoints:
        secret = configured.secret.get_secret_value()
        validate_endpoint(
            configured.merchant_id, configured.url, secret, allow_http=allow_http_endpoints
        )
        await repository.upsert_endpoint(
            Endpoint(
                endpoint_id=static_endpoint_id(configured.merchant_id, configured.url),
                merchant_id=configured.merchant_id,
                url=configured.url,
                secret=secret,
                enabled=configured.enabled,
            ),
            source="static",
            rotation_grace_s=rotation_grace_s,
        )
    return len(endpoints)
