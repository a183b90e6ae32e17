"""The notification handlers, routed through the service's own table, with an in-memory
webhook store and a unit of work that has no database."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from notification.domain.signing import generate_secret
from notification.domain.webhooks import Endpoint, NewDelivery
from notification.service_layer.handlers import NotificationHandlers
from sanalpos_common import topics
from sanalpos_common.schemas.events import PaymentCaptured, WebhookEndpointRegistered
from sanalpos_common.testing import deliver

MERCHANT = "mer_unit"


@dataclass
class FakeWebhooks:
    endpoints: dict[uuid.UUID, tuple[Endpoint, str]] = field(default_factory=dict)
    deliveries: dict[uuid.UUID, NewDelivery] = field(default_factory=dict)

    async def upsert_endpoint(
        self, endpoint: Endpoint, *, source: str, rotation_grace_s: float
    ) -> None:
        self.endpoints[endpoint.endpoint_id] = (endpoint, source)

    async def enabled_endpoints(self, merchant_id: str) -> list[Endpoint]:
        return [e for e, _ in self.endpoints.values() if e.enabled and e.merchant_id == merchant_id]

    async def add_deliveries(self, deliveries: Sequence[NewDelivery]) -> int:
        new = [d for d in deliveries if d.id not in self.deliveries]
        self.deliveries.update((d.id, d) for d in new)
        return len(new)


@pytest.fixture
def store() -> FakeWebhooks:
    return FakeWebhooks()


def table(store: FakeWebhooks) -> NotificationHandlers:
    return NotificationHandlers(lambda uow: store, allow_http_endpoints=False, rotation_grace_s=60)


def registered(merchant: str = MERCHANT, enabled: bool = True) -> WebhookEndpointRegistered:
    return WebhookEndpointRegistered(
        endpoint_id=uuid.uuid4(),
        merchant_id=merchant,
        url=f"https://{merchant}.example.com/hooks",
        secret=generate_secret(),
        enabled=enabled,
    )


def captured() -> PaymentCaptured:
    return PaymentCaptured(
        payment_id=uuid.uuid4(),
        merchant_id=MERCHANT,
        amount=1_000,
        currency="TRY",
        installments=1,
        auth_code="A1B2C3",
        authorized_amount=1_000,
    )


def test_the_table_consumes_every_outcome_and_endpoint_registrations(store: FakeWebhooks) -> None:
    assert set(table(store).table().topics) == {
        *topics.OUTCOME_TOPICS,
        topics.WEBHOOK_ENDPOINT_REGISTERED,
    }


async def test_an_outcome_is_queued_once_for_each_enabled_endpoint_of_its_merchant(
    store: FakeWebhooks,
) -> None:
    routes = table(store).table()
    mine, off, other = registered(), registered(enabled=False), registered("mer_other")
    for endpoint in (mine, off, other):
        await deliver(routes, endpoint, producer="notification")
    assert {source for _, source in store.endpoints.values()} == {"event"}

    event = captured()
    uow = await deliver(routes, event, producer="notification")

    [delivery] = store.deliveries.values()
    assert (delivery.endpoint_id, delivery.payment_id, delivery.merchant_id) == (
        mine.endpoint_id,
        event.payment_id,
        MERCHANT,
    )
    assert uow.cause is not None and delivery.message_id == uow.cause.message_id
    assert uow.outbox == []


async def test_an_endpoint_with_a_plain_http_url_is_refused(store: FakeWebhooks) -> None:
    insecure = registered().model_copy(update={"url": "http://mer_unit.example.com/hooks"})
    with pytest.raises(ValueError):
        await deliver(table(store).table(), insecure, producer="notification")
    assert store.endpoints == {}
