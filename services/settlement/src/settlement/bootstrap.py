"""Builds the settlement service. Nothing is created at import time."""

from __future__ import annotations

from pathlib import Path

from sanalpos_common.metrics import SettlementMetrics
from sanalpos_common.service import Platform, start_platform
from settlement.adapters.repositories import PostgresRepositories
from settlement.config import SettlementSettings
from settlement.entrypoints.admin import Container, build_app
from settlement.entrypoints.recon_admin import router as recon_router
from settlement.service_layer.batch_closing import BatchCloser, Clock, utc_now
from settlement.service_layer.handlers import SettlementHandlers
from settlement.service_layer.payouts import PayoutJob
from settlement.service_layer.reconciliation import Reconciler

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
CONSUMER = "settlement"


async def bootstrap(
    settings: SettlementSettings | None = None, *, clock: Clock = utc_now
) -> Platform:
    settings = settings or SettlementSettings()
    app = build_app()
    platform = await start_platform(CONSUMER, settings, MIGRATIONS, app=app)
    handlers = SettlementHandlers(PostgresRepositories(), settings.fallback_fee_plan)
    platform.consume_table(handlers.table(), group_id=settings.consumer_group)
    metrics = SettlementMetrics(platform.metrics.registry)
    closer = BatchCloser(
        platform.pool,
        platform.name,
        value_date_delay_days=settings.value_date_delay_days,
        calendar=settings.calendar(),
        interval_s=settings.batch_close_interval_s,
        clock=clock,
        metrics=metrics,
    )
    platform.runtime.add_loop("batch-closer", closer.run, closer.stop)
    platform.health.add("batch-closer", closer.readiness)
    payouts = PayoutJob(
        platform.pool,
        platform.name,
        folder=settings.payout_folder(),
        debtor=settings.payout_debtor(),
        calendar=settings.calendar(),
        time_zone=settings.payout_time_zone,
        interval_s=settings.payout_interval_s,
        clock=clock,
    )
    platform.runtime.add_loop("payout-job", payouts.run, payouts.stop)
    platform.health.add("payout-job", payouts.readiness)
    reconciler = Reconciler(
        platform.pool,
        platform.name,
        time_zone=settings.recon_time_zone,
        interval_s=settings.recon_interval_s,
        settle_s=settings.recon_settle_s,
        missing_file_after_s=settings.recon_missing_file_after_s,
        clock=clock,
        metrics=metrics,
    )
    platform.runtime.add_loop("reconciliation", reconciler.run, reconciler.stop)
    platform.health.add("reconciliation", reconciler.readiness)
    app.state.reconciler = reconciler
    app.include_router(recon_router)
    app.state.container = Container(
        pool=platform.pool,
        closer=closer,
        admin_token=settings.admin_token.get_secret_value(),
        payouts=payouts,
        producer=platform.name,
    )
    return platform
