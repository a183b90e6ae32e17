"""Token buckets per API key (domain.rate_limit) and the 429 they raise (entrypoints)."""

from __future__ import annotations

import uuid

import pytest

from intake.adapters.merchants import KeyGrant
from intake.domain.rate_limit import Limit, RateLimiter, retry_after_seconds
from intake.entrypoints.http.rate_limit import ApiGuardSettings, KeyRateLimits
from sanalpos_common.http import Problem


def test_burst_then_refused_with_retry_after() -> None:
    limiter = RateLimiter(Limit(per_second=2, burst=3))
    assert [limiter.check("k", 100.0) for _ in range(3)] == [None, None, None]
    assert limiter.check("k", 100.0) == 1  # 0.5 s to the next token, rounded up


def test_tokens_come_back_at_the_rate() -> None:
    limiter = RateLimiter(Limit(per_second=2, burst=1))
    assert limiter.check("k", 0.0) is None
    assert limiter.check("k", 0.25) == 1
    assert limiter.check("k", 0.5) is None


def test_slow_rate_gives_a_longer_wait() -> None:
    limiter = RateLimiter(Limit(per_second=0.1, burst=1))
    assert limiter.check("k", 0.0) is None
    assert limiter.check("k", 0.0) == 10


def test_keys_do_not_share_a_bucket() -> None:
    limiter = RateLimiter(Limit(per_second=1, burst=1))
    assert limiter.check("a", 0.0) is None
    assert limiter.check("a", 0.0) is not None
    assert limiter.check("b", 0.0) is None


def test_a_key_limit_overrides_the_default() -> None:
    limiter = RateLimiter(Limit(per_second=1, burst=1))
    roomy = Limit(per_second=100, burst=5)
    assert [limiter.check("vip", 0.0, roomy) for _ in range(5)] == [None] * 5
    assert limiter.check("vip", 0.0, roomy) == 1


def test_zero_rate_means_no_limit() -> None:
    limiter = RateLimiter(Limit(per_second=0, burst=1))
    assert all(limiter.check("k", 0.0) is None for _ in range(1000))


def test_least_recently_used_buckets_are_dropped_past_the_cap() -> None:
    limiter = RateLimiter(Limit(per_second=1, burst=1), max_keys=2)
    limiter.check("a", 0.0)
    limiter.check("b", 0.0)
    limiter.check("c", 0.0)  # drops a
    assert limiter.check("a", 0.0) is None  # a fresh bucket
    assert limiter.check("c", 0.0) is not None


def test_clock_going_backwards_does_not_mint_tokens() -> None:
    limiter = RateLimiter(Limit(per_second=1, burst=1))
    assert limiter.check("k", 10.0) is None
    assert limiter.check("k", 5.0) is not None


@pytest.mark.parametrize(("wait", "seconds"), [(0.001, 1), (1.0, 1), (1.01, 2), (9.5, 10)])
def test_retry_after_is_whole_seconds_never_zero(wait: float, seconds: int) -> None:
    assert retry_after_seconds(wait) == seconds


def test_over_the_limit_is_a_429_problem_with_retry_after() -> None:
    now = [0.0]
    limits = KeyRateLimits(Limit(per_second=1, burst=1), clock=lambda: now[0])
    grant = KeyGrant(uuid.uuid4(), "mer_a", None, None)
    limits.enforce(grant)
    with pytest.raises(Problem) as refused:
        limits.enforce(grant)
    assert refused.value.status == 429
    assert refused.value.headers == {"Retry-After": "1"}
    now[0] = 1.0
    limits.enforce(grant)


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTAKE_RATE_LIMIT_PER_SECOND", "25")
    monkeypatch.setenv("INTAKE_RATE_LIMIT_BURST", "50")
    monkeypatch.setenv("INTAKE_AUTH_CACHE_TTL_S", "2.5")
    settings = ApiGuardSettings()
    assert settings.default_limit() == Limit(25.0, 50)
    assert settings.auth_cache_ttl_s == 2.5
