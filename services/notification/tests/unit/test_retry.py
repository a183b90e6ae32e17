from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest

from notification.domain.retry import DeliveryStatus, RetryPolicy, decide, is_success

POLICY = RetryPolicy(base_s=30.0, cap_s=3600.0, max_attempts=8)
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def test_ceiling_doubles_then_caps() -> None:
    assert [POLICY.ceiling(n) for n in range(1, 9)] == [
        30.0,
        60.0,
        120.0,
        240.0,
        480.0,
        960.0,
        1920.0,
        3600.0,
    ]
    assert POLICY.ceiling(10_000) == 3600.0  # no float overflow for absurd attempt numbers


@pytest.mark.parametrize("attempt", range(1, 12))
def test_delay_stays_within_half_ceiling_and_ceiling(attempt: int) -> None:
    rng = random.Random(attempt)
    ceiling = POLICY.ceiling(attempt)
    delays = [POLICY.delay(attempt, rng) for _ in range(2_000)]
    assert min(delays) >= ceiling / 2
    assert max(delays) <= ceiling
    # Jitter really spreads retries out: not one fixed value.
    assert max(delays) - min(delays) > ceiling / 4


def test_delay_grows_on_average() -> None:
    rng = random.Random(7)
    means = [sum(POLICY.delay(n, rng) for _ in range(500)) / 500 for n in range(1, 8)]
    assert all(later > earlier for earlier, later in itertools.pairwise(means))


def test_whole_schedule_bounds() -> None:
    # Worst and best case total wait before a delivery is declared dead.
    total_max = sum(POLICY.ceiling(n) for n in range(1, POLICY.max_attempts))
    total_min = total_max / 2
    rng = random.Random(3)
    total = sum(POLICY.delay(n, rng) for n in range(1, POLICY.max_attempts))
    assert total_min <= total <= total_max
    assert total_max == 30 + 60 + 120 + 240 + 480 + 960 + 1920


@pytest.mark.parametrize(
    ("code", "ok"),
    [
        (200, True),
        (201, True),
        (204, True),
        (299, True),
        (199, False),
        (300, False),
        (301, False),
        (404, False),
        (429, False),
        (500, False),
        (None, False),
    ],
)
def test_only_2xx_is_success(code: int | None, ok: bool) -> None:
    assert is_success(code) is ok


def test_decide_delivered_retry_and_dead() -> None:
    rng = random.Random(1)
    assert decide(POLICY, 1, 204, NOW, rng).status is DeliveryStatus.DELIVERED
    assert decide(POLICY, 8, 200, NOW, rng).status is DeliveryStatus.DELIVERED

    retry = decide(POLICY, 3, 503, NOW, rng)
    assert retry.status is DeliveryStatus.PENDING
    assert retry.next_attempt_at is not None
    assert NOW + timedelta(seconds=60) <= retry.next_attempt_at <= NOW + timedelta(seconds=120)

    timeout = decide(POLICY, 1, None, NOW, rng)
    assert timeout.status is DeliveryStatus.PENDING

    dead = decide(POLICY, 8, 500, NOW, rng)
    assert dead.status is DeliveryStatus.FAILED
    assert dead.next_attempt_at is None


@pytest.mark.parametrize(("base", "cap", "attempts"), [(0.0, 1.0, 3), (2.0, 1.0, 3), (1.0, 2.0, 0)])
def test_invalid_policies_are_refused(base: float, cap: float, attempts: int) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(base_s=base, cap_s=cap, max_attempts=attempts)


def test_attempts_are_one_based() -> None:
    with pytest.raises(ValueError):
        POLICY.delay(0)
