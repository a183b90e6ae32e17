"""Builds the authorization service. Nothing is created at import time."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from authorization.adapters.acs_simulator import AcsSimulator
from authorization.adapters.issuer_simulator import IssuerSimulator
from authorization.adapters.repositories import PostgresRepositories
from authorization.config import AuthorizationSettings
from authorization.domain.seed_cards import SIMULATOR_CARDS
from authorization.entrypoints import disputes_admin
from authorization.entrypoints.acs_page import AcsPage
from authorization.entrypoints.admin import router as admin_router
from authorization.entrypoints.disputes_admin import IssuerDesk
from authorization.service_layer.challenge_expiry import ChallengeExpiry
from authorization.service_layer.clearing import ClearingJob
from authorization.service_layer.expiry import PreauthExpiry
from authorization.service_layer.handlers import AuthorizationHandlers
from sanalpos_common.crypto.service_keys import card_keys_from_settings
from sanalpos_common.http import install_problem_handlers
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
    app = FastAPI(title="sanalpos authorization")
    install_problem_handlers(app)  # the ops APIs (the ACS pages answer in HTML)
    platform = await start_platform(CONSUMER, settings, MIGRATIONS, app=app)
    issuer_key = settings.issuer_key.get_secret_value().encode()
    issuer = IssuerSimulator(issuer_key, settings.default_limit_major)
    show_code = settings.three_ds_show_code
    acs = AcsSimulator(
        public_url=settings.acs_public_url,
        key=issuer_key,
        challenge_ttl=timedelta(seconds=settings.three_ds_challenge_ttl_s),
        max_attempts=settings.three_ds_max_attempts,
        timeout_s=settings.three_ds_acs_timeout_s,
        show_code=settings.is_development if show_code is None else show_code,
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
        acs=acs,
    )
    secure_cookie = settings.acs_public_url.startswith("https://")
    app.include_router(AcsPage(platform.pool, handlers, secure_cookie).router())
    app.state.admin_token = settings.admin_token.get_secret_value()  # every /admin router
    app.state.issuer_desk = IssuerDesk(platform.pool, platform.name)
    app.include_router(disputes_admin.router)
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
    challenges = ChallengeExpiry(
        platform.pool,
        handlers,
        producer=platform.name,
        interval_s=settings.three_ds_expiry_scan_interval_s,
    )
    platform.runtime.add_loop("three-ds-expiry", challenges.run, challenges.stop)
    clearing = ClearingJob(
        platform.pool,
        platform.name,
        time_zone=settings.clearing_time_zone,
        interval_s=settings.clearing_interval_s,
        settle_s=settings.clearing_settle_s,
        clock=handlers.clock,
    )
    platform.runtime.add_loop("clearing-file", clearing.run, clearing.stop)
    platform.health.add("clearing-file", clearing.readiness)
    app.state.clearing = clearing
    app.include_router(admin_router)
    return platform
