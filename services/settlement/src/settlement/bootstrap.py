"""Builds the settlement service. Nothing is created at import time."""

from __future__ import annotations

from pathlib import Path

from sanalpos_common import topics
from sanalpos_common.messaging import idempotent
from sanalpos_common.service import Platform, start_platform
from settlement.config import SettlementSettings
from settlement.domain.ledger import FeePlan
from settlement.service_layer.handlers import SettlementHandlers

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
CONSUMER = "settlement"


async def bootstrap(settings: SettlementSettings | None = None) -> Platform:
    settings = settings or SettlementSettings()
    platform = await start_platform(CONSUMER, settings, MIGRATIONS)
    handlers = SettlementHandlers(
        default_plan=FeePlan(settings.default_mdr_bps, settings.default_installment_bps)
    )
    platform.consume(
        [topics.PAYMENT_CAPTURED], idempotent(platform.pool, CONSUMER, handlers.handle)
    )
    return platform
