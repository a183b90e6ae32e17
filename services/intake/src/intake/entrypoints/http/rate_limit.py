"""Per-API-key rate limits: settings and the check each authenticated request passes.

The buckets live in each intake process. With N replicas behind a load balancer a key gets up
to N times its configured rate; set the per-replica figure accordingly (global / N). Sharing
the buckets through PostgreSQL would cost a row write per request on the hottest rows of the
system (one per busy key), which is what the limiter is meant to protect."""

from __future__ import annotations

import time
from collections.abc import Callable

from pydantic_settings import BaseSettings

from intake.adapters.merchants import KeyGrant
from intake.domain.rate_limit import Limit, RateLimiter
from sanalpos_common.http import Problem
from sanalpos_common.settings import service_config


class ApiGuardSettings(BaseSettings):
    """INTAKE_RATE_LIMIT_PER_SECOND, INTAKE_RATE_LIMIT_BURST, INTAKE_AUTH_CACHE_TTL_S."""

    model_config = service_config("INTAKE_")

    rate_limit_per_second: float = 1000.0
    """Default sustained requests per second per API key, per intake process; 0 = no limit.
    A key's own limit (admin API / CLI `--rate`) takes precedence."""
    rate_limit_burst: int = 2000
    auth_cache_ttl_s: float = 5.0
    """How long an authenticated key is trusted without asking the database: a key revoked
    by another process (another replica, the CLI) keeps working for up to this long."""

    def default_limit(self) -> Limit:
        return Limit(self.rate_limit_per_second, max(1, self.rate_limit_burst))


class KeyRateLimits:
    def __init__(self, default: Limit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limiter = RateLimiter(default)
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: ApiGuardSettings) -> KeyRateLimits:
        return cls(settings.default_limit())

    def enforce(self, grant: KeyGrant) -> None:
        """Raises 429 problem details with Retry-After (whole seconds) over the key's limit."""
        wait = self.limiter.check(str(grant.key_id), self._clock(), grant.limit)
        if wait is not None:
            raise Problem(
                429,
                "rate-limited",
                "Too many requests",
                f"this API key is over its rate limit; retry after {wait} s",
                headers={"Retry-After": str(wait)},
            )


def default_rate_limits() -> KeyRateLimits:
    return KeyRateLimits(ApiGuardSettings().default_limit())
