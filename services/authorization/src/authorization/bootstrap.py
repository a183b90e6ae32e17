"""Builds the authorization service. Nothing is created at import time."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from authorization.adapters.issuer_simulator import IssuerSimulator
from authorization.adapters.repositories import PostgresRepositories
from authorization.config import AuthorizationSettings
from authorization.domain.seed_cards import SIMULATOR_CARDS
from authorization.service_layer.expiry import PreauthExpiry
from authorization.service_layer.handlers import AuthorizationHandlers
from sanalpos_common.crypto.service_keys import card_keys_from_settings
from sanalpos_common.metrics import PaymentMetrics
from sanalpos_common.service import Platform, start_platform

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
CONSUMER = "authorization"


async def bootstrap(settings: AuthorizationSettings | None = None) -> Platform:
    settings = settings or AuthorizationSettings()
    keys = card_keys_from_settings(  # fail fast: a keyring that cannot be loaded stops start-up
        settings.pan_keyring.get_secret_value(),
        settings.cvc_keyring.get_secret_value() if settings.cvc_keyring else None,
        is_development=settings.is_development,
        cvc_rotate_file=settings.cvc_rotate_file,
    )
    platform = await start_platform(CONSUMER, settings, MIGRATIONS)
    issuer = IssuerSimulator(
        settings.issuer_key.get_secret_value().encode(), settings.default_limit_major
    )
    if settings.seed_test_cards and settings.is_development:
        async with platform.pool.acquire() as conn:
            await issuer.seed(conn, SIMULATOR_CARDS)
    repositories = PostgresRepositories()
    handlers = AuthorizationHandlers(
        issuer=issuer,
        repositories=repositories,
        pan_keyring=keys.pan,
        cvc_keyring=keys.cvc,
        offload=keys.offload,
        preauth_expiry=timedelta(seconds=settings.preauth_expiry_s),
        metrics=PaymentMetrics(platform.metrics.registry),
    )
    keys.add_loops(platform.runtime, settings.key_reload_interval_s, maintain_cvc_file=False)
    platform.consume_table(handlers.table(), group_id=settings.consumer_group)
    expiry = PreauthExpiry(
        platform.pool,
        issuer,
        repositories,
        clock=handlers.clock,
        producer=platform.name,
        interval_s=settings.preauth_expiry_scan_interval_s,
        batch_size=settings.preauth_expiry_batch_size,
    )
    platform.runtime.add_loop("preauth-expiry", expiry.run, expiry.stop)
    return platform
