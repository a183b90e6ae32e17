"""Request-scoped dependencies: the app's container and the calling merchant."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Annotated

import asyncpg
from fastapi import Depends, Header, Request

from intake.adapters.merchants import MerchantRepository
from intake.entrypoints.problems import Problem
from intake.entrypoints.rate_limit import KeyRateLimits, default_rate_limits
from intake.service_layer.card_protection import CardProtection
from intake.service_layer.client_encryption import ClientEncryption
from intake.service_layer.outcome_waiters import OutcomeWaiters


@dataclass(frozen=True)
class Container:
    pool: asyncpg.Pool
    merchants: MerchantRepository
    protection: CardProtection
    admin_token: str
    client_encryption: ClientEncryption
    rate_limits: KeyRateLimits = field(default_factory=default_rate_limits)
    waiters: OutcomeWaiters | None = None  # None: `Prefer: wait` is not honoured
    max_wait_s: float = 10.0
    allow_replay_time: bool = False  # POST /v1/payments may carry occurred_at (replays only)


def container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


def _bearer(authorization: str | None) -> str:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise Problem(401, "unauthorized", "Missing API key", "send Authorization: Bearer <key>")
    return authorization[7:].strip()


async def current_merchant(
    c: Annotated[Container, Depends(container)],
    authorization: Annotated[str | None, Header()] = None,
) -> str:
    key = _bearer(authorization)
    grant = await c.merchants.grant_for_key(key) if key.startswith("sk_") else None
    if grant is None:
        raise Problem(401, "unauthorized", "Invalid API key")
    c.rate_limits.enforce(grant)
    return grant.merchant_id


async def require_admin(
    c: Annotated[Container, Depends(container)],
    authorization: Annotated[str | None, Header()] = None,
) -> None:
    if not hmac.compare_digest(_bearer(authorization).encode(), c.admin_token.encode()):
        raise Problem(401, "unauthorized", "Invalid admin credential")


Merchant = Annotated[str, Depends(current_merchant)]
AppContainer = Annotated[Container, Depends(container)]
