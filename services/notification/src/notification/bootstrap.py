"""Builds the notification service. Nothing is created at import time."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import asyncpg

from notification.adapters.endpoint_secrets import EndpointSecrets
from notification.adapters.history_purge import HistoryPurge, purged_counter
from notification.adapters.http_sender import HttpSender, build_client
from notification.adapters.payment_events import PaymentEventStore
from notification.adapters.repository import (
    DeliveryStore,
    WebhookRepository,
    seal_waiting_secrets,
)
from notification.adapters.shopper_emails import EmailOutbox, ShopperEmailRepository
from notification.adapters.smtp_sender import SmtpConfig, SmtpSender
from notification.config import NotificationSettings
from notification.domain.retry import RetryPolicy
from notification.service_layer.delivery_worker import DeliveryWorker
from notification.service_layer.email_worker import EmailMetrics, EmailWorker
from notification.service_layer.handlers import (
    NotificationHandlers,
    load_static_endpoints,
    resolve_waiting,
)
from notification.service_layer.payment_events import PaymentEventHandler
from sanalpos_common.crypto.providers import LiveKeyring, provider_from_spec
from sanalpos_common.crypto.webhook_secrets import KEYRING_ID
from sanalpos_common.db import UnitOfWork, unit_of_work
from sanalpos_common.messaging import idempotent
from sanalpos_common.metrics import WebhookMetrics
from sanalpos_common.service import Platform, start_platform

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
CONSUMER = "notification"
log = logging.getLogger(__name__)


def endpoint_secrets(settings: NotificationSettings) -> EndpointSecrets:
    spec = settings.webhook_secret_keyring.get_secret_value()
    return EndpointSecrets(LiveKeyring(provider_from_spec(KEYRING_ID, spec), KEYRING_ID))


def consumer_handler(
    pool: asyncpg.Pool, settings: NotificationSettings, secrets: EndpointSecrets
) -> PaymentEventHandler:
    """What the consumer calls for every message: payment events in one statement each,
    the others (and batches that mix them) under the inbox in one transaction."""
    handlers = NotificationHandlers(
        lambda uow: WebhookRepository(uow.conn, secrets),
        allow_http_endpoints=settings.http_endpoints_allowed,
        rotation_grace_s=settings.secret_rotation_grace_s,
        secrets=secrets,
        allow_loopback=settings.webhook_allow_loopback,
        emails=lambda uow: ShopperEmailRepository(uow.conn),
    )
    table = handlers.table()
    transactional = idempotent(pool, CONSUMER, table, producer=CONSUMER)
    return PaymentEventHandler(PaymentEventStore(pool, CONSUMER), transactional, table.topics)


async def bootstrap(settings: NotificationSettings | None = None) -> Platform:
    settings = settings or NotificationSettings()
    platform = await start_platform(CONSUMER, settings, MIGRATIONS)
    allow_http = settings.http_endpoints_allowed
    secrets = endpoint_secrets(settings)
    sealed = await seal_waiting_secrets(platform.pool, secrets)
    if sealed:
        log.info("sealed %d webhook secrets kept in clear before migration 0002", sealed)

    def webhook_repository(uow: UnitOfWork) -> WebhookRepository:
        return WebhookRepository(uow.conn, secrets)

    if settings.static_endpoints:
        async with unit_of_work(platform.pool) as uow:
            await load_static_endpoints(
                webhook_repository(uow),
                settings.static_endpoints,
                allow_http_endpoints=allow_http,
                rotation_grace_s=settings.secret_rotation_grace_s,
                allow_loopback=settings.webhook_allow_loopback,
            )

    consumer = consumer_handler(platform.pool, settings, secrets)
    platform.consume(
        consumer.topics,
        consumer,
        name=CONSUMER,
        group_id=settings.consumer_group,
    )

    client = build_client(
        settings.delivery_timeout_s,
        settings.delivery_concurrency,
        allow_loopback=settings.webhook_allow_loopback,
    )
    worker = DeliveryWorker(
        store=DeliveryStore(platform.pool, secrets),
        sender=HttpSender(client),
        policy=RetryPolicy(
            base_s=settings.retry_base_s,
            cap_s=settings.retry_cap_s,
            max_attempts=settings.retry_max_attempts,
        ),
        metrics=WebhookMetrics(platform.metrics.registry),
        concurrency=settings.delivery_concurrency,
        lease_s=max(settings.delivery_lease_s, 2 * settings.delivery_timeout_s),
        idle_poll_s=settings.worker_idle_poll_s,
        stall_after_s=settings.worker_stall_after_s,
    )
    platform.runtime.add_loop("webhook-delivery", worker.run, worker.stop)
    platform.metrics.add_sampler(worker.sample)
    # Closers run in reverse: the client closes before the pool and the producer.
    platform.runtime.on_close(client.aclose)
    platform.health.add("delivery-worker", worker.readiness)

    emails = email_worker(settings, platform)
    platform.runtime.add_loop("shopper-email", emails.run, emails.stop)
    platform.metrics.add_sampler(emails.sample)
    platform.health.add("email-worker", emails.readiness)

    history = HistoryPurge(
        platform.pool,
        settings.history_retention_days,
        purged=purged_counter(platform.metrics.registry),
    )
    history_stop = asyncio.Event()
    platform.runtime.add_loop(
        "history-purge", lambda: history.run_until(history_stop), history_stop.set
    )
    return platform


def smtp_config(settings: NotificationSettings) -> SmtpConfig:
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        tls=settings.smtp_tls,
        username=settings.smtp_username,
        password=password,
        from_address=settings.smtp_from,
        timeout_s=settings.smtp_timeout_s,
    )


def email_worker(settings: NotificationSettings, platform: Platform) -> EmailWorker:
    return EmailWorker(
        outbox=EmailOutbox(platform.pool),
        sender=SmtpSender(smtp_config(settings)),
        policy=RetryPolicy(
            base_s=settings.email_retry_base_s,
            cap_s=settings.email_retry_cap_s,
            max_attempts=settings.email_retry_max_attempts,
        ),
        metrics=EmailMetrics(platform.metrics.registry),
        concurrency=settings.email_concurrency,
        lease_s=max(settings.email_lease_s, 2 * settings.smtp_timeout_s),
        idle_poll_s=settings.worker_idle_poll_s,
        stall_after_s=settings.worker_stall_after_s,
        waiting_retention_h=settings.email_waiting_retention_h,
        resolve_waiting=lambda: resolve_waiting(platform.pool),
    )
