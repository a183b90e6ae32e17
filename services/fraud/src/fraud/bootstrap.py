"""Builds the fraud service. Nothing is created at import time (faust's App included)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from fraud.config import SERVICE, FraudSettings
from fraud.domain.policy import Bands
from fraud.entrypoints import admin_api
from fraud.entrypoints.fraud_stream import FraudStream
from fraud.model.hook import ModelHook
from fraud.service_layer.feedback import on_fraud_reported
from fraud.service_layer.scoring import PaymentScoring
from sanalpos_common import topics
from sanalpos_common.messaging.routing import HandlerTable
from sanalpos_common.schemas.events import FraudReported
from sanalpos_common.service import Platform, start_platform

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
FEEDBACK_INBOX = "fraud-feedback"
"""Inbox consumer (and consumer loop) of the feedback events; dead letters: dlq.fraud-feedback.v1."""
FEEDBACK_HANDLERS = HandlerTable({FraudReported: on_fraud_reported})


async def bootstrap(settings: FraudSettings | None = None) -> Platform:
    settings = settings or FraudSettings()
    app = FastAPI(title="sanalpos fraud")
    platform = await start_platform(
        SERVICE,
        settings,
        MIGRATIONS,
        app=app,
        consumed_topics=[topics.dead_letter_topic(FEEDBACK_INBOX)],
    )
    rules = settings.scoring_rules()
    scoring = PaymentScoring(
        pool=platform.pool,
        rules=rules,
        inbox_consumer=settings.inbox_consumer,
        model=ModelHook.load(settings.model_path) if settings.model_enabled else None,
    )
    stream = FraudStream(settings, scoring, platform.producer, platform.metrics)
    # faust runs in this process's event loop as one supervised runtime loop, next to the
    # outbox relay and the HTTP server (which serves /healthz from the first second).
    platform.runtime.add_loop("faust", stream.run, stream.stop)
    platform.runtime.on_close(stream.close)
    platform.health.add("faust", stream.readiness)
    platform.consume_table(
        FEEDBACK_HANDLERS, consumer=FEEDBACK_INBOX, group_id=settings.feedback_consumer_group
    )
    admin_api.install(
        app,
        admin_api.Container(
            pool=platform.pool,
            admin_token=settings.admin_token.get_secret_value(),
            default_bands=Bands(rules.review_threshold, rules.decline_threshold),
        ),
    )
    return platform
