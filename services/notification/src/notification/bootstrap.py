"""Builds the notification service. Nothing is created at import time."""

from __future__ import annotations

from pathlib import Path

from notification.adapters.http_sender import HttpSender, build_client
from notification.adapters.repository import DeliveryStore, WebhookRepository
from notification.config import NotificationSettings
from notification.domain.retry import RetryPolicy
from notification.service_layer.delivery_worker import DeliveryWorker
from notification.service_layer.handlers import NotificationHandlers, load_static_endpoints
from sanalpos_common.db import UnitOfWork, unit_of_work
from sanalpos_common.metrics import WebhookMetrics
from sanalpos_common.service import Platform, start_platform

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
CONSUMER = "notification"


def webhook_repository(uow: UnitOfWork) -> WebhookRepository:
    return WebhookRepository(uow.conn)


async def bootstrap(settings: NotificationSettings | None = None) -> Platform:
    settings = settings or NotificationSettings()
    platform = await start_platform(CONSUMER, settings, MIGRATIONS)
    allow_http = settings.http_endpoints_allowed

    if settings.static_endpoints:
        async with unit_of_work(platform.pool) as uow:
            await load_static_endpoints(
                webhook_repository(uow),
                settings.static_endpoints,
                allow_http_endpoints=allow_http,
                rotation_grace_s=settings.secret_rotation_grace_s,
            )

    handlers = NotificationHandlers(
        webhook_repository,
        allow_http_endpoints=allow_http,
        rotation_grace_s=settings.secret_rotation_grace_s,
    )
    platform.consume_table(handlers.table(), group_id=settings.consumer_group)

    client = build_client(settings.delivery_timeout_s, settings.delivery_concurrency)
    worker = DeliveryWorker(
        store=DeliveryStore(platform.pool),
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
    return platform
