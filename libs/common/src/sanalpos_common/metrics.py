"""Every Prometheus metric sanalpos exposes, defined in one place.

Names follow the Prometheus conventions: `sanalpos_` prefix, base units (seconds) in the name,
`_total` on counters. The service is the scrape target's `job` label, not a metric label.

`Metrics` is the set every service process has (consumer loop, outbox, database pool, HTTP);
the business groups (`PaymentMetrics`, `AuthorizationLatency`, `FraudMetrics`,
`WebhookMetrics`, `SettlementMetrics`) are added by the service that owns the outcome, on the
same registry. Nothing is created at import time: one registry per process, built in
bootstrap.

Per-message cost: the consumer loop resolves its label children once per (consumer, topic)
(`TopicCounters`), so handling a message is an increment and a histogram observation, no
label lookup. Gauges that need I/O (outbox backlog, lag of a stream) are sampled when
Prometheus scrapes (`Metrics.add_sampler`), not on the message path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# Handler and latency buckets: a message handler takes milliseconds; an authorization
# decision end to end tens to hundreds of milliseconds, seconds when the system lags.
HANDLER_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)
AGE_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0, 86_400.0)

Sampler = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class TopicCounters:
    """The label children of one consumer on one topic, resolved once."""

    consumed: Any
    processed: Any
    retried_transient: Any
    retried_handler: Any
    dead_lettered: Any
    duplicates: Any
    handler_seconds: Any


@dataclass
class Metrics:
    """One registry per service process, built in bootstrap (nothing at import time)."""

    service: str
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    sample_min_interval_s: float = 1.0
    sample_timeout_s: float = 2.0

    def __post_init__(self) -> None:
        r = self.registry
        self.messages_consumed = Counter(
            "sanalpos_messages_consumed",
            "Kafka messages received by a consumer (before handling)",
            ["consumer", "topic"],
            registry=r,
        )
        self.messages_processed = Counter(
            "sanalpos_messages_processed",
            "Kafka messages handled and committed (duplicates included: they are handled)",
            ["consumer", "topic"],
            registry=r,
        )
        self.messages_retried = Counter(
            "sanalpos_messages_retried",
            "Handler attempts that failed and were retried; kind: transient (database or "
            "network down, retried until it clears) or handler (bounded, then dead-lettered)",
            ["consumer", "topic", "kind"],
            registry=r,
        )
        self.messages_dead_lettered = Counter(
            "sanalpos_messages_dead_lettered",
            "Kafka messages sent to the consumer's dead-letter topic",
            ["consumer", "topic"],
            registry=r,
        )
        self.messages_duplicates = Counter(
            "sanalpos_messages_duplicates",
            "Redelivered messages the inbox recognised (nothing changed); counted where the "
            "consumer reports them (fraud's stream)",
            ["consumer", "topic"],
            registry=r,
        )
        self.handler_seconds = Histogram(
            "sanalpos_handler_duration_seconds",
            "Time to handle one message (a batch's time shared by its messages)",
            ["consumer"],
            buckets=HANDLER_BUCKETS,
            registry=r,
        )
        self.consumer_lag = Gauge(
            "sanalpos_consumer_lag_messages",
            "Messages between the consumer's position and the partition's log end",
            ["consumer", "topic", "partition"],
            registry=r,
        )
        self.outbox_published = Counter(
            "sanalpos_outbox_published", "Outbox rows published to Kafka", registry=r
        )
        self.outbox_backlog = Gauge(
            "sanalpos_outbox_backlog_messages", "Outbox rows not yet published", registry=r
        )
        self.outbox_oldest_age = Gauge(
            "sanalpos_outbox_oldest_age_seconds",
            "Age of the oldest unpublished outbox row (0 when none)",
            registry=r,
        )
        self.outbox_poisoned = Counter(
            "sanalpos_outbox_poisoned",
            "Outbox rows Kafka can never take (e.g. too large), set aside unpublished: alert",
            ["topic"],
            registry=r,
        )
        self.outbox_poisoned_rows = Gauge(
            "sanalpos_outbox_poisoned_rows",
            "Poisoned outbox rows kept in the table for operators",
            registry=r,
        )
        self.http_requests = Counter(
            "sanalpos_http_requests",
            "HTTP requests by route template and status",
            ["method", "route", "status"],
            registry=r,
        )
        self._topics: dict[tuple[str, str], TopicCounters] = {}
        self._lag_keys: dict[str, set[tuple[str, str, str]]] = {}
        self._samplers: list[Sampler] = []
        self._sampled_at = 0.0
        self._sample_lock = asyncio.Lock()

    def topic(self, consumer: str, topic: str) -> TopicCounters:
        """The counters of `consumer` on `topic` (cached: the message path calls this)."""
        counters = self._topics.get((consumer, topic))
        if counters is None:
            counters = self._topics[(consumer, topic)] = TopicCounters(
                consumed=self.messages_consumed.labels(consumer, topic),
                processed=self.messages_processed.labels(consumer, topic),
                retried_transient=self.messages_retried.labels(consumer, topic, "transient"),
                retried_handler=self.messages_retried.labels(consumer, topic, "handler"),
                dead_lettered=self.messages_dead_lettered.labels(consumer, topic),
                duplicates=self.messages_duplicates.labels(consumer, topic),
                handler_seconds=self.handler_seconds.labels(consumer),
            )
        return counters

    def set_lag(self, consumer: str, lags: dict[tuple[str, int], int]) -> None:
        """Lag per (topic, partition) the consumer owns now; partitions it no longer owns
        are removed, so a rebalance leaves no stale series behind."""
        previous = self._lag_keys.get(consumer, set())
        current = set()
        for (topic, partition), lag in lags.items():
            key = (consumer, topic, str(partition))
            self.consumer_lag.labels(*key).set(lag)
            current.add(key)
        for key in previous - current:
            with contextlib.suppress(KeyError):
                self.consumer_lag.remove(*key)
        self._lag_keys[consumer] = current

    def watch_pool(self, pool: Any) -> None:
        """Exports the asyncpg pool's size at scrape time."""
        self.registry.register(PoolCollector(pool))

    def add_sampler(self, sampler: Sampler) -> None:
        """An async gauge update run when Prometheus scrapes (at most once a second)."""
        self._samplers.append(sampler)

    async def sample(self) -> None:
        async with self._sample_lock:
            if time.monotonic() - self._sampled_at < self.sample_min_interval_s:
                return
            self._sampled_at = time.monotonic()
            results = await asyncio.gather(
                *(asyncio.wait_for(s(), self.sample_timeout_s) for s in self._samplers),
                return_exceptions=True,
            )
        for result in results:
            if isinstance(result, BaseException):
                log.debug("metrics sampler failed: %s", type(result).__name__)


class PoolCollector(Collector):
    """Database connection pool usage, read from the pool when scraped (no I/O)."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    def collect(self) -> Iterator[GaugeMetricFamily]:
        size, idle = self.pool.get_size(), self.pool.get_idle_size()
        connections = GaugeMetricFamily(
            "sanalpos_db_pool_connections",
            "Database pool connections by state (in_use, idle)",
            labels=["state"],
        )
        connections.add_metric(["in_use"], size - idle)
        connections.add_metric(["idle"], idle)
        yield connections
        yield GaugeMetricFamily(
            "sanalpos_db_pool_max_connections",
            "Most connections the database pool opens",
            value=self.pool.get_max_size(),
        )

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []


# ----------------------------------------------------------------------- business metrics


class PaymentMetrics:
    """Authorization decisions (authorization service, counted after the commit)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.payments = Counter(
            "sanalpos_payments",
            "Authorization decisions by outcome (authorized, declined, review) and decline "
            "code (the ISO 8583 response code; empty unless declined)",
            ["outcome", "decline_code"],
            registry=registry,
        )
        self._authorized = self.payments.labels("authorized", "")
        self._review = self.payments.labels("review", "")

    def authorized(self) -> None:
        self._authorized.inc()

    def held_for_review(self) -> None:
        self._review.inc()

    def declined(self, code: str) -> None:
        self.payments.labels("declined", code).inc()


class AuthorizationLatency:
    """Intake: from accepting a payment to its authorization decision coming back."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.seconds = Histogram(
            "sanalpos_authorization_latency_seconds",
            "Time from intake accepting a payment to its first authorization decision "
            "(authorized, declined or held for review) reaching intake",
            ["outcome"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )


class FraudMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.decisions = Counter(
            "sanalpos_fraud_decisions",
            "Fraud decisions by band (approve, review, decline)",
            ["band"],
            registry=registry,
        )


class WebhookMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.attempts = Counter(
            "sanalpos_webhook_attempts",
            "Webhook POST attempts by result (HTTP status, or error)",
            ["result"],
            registry=registry,
        )
        self.deliveries = Counter(
            "sanalpos_webhook_deliveries",
            "Webhook deliveries that reached a final state, by result (delivered, failed, "
            "cancelled)",
            ["result"],
            registry=registry,
        )
        self.attempt_seconds = Histogram(
            "sanalpos_webhook_attempt_duration_seconds",
            "Duration of one webhook POST",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.delivery_age = Histogram(
            "sanalpos_webhook_delivery_age_seconds",
            "Age of a delivery (since it was queued) when it reached its final state",
            ["result"],
            buckets=AGE_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "sanalpos_webhook_in_flight_requests", "Webhook POSTs in flight", registry=registry
        )
        self.cycles = Counter(
            "sanalpos_webhook_worker_cycles",
            "Delivery worker wake-ups (claim rounds)",
            registry=registry,
        )
        self.pending = Gauge(
            "sanalpos_webhook_pending_deliveries",
            "Deliveries not yet delivered or dead",
            registry=registry,
        )


class SettlementMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.batches_closed = Counter(
            "sanalpos_settlement_batches_closed",
            "End-of-day batches closed, by trigger (cutoff, manual)",
            ["trigger"],
            registry=registry,
        )
        self.payments_settled = Counter(
            "sanalpos_settlement_payments_settled",
            "Payments settled by closed batches",
            registry=registry,
        )
        # Reconciliation (issue 13, docs/reconciliation.md).
        self.recon_runs = Counter(
            "sanalpos_settlement_recon_runs",
            "Reconciliation runs of one merchant, currency and date, by outcome (clean, "
            "mismatches)",
            ["outcome"],
            registry=registry,
        )
        self.recon_mismatches = Gauge(
            "sanalpos_settlement_recon_mismatches",
            "Mismatches found by the latest reconciliation run of each merchant, currency and "
            "date, by kind (missing, duplicate, amount_differs)",
            ["kind"],
            registry=registry,
        )


class _IdlePool:
    def get_size(self) -> int:
        return 0

    def get_idle_size(self) -> int:
        return 0

    def get_max_size(self) -> int:
        return 0


def full_registry() -> CollectorRegistry:
    """Every family any service exposes, on one registry (for the metric-name checks of the
    dashboard and rules)."""
    metrics = Metrics("all")
    metrics.watch_pool(_IdlePool())
    registry = metrics.registry
    for group in (PaymentMetrics, AuthorizationLatency, FraudMetrics, WebhookMetrics):
        group(registry)
    SettlementMetrics(registry)
    return registry
