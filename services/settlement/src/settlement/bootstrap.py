"""Builds the settlement service. Nothing is created at import time."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

from sanalpos_common.db import unit_of_work
from sanalpos_common.metrics import SettlementMetrics
from sanalpos_common.service import Platform, start_platform
from settlement.adapters.rate_providers import FileRateProvider
from settlement.adapters.repositories import PostgresRepositories
from settlement.config import SettlementSettings
from settlement.domain.fx import RateSource
from settlement.entrypoints.admin import Container, build_app
from settlement.entrypoints.recon_admin import router as recon_router
from settlement.service_layer.batch_closing import BatchCloser, Clock, utc_now
from settlement.service_layer.disputes import DisputeDesk
from settlement.service_layer.fx import store_rates
from settlement.service_layer.handlers import SettlementHandlers
from settlement.service_layer.ledger_days import LedgerDayJob
from settlement.service_layer.payouts import PayoutJob
from settlement.service_layer.reconciliation import Reconciler

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
CONSUMER = "settlement"
log = logging.getLogger(__name__)


async def bootstrap(
    settings: SettlementSettings | None = None, *, clock: Clock = utc_now
) -> Platform:
    settings = settings or SettlementSettings()
    app = build_app()
    platform = await start_platform(CONSUMER, settings, MIGRATIONS, app=app)
    disputes = DisputeDesk(
        platform.pool,
        platform.name,
        fees=dict(settings.dispute_fees),
        response_days=settings.dispute_response_days,
        grace=timedelta(seconds=settings.dispute_answer_grace_s),
        interval_s=settings.dispute_expiry_interval_s,
        clock=clock,
    )
    handlers = SettlementHandlers(
        PostgresRepositories(), settings.fallback_fee_plan, disputes=disputes
    )
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
    ledger_days = LedgerDayJob(
        platform.pool, platform.name, interval_s=settings.ledger_day_interval_s
    )
    platform.runtime.add_loop("ledger-day-job", ledger_days.run, ledger_days.stop)
    platform.health.add("ledger-day-job", ledger_days.readiness)
    platform.runtime.add_loop("dispute-expiry", disputes.run, disputes.stop)
    platform.health.add("dispute-expiry", disputes.readiness)
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
        ledger_days=ledger_days,
        disputes=disputes,
        fx_max_rate_age_s=settings.fx_max_rate_age_s,
    )
    await load_rate_files(platform, settings)
    return platform


async def load_rate_files(platform: Platform, settings: SettlementSettings) -> None:
    """The configured rate files, once at start-up (rates already held are skipped)."""
    max_age = timedelta(seconds=settings.fx_max_rate_age_s)
    for source, path in settings.fx_rate_files.items():
        provider = FileRateProvider(RateSource(source), path)
        quotes = await provider.quotes()
        async with unit_of_work(platform.pool, producer=platform.name) as uow:
            added = await store_rates(uow, quotes, max_age)
        log.info("rate file %s (%s): %d rates, %d new", path, source, len(quotes), len(added))
