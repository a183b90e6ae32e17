"""The notification handlers, routed through the service's own table, with an in-memory
webhook store and a unit of work that has no database."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from notification.adapters.endpoint_secrets import EndpointSecrets
from notification.domain.signing import generate_secret
from notification.domain.webhooks import Endpoint, NewDelivery
from notification.service_layer.handlers import NotificationHandlers
from sanalpos_common import topics
from sanalpos_common.crypto import DecryptionError
from sanalpos_common.crypto.sealed import SealedKeyring
from sanalpos_common.crypto.webhook_secrets import seal_webhook_secret
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


KEYRING = SealedKeyring.generate("webhook")
"""Notification's keyring; intake seals with its public half."""


def table(store: FakeWebhooks) -> NotificationHandlers:
    return NotificationHandlers(
        lambda uow: store,
        allow_http_endpoints=False,
        rotation_grace_s=60,
        secrets=EndpointSecrets(KEYRING),
    )


def registered(
    merchant: str = MERCHANT, enabled: bool = True, secret: str | None = None
) -> WebhookEndpointRegistered:
    endpoint_id = uuid.uuid4()
    secret = secret or generate_secret()
    return WebhookEndpointRegistered(
        endpoint_id=endpoint_id,
        merchant_id=merchant,
        url=f"https://{merchant.replace('_', '-')}.example.com/hooks",
        secret_ciphertext=seal_webhook_secret(KEYRING.public_only(), secret, merchant, endpoint_id),
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
        topics.PAYOUT_UPDATED,
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
    insecure = registered().model_copy(update={"url": "http://mer-unit.example.com/hooks"})
    with pytest.raises(ValueError):
        await deliver(table(store).table(), insecure, producer="notification")
    assert store.endpoints == {}


async def test_the_sealed_secret_is_opened_to_sign(store: FakeWebhooks) -> None:
    secret = generate_secret()
    await deliver(table(store).table(), registered(secret=secret), producer="notification")
    [(endpoint, _)] = store.endpoints.values()
    assert endpoint.secret == secret


async def test_a_secret_sealed_for_another_endpoint_does_not_open(store: FakeWebhooks) -> None:
    first, second = registered(), registered()
    swapped = second.model_copy(update={"secret_ciphertext": first.secret_ciphertext})
    with pytest.raises(DecryptionError):
        await deliver(table(store).table(), swapped, producer="notification")
    assert store.endpoints == {}


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.1/hooks",
        "https://localhost/hooks",
        "https://vault.internal/hooks",
    ],
)
async def test_an_endpoint_on_an_internal_host_is_refused(store: FakeWebhooks, url: str) -> None:
    internal = registered().model_copy(update={"url": url})
    with pytest.raises(ValueError):
        await deliver(table(store).table(), internal, producer="notification")
    assert store.endpoints == {}
