"""The one retry policy of every consumer: how long to keep trying a message, and when to stop.

- An infrastructure failure (TRANSIENT_ERRORS: database or network down) is retried until it
  clears, with a backoff that grows to `max_transient_delay_s`: dead-lettering good messages
  during an outage would lose them from their partition's order.
- `NonRetryable` gives up at once: the message can never succeed as it is.
- Any other exception is retried up to `max_attempts` attempts in all, then given up.

Giving up is the caller's to act on (dead-letter the message, or split a batch and retry its
messages one by one): `run_with_retries` returns a `GaveUp` instead of raising.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import asyncpg

log = logging.getLogger(__name__)
T = TypeVar("T")


class NonRetryable(Exception):
    """The message can never succeed as it is (e.g. it names a record this service does not
    own): dead-letter it at once instead of spending retries on it."""


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ConnectionError,
    TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    backoff_s: float = 0.2
    max_transient_delay_s: float = 5.0

    def transient_delay(self, attempt: int) -> float:
        return min(self.max_transient_delay_s, self.backoff_s * 2 ** min(attempt, 5))

    def failure_delay(self, attempt: int) -> float:
        return self.backoff_s * attempt


@dataclass(frozen=True)
class GaveUp:
    """What the caller dead-letters: the reason, the attempts spent and the last error."""

    reason: str
    attempts: int
    error: BaseException


RetryHook = Callable[[BaseException, bool], None]
"""Called before each retry with the error and whether it was transient (metrics, counters)."""


def _no_hook(error: BaseException, transient: bool) -> None:
    pass


async def run_with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    on_retry: RetryHook = _no_hook,
    what: str = "handler",
) -> T | GaveUp:
    """`call`'s result once it succeeds, or `GaveUp` when the policy says stop."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except TRANSIENT_ERRORS as exc:
            delay = policy.transient_delay(attempt)
            log.warning("transient failure (%s), retrying in %.1fs", type(exc).__name__, delay)
            on_retry(exc, True)
            await asyncio.sleep(delay)
            attempt = 0 if attempt > 50 else attempt
        except NonRetryable as exc:
            return GaveUp(f"non-retryable: {exc}", attempt, exc)
        except Exception as exc:
            if attempt >= policy.max_attempts:
                return GaveUp(f"{type(exc).__name__}: {exc}", attempt, exc)
            log.warning("%s failed (attempt %d): %s", what, attempt, type(exc).__name__)
            on_retry(exc, False)
            await asyncio.sleep(policy.failure_delay(attempt))
