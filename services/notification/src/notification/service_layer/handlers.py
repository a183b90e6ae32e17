"""Consumes outcome events, payout updates and endpoint registrations; records the webhook
deliveries and the shopper emails to make (payments and merchants are kept for the emails)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg

from notification.adapters.shopper_emails import ShopperEmailRepository
from notification.config import StaticEndpoint
from notification.domain.public_events import dispute_is_told
from notification.domain.shopper_emails import (
    Merchant,
    NewEmail,
    ShopperPayment,
    Trigger,
    email_kind,
    plan_email,
)
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
    DisputeUpdated,
    MerchantUpdated,
    PaymentInitiated,
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


class ShopperEmailStore(Protocol):
    async def add_payment(self, payment: ShopperPayment) -> None: ...
    async def payment(self, payment_id: uuid.UUID) -> ShopperPayment | None: ...
    async def upsert_merchant(self, event: MerchantUpdated) -> None: ...
    async def merchant(self, merchant_id: str) -> Merchant | None: ...
    async def add_waiting(self, trigger: Trigger) -> None: ...
    async def take_waiting(self, payment_id: uuid.UUID) -> list[Trigger]: ...
    async def add_email(self, email: NewEmail) -> bool: ...


ShopperEmailStores = Callable[[UnitOfWork], ShopperEmailStore]


class SecretOpener(Protocol):
    def open(self, ciphertext: str, merchant_id: str, endpoint_id: uuid.UUID) -> str: ...


@dataclass(frozen=True)
class NotificationHandlers:
    webhooks: WebhookStores
    allow_http_endpoints: bool
    rotation_grace_s: float
    secrets: SecretOpener
    allow_loopback: bool = False
    emails: ShopperEmailStores | None = None
    """Shopper receipts and notices; None only in tests of the webhooks alone."""

    def table(self) -> HandlerTable:
        """This service's routes by message type; built once, at start-up. Every outcome
        event becomes webhook deliveries (and, for the shopper, maybe an email); payments
        and merchants are kept for the shopper's emails."""
        outcomes = {EVENT_MODELS[topic]: self.on_outcome for topic in topics.OUTCOME_TOPICS}
        return HandlerTable(
            {
                **outcomes,
                WebhookEndpointRegistered: self.on_endpoint_registered,
                PaymentInitiated: self.on_initiated,
                MerchantUpdated: self.on_merchant_updated,
                PayoutUpdated: self.on_payout_updated,
                DisputeUpdated: self.on_dispute_updated,
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
        if self.emails is not None and (trigger := Trigger.from_envelope(envelope)) is not None:
            await tell_shopper(self.emails(uow), trigger)

    async def on_initiated(self, uow: UnitOfWork, envelope: Envelope[Any]) -> None:
        if self.emails is None:
            return
        store = self.emails(uow)
        payment = ShopperPayment.from_initiated(envelope.payload)
        await store.add_payment(payment)
        for trigger in await store.take_waiting(payment.payment_id):
            await tell_shopper(store, trigger)

    async def on_merchant_updated(self, uow: UnitOfWork, envelope: Envelope[Any]) -> None:
        if self.emails is not None:
            await self.emails(uow).upsert_merchant(envelope.payload)

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

    async def on_dispute_updated(self, uow: UnitOfWork, envelope: Envelope[Any]) -> None:
        """dispute.created, dispute.won, dispute.lost (domain/public_events.py)."""
        dispute: DisputeUpdated = envelope.payload
        if not dispute_is_told(dispute):
            return
        event = OutcomeEvent(
            message_id=envelope.message_id,
            event_type=envelope.type,
            occurred_at=envelope.occurred_at,
            merchant_id=dispute.merchant_id,
            payment_id=dispute.payment_id,
            data=dispute.model_dump(mode="json"),
        )
        endpoints = await self.webhooks(uow).enabled_endpoints(dispute.merchant_id)
        added = await self.webhooks(uow).add_deliveries(plan_deliveries(event, endpoints))
        if added:
            log.info("%s %s: %d webhook deliveries queued", event.event_type, dispute.status, added)


async def tell_shopper(store: ShopperEmailStore, trigger: Trigger) -> bool:
    """Queue the email this outcome sends the payment's shopper, if any; an outcome whose
    payment is not known yet waits for it. False when it waits."""
    payment = await store.payment(trigger.payment_id)
    if payment is None:
        # payment.initiated travels on another topic and may be consumed later.
        await store.add_waiting(trigger)
        log.info("%s waits for its payment.initiated", trigger.event_type)
        return False
    if not payment.email or email_kind(payment, trigger) is None:
        return True  # most payments: nothing to tell, so no merchant look-up either
    email = plan_email(payment, trigger, await store.merchant(payment.merchant_id))
    if email is not None and await store.add_email(email):
        log.info("%s email %s queued for the shopper", email.kind.value, email.id)
    return True


async def resolve_waiting(pool: asyncpg.Pool, limit: int = 100) -> int:
    """Outcomes still waiting although their payment is known: another replica consumed the
    payment while this one parked the outcome, neither seeing the other's uncommitted row.
    Run now and then by the email worker; returns how many it resolved."""
    async with pool.acquire() as conn, conn.transaction():
        store = ShopperEmailRepository(conn)
        triggers = await store.take_resolvable(limit)
        for trigger in triggers:
            await tell_shopper(store, trigger)
    return len(triggers)


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
