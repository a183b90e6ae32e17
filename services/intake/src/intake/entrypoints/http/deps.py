"""Everything a route depends on, through `Depends`: the container bootstrap puts on
`app.state`, the calling merchant, the operator's credential and the request's headers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import asyncpg
from fastapi import Depends, Header, Request

from intake.adapters.merchants import MerchantRepository
from intake.adapters.signing_secrets import SigningSecretStore
from intake.entrypoints.http.rate_limit import KeyRateLimits, default_rate_limits
from intake.service_layer.card_protection import CardProtection
from intake.service_layer.checkout import CheckoutSettings
from intake.service_layer.client_encryption import ClientEncryption
from intake.service_layer.export import Exports
from intake.service_layer.outcome_waiters import OutcomeWaiters
from intake.service_layer.webhooks import WebhookRegistration
from sanalpos_common.http import Problem, bearer_token
from sanalpos_common.http import require_admin as admin_guard


@dataclass(frozen=True)
class Container:
    pool: asyncpg.Pool
    merchants: MerchantRepository
    protection: CardProtection
    admin_token: str
    client_encryption: ClientEncryption
    webhooks: WebhookRegistration
    exports: Exports
    rate_limits: KeyRateLimits = field(default_factory=default_rate_limits)
    waiters: OutcomeWaiters | None = None  # None: `Prefer: wait` is not honoured
    max_wait_s: float = 10.0
    allow_replay_time: bool = False  # POST /v1/payments may carry occurred_at (replays only)
    checkout: CheckoutSettings = field(
        default_factory=lambda: CheckoutSettings("http://127.0.0.1:18000", None)
    )  # the hosted payment page (issue 11); without a signer it refuses sessions (503)


async def container(request: Request) -> Container:
    # async: FastAPI runs a plain `def` dependency in a worker thread, one hop per request.
    return app_container(request)


def app_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


async def current_merchant(
    c: Annotated[Container, Depends(container)],
    authorization: Annotated[str | None, Header()] = None,
) -> str:
    key = bearer_token(authorization)
    grant = await c.merchants.grant_for_key(key) if key.startswith("sk_") else None
    if grant is None:
        raise Problem(401, "unauthorized", "Invalid API key")
    c.rate_limits.enforce(grant)
    return grant.merchant_id


require_admin = admin_guard(lambda request: app_container(request).admin_token)


async def signing_secrets(request: Request) -> SigningSecretStore:
    """The Kafka entry point's secret store; 503 while the entry point is disabled."""
    store: SigningSecretStore | None = getattr(request.app.state, "signing_secrets", None)
    if store is None:
        raise Problem(
            503,
            "kafka-entry-point-disabled",
            "The Kafka entry point is not configured",
            "this intake has no signing keyring (INTAKE_SIGNING_KEYRING)",
        )
    return store


Merchant = Annotated[str, Depends(current_merchant)]
AppContainer = Annotated[Container, Depends(container)]
SigningSecrets = Annotated[SigningSecretStore, Depends(signing_secrets)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Makes the POST safe to retry: the same key with the same body replays the "
        "first response (with `Idempotent-Replayed: true`); with another body it is refused "
        "(422); while the first request runs, others get 409 and may retry. Kept 24 hours, "
        "scoped to the merchant.",
    ),
]
