"""Consumes outcome events, payout updates and endpoint registrations; records deliveries to
make."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from notification.config import StaticEndpoint
from notification.domain.webhooks import (
    Endpoint,
    NewDelivery,
    OutcomeEvent,
    plan_deliveries,
    static_endpoint_id,
    validate_endpoint,
)
from sanalpos_common import topics
from sanalpos_common.db import UnitOfWork
from sanalpos_common.messaging.routing import HandlerTable
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import (
    EVENT_MODELS,
    PayoutStatus,
    PayoutUpdated,
    WebhookEndpointRegistered,
)

log = logging.getLogger(__name__)


class WebhookStore(Protocol):
    async def upsert_endpoint(
        self, endpoint: Endpoint, *, source: str, rotation_grace_s: float
    ) -> None: ...
    async def enabled_endpoints(self, merchant_id: str) -> list[Endpoint]: ...
    async def add_deliveries(self, deliveries: Sequence[NewDelivery]) -> int: ...


WebhookStores = Callable[[UnitOfWork], WebhookStore]
"""Opens the webhook store on a unit of work's transaction."""


class SecretOpener(Protocol):
    def open(self, ciphertext: str, merchant_id: str, endpoint_id: uuid.UUID) -> str: ...


@dataclass(frozen=True)
class NotificationHandlers:
    webhooks: WebhookStores
    allow_http_endpoints: bool
    rotation_grace_s: float
    secrets: SecretOpener
    allow_loopback: bool = False

    def table(self) -> HandlerTable:
        """This service's routes by message type; built once, at start-up. Every outcome
        event becomes webhook deliveries."""
        outcomes = {EVENT_MODELS[topic]: self.on_outcome for topic in topics.OUTCOME_TOPICS}
        return HandlerTable(
            {
                **outcomes,
                WebhookEndpointRegistered: self.on_endpoint_registered,
                PayoutUpdated: self.on_payout_updated,
            }
        )

    async def on_endpoint_registered(self, uow: UnitOfWork, envelope: Envelope[Any]) -> None:
        registered: WebhookEndpointRegistered = envelope.payload
        # An invalid URL, or a secret that does not open or is invalid, raises: the consumer
        # retries, then dead-letters it (the dead letter holds only the ciphertext).
        secret = self.secrets.open(
            registered.secret_ciphertext, registered.merchant_id, registered.endpoint_id
        )
        validate_endpoint(
            registered.merchant_id,
            registered.url,
            secret,
            allow_http=self.allow_http_endpoints,
            allow_loopback=self.allow_loopback,
        )
        endpoint = Endpoint(
            endpoint_id=registered.endpoint_id,
            merchant_id=registered.merchant_id,
            url=registered.url,
            secret=secret,
            enabled=registered.enabled,
        )
        await self.webhooks(uow).upsert_endpoint(
            endpoint, source="event", rotation_grace_s=self.rotation_grace_s
        )
        log.info(
            "webhook endpoint %s for merchant %s %s",
            endpoint.endpoint_id,
            endpoint.merchant_id,
            "enabled" if endpoint.enabled else "disabled",
        )

    async def on_outcome(self, uow: UnitOfWork, envelope: Envelope[Any]) -> None:
        event = OutcomeEvent.from_envelope(envelope)
        repository = self.webhooks(uow)
        endpoints = await repository.enabled_endpoints(event.merchant_id)
        deliveries = plan_deliveries(event, endpoints)
        added = await repository.add_deliveries(deliveries)
        if added:
            log.info("%s: %d webhook deliveries queued", event.event_type, added)

    async def on_payout_updated(self, uow: UnitOfWork, envelope: Envelope[Any]) -> None:
        """payout.paid / payout.failed; a payout just made (in transit) is not told. The
        deliveries' payment_id column holds the payout id (what the event is about)."""
        payout: PayoutUpdated = envelope.payload
        if payout.status is PayoutStatus.IN_TRANSIT:
            return
        event = OutcomeEvent(
            message_id=envelope.message_id,
            event_type=envelope.type,
            occurred_at=envelope.occurred_at,
            merchant_id=payout.merchant_id,
            payment_id=payout.payout_id,
            data=payout.model_dump(mode="json"),
        )
        endpoints = await self.webhooks(uow).enabled_endpoints(payout.merchant_id)
        added = await self.webhooks(uow).add_deliveries(plan_deliveries(event, endpoints))
        if added:
            log.info("%s %s: %d webhook deliveries queued", event.event_type, payout.status, added)


async def load_static_endpoints(
    repository: WebhookStore,
    endpoints: Sequence[StaticEndpoint],
    *,
    allow_http_endpoints: bool,
    rotation_grace_s: float,
    allow_loopback: bool = False,
) -> int:
    """Upsert the operator-configured endpoints; a bad one stops start-up."""
    for configured in endpoints:
        secret = configured.secret.get_secret_value()
        validate_endpoint(
            configured.merchant_id,
            configured.url,
            secret,
            allow_http=allow_http_endpoints,
            allow_loopback=allow_loopback,
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
