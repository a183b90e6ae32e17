"""The shared metric definitions: Prometheus naming rules (checked by promtool), lag series
that follow partition ownership, scrape-time samplers and the pool collector."""

from __future__ import annotations

import shutil
import subprocess

from prometheus_client import CollectorRegistry, generate_latest

from sanalpos_common.metrics import (
    AuthorizationLatency,
    FraudMetrics,
    Metrics,
    PaymentMetrics,
    SettlementMetrics,
    WebhookMetrics,
)


class FakePool:
    def get_size(self) -> int:
        return 7

    def get_idle_size(self) -> int:
        return 3

    def get_max_size(self) -> int:
        return 10


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool not found: run `bash scripts/infra/prometheus.sh install` (or make test)"
    return path


def populated() -> CollectorRegistry:
    """Every family, each with at least one sample, as a running service has them."""
    metrics = Metrics("svc")
    r = metrics.registry
    counters = metrics.topic("svc", "payment.captured.v1")
    for child in (counters.consumed, counters.processed, counters.retried_transient):
        child.inc()
    counters.retried_handler.inc()
    counters.dead_lettered.inc()
    counters.duplicates.inc()
    counters.handler_seconds.observe(0.003)
    metrics.set_lag("svc", {("payment.captured.v1", 0): 4})
    metrics.outbox_published.inc()
    metrics.outbox_backlog.set(2)
    metrics.outbox_oldest_age.set(1.5)
    metrics.http_requests.labels("GET", "/v1/payments", "200").inc()
    metrics.watch_pool(FakePool())
    payments = PaymentMetrics(r)
    payments.authorized()
    payments.declined("51")
    payments.held_for_review()
    AuthorizationLatency(r).seconds.labels("authorized").observe(0.2)
    FraudMetrics(r).decisions.labels("approve").inc()
    webhooks = WebhookMetrics(r)
    webhooks.attempts.labels("204").inc()
    webhooks.deliveries.labels("delivered").inc()
    webhooks.attempt_seconds.observe(0.05)
    webhooks.delivery_age.labels("delivered").observe(3.0)
    webhooks.in_flight.set(1)
    webhooks.cycles.inc()
    webhooks.pending.set(0)
    settlement = SettlementMetrics(r)
    settlement.batches_closed.labels("manual").inc()
    settlement.payments_settled.inc(3)
    return r


def test_every_metric_passes_promtool_check_metrics() -> None:
    exposition = generate_latest(populated())
    result = subprocess.run(
        [promtool(), "check", "metrics"], input=exposition, capture_output=True, check=False
    )
    problems = (result.stdout + result.stderr).decode()
    assert result.returncode == 0 and problems.strip() == "", problems


def test_every_name_has_the_project_prefix_and_counters_end_in_total() -> None:
    for family in populated().collect():
        assert family.name.startswith("sanalpos_"), family.name
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples), family.name


def test_lag_series_follow_the_partitions_the_consumer_owns() -> None:
    metrics = Metrics("svc")
    metrics.set_lag("c", {("t", 0): 5, ("t", 1): 2})
    metrics.set_lag("c", {("t", 1): 0})  # partition 0 went to another replica
    sample = metrics.registry.get_sample_value
    labels = {"consumer": "c", "topic": "t"}
    assert sample("sanalpos_consumer_lag_messages", {**labels, "partition": "0"}) is None
    assert sample("sanalpos_consumer_lag_messages", {**labels, "partition": "1"}) == 0


async def test_samplers_run_at_scrape_time_at_most_once_per_interval() -> None:
    metrics = Metrics("svc", sample_min_interval_s=60)
    calls: list[str] = []

    async def backlog() -> None:
        calls.append("backlog")
        metrics.outbox_backlog.set(9)

    async def broken() -> None:
        raise OSError("database away")

    metrics.add_sampler(broken)
    metrics.add_sampler(backlog)
    await metrics.sample()
    await metrics.sample()  # within the interval: no second round of queries
    assert calls == ["backlog"]
    assert metrics.registry.get_sample_value("sanalpos_outbox_backlog_messages") == 9


def test_pool_usage_is_read_when_scraped() -> None:
    metrics = Metrics("svc")
    metrics.watch_pool(FakePool())
    sample = metrics.registry.get_sample_value
    assert sample("sanalpos_db_pool_connections", {"state": "in_use"}) == 4
    assert sample("sanalpos_db_pool_connections", {"state": "idle"}) == 3
    assert sample("sanalpos_db_pool_max_connections") == 10
