"""Builds the fraud service. Nothing is created at import time (faust's App included)."""

from __future__ import annotations

from pathlib import Path

from fraud.adapters.stream import FraudStream
from fraud.config import FraudSettings
from fraud.service_layer.scoring import PaymentScoring
from sanalpos_common.service import Platform, start_platform

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
SERVICE = "fraud"


async def bootstrap(settings: FraudSettings | None = None) -> Platform:
    settings = settings or FraudSettings()
    platform = await start_platform(SERVICE, settings, MIGRATIONS)
    scoring = PaymentScoring(
        pool=platform.pool, rules=settings.scoring_rules(), inbox_consumer=settings.inbox_consumer
    )
    stream = FraudStream(settings, scoring, platform.producer, platform.metrics)
    # faust runs in this process's event loop as one supervised runtime loop, next to the
    # outbox relay and the HTTP server (which serves /healthz from the first second).
    platform.runtime.add_loop("faust", stream.run, stream.stop)
    platform.runtime.on_close(stream.close)
    platform.health.add("faust", stream.readiness)
    return platform
