"""Builds the intake service. Nothing is created at import time."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import asyncpg

from intake.adapters.bins import BinRepository
from intake.adapters.merchants import MerchantRepository, MerchantStore
from intake.adapters.outcome_listener import start_outcome_listener
from intake.adapters.used_jwe import UsedJweRepository
from intake.config import DEMO_API_KEY, DEMO_MERCHANT_ID, IntakeSettings
from intake.entrypoints.http.app import build_app
from intake.entrypoints.http.deps import Container
from intake.entrypoints.http.rate_limit import ApiGuardSettings, KeyRateLimits
from intake.entrypoints.kafka.consumer import (
    KafkaEntrySettings,
    signing_keyring,
    start_kafka_requests,
)
from intake.service_layer.card_protection import CardProtection
from intake.service_layer.checkout import CheckoutSettings
from intake.service_layer.checkout_signing import ResultSigner, load_or_create_dev_signing_key
from intake.service_layer.client_encryption import (
    ClientEncryption,
    generate_private_key_pem,
    load_or_create_dev_key,
)
from intake.service_layer.consumed import consumer_handlers
from intake.service_layer.export import Exports, ExportSlots
from intake.service_layer.idempotency import purge_forever
from intake.service_layer.merchants import ensure_merchant
from intake.service_layer.webhooks import WebhookRegistration
from sanalpos_common.crypto.providers import LiveKeyring, provider_from_spec
from sanalpos_common.crypto.service_keys import card_keys_from_settings, secret_value
from sanalpos_common.crypto.webhook_secrets import KEYRING_ID as WEBHOOK_KEYRING_ID
from sanalpos_common.db import create_pool
from sanalpos_common.metrics import AuthorizationLatency
from sanalpos_common.service import Platform, start_platform

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
CONSUMER = "intake"
log = logging.getLogger(__name__)


def client_key_pem(settings: IntakeSettings) -> bytes:
    """The configured key; in development only, a generated one kept in the state folder."""
    if settings.client_encryption_key is not None:
        return settings.client_encryption_key.get_secret_value().encode()
    if not settings.is_development:  # the settings refuse this already; belt and braces
        raise RuntimeError("INTAKE_CLIENT_ENCRYPTION_KEY is required outside development")
    try:
        return load_or_create_dev_key(settings.dev_client_key_path)
    except OSError as exc:  # e.g. a container whose state folder is read-only
        log.warning(
            "development client-encryption key is ephemeral (%s not writable: %s); set "
            "INTAKE_CLIENT_ENCRYPTION_KEY or SANALPOS_STATE_DIR to keep it across restarts",
            settings.dev_client_key_path.parent,
            type(exc).__name__,
        )
        return generate_private_key_pem()


async def purge_used_jwe(pool: asyncpg.Pool, every_s: float = 600.0) -> None:
    """Forgets used JWE ids once their tokens would be refused as stale anyway."""
    while True:
        try:
            purged = await UsedJweRepository(pool).purge()
            if purged:
                log.info("purged %d used JWE ids past their expiry", purged)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("used JWE purge failed: %s", type(exc).__name__)
        await asyncio.sleep(every_s)


def checkout_settings(settings: IntakeSettings) -> CheckoutSettings:
    """The page's settings; without a configured signing key outside development, checkout
    is disabled (503) rather than signing results with a key nobody keeps."""
    pem: bytes | None = None
    if settings.checkout_signing_key is not None:
        pem = settings.checkout_signing_key.get_secret_value().encode()
    elif settings.is_development:
        try:
            pem = load_or_create_dev_signing_key(settings.dev_checkout_key_path)
        except OSError as exc:
            log.warning("checkout is disabled: no signing key (%s)", type(exc).__name__)
    else:
        log.warning("checkout is disabled: set INTAKE_CHECKOUT_SIGNING_KEY")
    return CheckoutSettings(
        settings.public_base_url,
        None if pem is None else ResultSigner.from_pem(pem),
        settings.checkout_max_attempts,
        asyncio.Semaphore(max(1, settings.db_pool_size // 2)),
    )


async def bootstrap(settings: IntakeSettings | None = None) -> Platform:
    settings = settings or IntakeSettings()
    client_encryption = ClientEncryption.from_pem(  # fail fast
        client_key_pem(settings), settings.jwe_max_age_s, settings.jwe_clock_skew_s
    )
    keys = card_keys_from_settings(  # fail fast: a keyring that cannot be loaded stops start-up
        settings.pan_keyring.get_secret_value(),
        settings.cvc_keyring.get_secret_value() if settings.cvc_keyring else None,
        is_development=settings.is_development,
        cvc_rotate_file=settings.cvc_rotate_file,
    )
    fingerprint_key = secret_value(settings.fingerprint_key.get_secret_value())
    app = build_app()
    platform = await start_platform(CONSUMER, settings, MIGRATIONS, app=app)
    guard = ApiGuardSettings()
    merchants = MerchantRepository(platform.pool, cache_ttl_s=guard.auth_cache_ttl_s)
    await BinRepository(platform.pool).load_seed()
    if settings.is_development and settings.seed_demo_merchant:
        await ensure_merchant(platform.pool, DEMO_MERCHANT_ID, "Demo Merchant", DEMO_API_KEY)
    elif not settings.is_development:
        await MerchantStore(platform.pool).revoke_by_key(DEMO_API_KEY)
    export_pool = await create_pool(
        settings.database_url.get_secret_value(), min_size=0, max_size=settings.export_pool_size
    )
    platform.runtime.on_close(export_pool.close)
    app.state.container = container = Container(
        pool=platform.pool,
        merchants=merchants,
        protection=CardProtection(
            pan_keyring=keys.pan,
            cvc_keyring=keys.cvc,
            fingerprint_key=fingerprint_key.encode(),
            offload=keys.offload,
        ),
        admin_token=settings.admin_token.get_secret_value(),
        client_encryption=client_encryption,
        webhooks=WebhookRegistration(
            announce_keyring=LiveKeyring(
                provider_from_spec(
                    WEBHOOK_KEYRING_ID, settings.webhook_secret_keyring.get_secret_value()
                ),
                WEBHOOK_KEYRING_ID,
            ),
            replay_keyring=signing_keyring(KafkaEntrySettings()),
            allow_loopback=settings.webhook_allow_loopback,
            max_endpoints=settings.webhook_max_endpoints,
        ),
        exports=Exports(
            export_pool, ExportSlots(settings.export_max_concurrent), settings.export_retry_after_s
        ),
        rate_limits=KeyRateLimits.from_settings(guard),
        waiters=start_outcome_listener(platform, settings.database_url.get_secret_value()).waiters,
        max_wait_s=settings.prefer_wait_max_s,
        allow_replay_time=settings.allow_replay_time,
        checkout=checkout_settings(settings),
    )
    keys.add_loops(platform.runtime, settings.key_reload_interval_s, maintain_cvc_file=True)
    platform.health.add("cvc-keys", keys.cvc_ready)
    platform.consume_table(
        consumer_handlers(AuthorizationLatency(platform.metrics.registry)),
        consumer=CONSUMER,
        group_id=settings.consumer_group,
    )
    purge_stop = asyncio.Event()  # idempotency keys are kept 24 hours, then deleted
    platform.runtime.add_loop(
        "idempotency-purge", lambda: purge_forever(platform.pool, purge_stop), purge_stop.set
    )
    platform.runtime.add_forever("used-jwe-purge", lambda: purge_used_jwe(platform.pool))
    await start_kafka_requests(platform, app, container.protection, client_encryption)
    return platform
