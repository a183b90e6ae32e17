"""The notification handlers, routed through the service's own table, with an in-memory
webhook store and a unit of work that has no database."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time

import pytest

from notification.adapters.endpoint_secrets import EndpointSecrets
from notification.domain.shopper_emails import (
    EmailKind,
    Merchant,
    NewEmail,
    ShopperPayment,
    Trigger,
)
from notification.domain.signing import generate_secret
from notification.domain.webhooks import Endpoint, NewDelivery
from notification.service_layer.handlers import NotificationHandlers
from sanalpos_common import topics
from sanalpos_common.crypto import DecryptionError
from sanalpos_common.crypto.sealed import SealedKeyring
from sanalpos_common.crypto.webhook_secrets import seal_webhook_secret
from sanalpos_common.schemas.events import (
    EncryptedCard,
    MerchantUpdated,
    PaymentCaptured,
    PaymentInitiated,
    Shopper,
    WebhookEndpointRegistered,
)
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
        topics.PAYMENT_INITIATED,  # the shopper's contact and the payment's facts (emails)
        topics.MERCHANT_UPDATED,  # the merchant's display name (emails)
        topics.PAYOUT_UPDATED,
        topics.DISPUTE_UPDATED,
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


# ----------------------------------------------------------------------------- shopper emails


@dataclass
class FakeEmails:
    payments: dict[uuid.UUID, ShopperPayment] = field(default_factory=dict)
    merchants: dict[str, Merchant] = field(default_factory=dict)
    waiting: dict[uuid.UUID, Trigger] = field(default_factory=dict)
    emails: dict[uuid.UUID, NewEmail] = field(default_factory=dict)

    async def add_payment(self, payment: ShopperPayment) -> None:
        self.payments.setdefault(payment.payment_id, payment)

    async def payment(self, payment_id: uuid.UUID) -> ShopperPayment | None:
        return self.payments.get(payment_id)

    async def upsert_merchant(self, event: MerchantUpdated) -> None:
        self.merchants[event.merchant_id] = Merchant(event.name, event.time_zone)

    async def merchant(self, merchant_id: str) -> Merchant | None:
        return self.merchants.get(merchant_id)

    async def add_waiting(self, trigger: Trigger) -> None:
        self.waiting[trigger.message_id] = trigger

    async def take_waiting(self, payment_id: uuid.UUID) -> list[Trigger]:
        taken = [t for t in self.waiting.values() if t.payment_id == payment_id]
        for t in taken:
            del self.waiting[t.message_id]
        return taken

    async def add_email(self, email: NewEmail) -> bool:
        if email.id in self.emails:
            return False
        self.emails[email.id] = email
        return True


def with_emails(store: FakeWebhooks, emails: FakeEmails) -> NotificationHandlers:
    return replace(table(store), emails=lambda uow: emails)


def initiated(payment_id: uuid.UUID, shopper: Shopper | None) -> PaymentInitiated:
    return PaymentInitiated(
        payment_id=payment_id,
        merchant_id=MERCHANT,
        amount=1_000,
        currency="TRY",
        capture=True,
        installments=1,
        card=EncryptedCard(
            pan_ciphertext="sp3.pan.1.opaque",
            fingerprint="fp1_x",
            bin="41111111",
            last4="1111",
            exp_month=12,
            exp_year=2031,
            brand="visa",
        ),
        created_at=datetime.now(UTC),
        shopper=shopper,
    )


def merchant_updated(name: str) -> MerchantUpdated:
    return MerchantUpdated(
        merchant_id=MERCHANT,
        name=name,
        settlement_currency="TRY",
        time_zone="Europe/Istanbul",
        cutoff_time=time(23, 59),
        fee_plan="standard",
        version=1,
    )


async def test_a_captured_sale_with_a_shopper_address_queues_one_receipt(
    store: FakeWebhooks,
) -> None:
    emails = FakeEmails()
    routes = with_emails(store, emails).table()
    await deliver(routes, merchant_updated("Kitap Evi"), producer="notification")
    event = captured()
    shopper = Shopper(email="ayse@example.com", locale="en")
    await deliver(routes, initiated(event.payment_id, shopper), producer="notification")
    await deliver(routes, event, producer="notification")
    [email] = emails.emails.values()
    assert email.kind is EmailKind.RECEIPT and email.locale == "en"
    assert email.subject == "Your receipt from Kitap Evi"


async def test_an_outcome_before_its_payment_waits_for_it(store: FakeWebhooks) -> None:
    emails = FakeEmails()
    routes = with_emails(store, emails).table()
    event = captured()
    await deliver(routes, event, producer="notification")
    assert not emails.emails and len(emails.waiting) == 1
    shopper = Shopper(email="ayse@example.com")
    await deliver(routes, initiated(event.payment_id, shopper), producer="notification")
    assert not emails.waiting
    [email] = emails.emails.values()
    assert email.kind is EmailKind.RECEIPT and email.locale == "tr"


async def test_a_payment_without_a_shopper_address_gets_no_email(store: FakeWebhooks) -> None:
    emails = FakeEmails()
    routes = with_emails(store, emails).table()
    late, early = captured(), captured()
    await deliver(routes, early, producer="notification")  # waits, then is dropped
    for event in (late, early):
        await deliver(routes, initiated(event.payment_id, None), producer="notification")
    await deliver(routes, late, producer="notification")
    await deliver(routes, initiated(uuid.uuid4(), Shopper(name="No Address")), producer="x")
    assert not emails.emails and not emails.waiting
