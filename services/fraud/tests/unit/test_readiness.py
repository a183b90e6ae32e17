"""/readyz's faust check: starting, crashed, caught up, consuming, stalled."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition

from fraud.adapters.lag import LagSnapshot
from fraud.config import FraudSettings
from fraud.entrypoints.fraud_stream import FraudStream
from sanalpos_common.observability import Metrics

SOURCE = TopicPartition("payment.initiated.v1", 0)


class FakeProbe:
    def __init__(self) -> None:
        self.lag = 0
        self.committed = 0

    async def snapshot(self) -> LagSnapshot:
        return LagSnapshot(
            lag={SOURCE: self.lag},
            committed={SOURCE: self.committed},
            taken_monotonic=time.monotonic(),
        )

    async def close(self) -> None:
        pass


def stream(stall_after_s: float = 30.0) -> tuple[FraudStream, FakeProbe, Any]:
    settings = FraudSettings(stall_after_s=stall_after_s, lag_probe_cache_s=0)
    fraud = FraudStream(settings, scoring=None, dead_letter_producer=None, metrics=Metrics("t"))  # type: ignore[arg-type]
    probe = FakeProbe()
    fraud.watch.probe = probe  # type: ignore[assignment]
    app = SimpleNamespace(
        crashed=False,
        crash_reason=None,
        rebalancing=False,
        consumer=SimpleNamespace(assignment=lambda: {SOURCE}),
    )
    return fraud, probe, app


async def test_not_ready_before_faust_has_started_and_recovered() -> None:
    fraud, _, app = stream()
    ok, detail = await fraud.readiness()
    assert (ok, detail) == (False, "faust app not started")
    fraud.app = app
    fraud.progress.started_monotonic = time.monotonic()
    ok, detail = await fraud.readiness()
    assert not ok
    assert "recovering" in detail


async def test_crashed_is_not_ready() -> None:
    fraud, _, app = stream()
    fraud.app = app
    fraud.progress.started_monotonic = fraud.progress.ready_monotonic = time.monotonic()
    app.crashed, app.crash_reason = True, RuntimeError("consumer died")
    ok, detail = await fraud.readiness()
    assert not ok
    assert "consumer died" in detail


async def test_caught_up_consuming_and_stalled() -> None:
    fraud, probe, app = stream(stall_after_s=0.2)
    fraud.app = app
    fraud.progress.started_monotonic = fraud.progress.ready_monotonic = time.monotonic()
    ok, detail = await fraud.readiness()
    assert ok and detail.startswith("caught up")

    probe.lag, probe.committed = 50, 10  # behind, but offsets are moving
    ok, detail = await fraud.readiness()
    assert ok and detail.startswith("consuming")
    assert "lag 50" in detail

    time.sleep(0.25)  # no commit progress for longer than stall_after_s
    ok, detail = await fraud.readiness()
    assert not ok and detail.startswith("stalled")

    probe.committed = 20  # progress again
    ok, _ = await fraud.readiness()
    assert ok

    probe.lag = 0
    time.sleep(0.25)  # idle with nothing to do is fine
    ok, detail = await fraud.readiness()
    assert ok and detail.startswith("caught up")


async def test_only_this_members_partitions_decide() -> None:
    fraud, probe, app = stream(stall_after_s=0.2)
    other = TopicPartition("payment.initiated.v1", 1)
    fraud.app = app
    fraud.progress.started_monotonic = fraud.progress.ready_monotonic = time.monotonic()

    async def snapshot() -> LagSnapshot:
        return LagSnapshot(
            lag={SOURCE: probe.lag, other: 100},
            committed={SOURCE: probe.committed, other: 0},
            taken_monotonic=time.monotonic(),
        )

    probe.snapshot = snapshot  # type: ignore[method-assign]
    time.sleep(0.25)  # partition 1 (another member's) is stuck; ours has nothing to do
    ok, detail = await fraud.readiness()
    assert ok, detail
    assert "lag 0 (group 100)" in detail
    probe.lag = 5  # now ours is behind and not moving
    await fraud.readiness()
    time.sleep(0.25)
    ok, detail = await fraud.readiness()
    assert not ok
    assert "payment.initiated.v1[0] lag 5" in detail


async def test_lag_is_exported_per_partition_this_member_owns() -> None:
    fraud, probe, app = stream()
    fraud.app = app
    fraud.progress.started_monotonic = fraud.progress.ready_monotonic = time.monotonic()
    probe.lag = 7
    await fraud.readiness()
    labels = {"consumer": "fraud", "topic": SOURCE.topic, "partition": str(SOURCE.partition)}
    value = fraud.metrics.registry.get_sample_value("sanalpos_consumer_lag_messages", labels)
    assert value == 7


async def test_lag_is_sampled_when_prometheus_scrapes() -> None:
    fraud, probe, app = stream()
    fraud.app = app
    fraud.progress.started_monotonic = fraud.progress.ready_monotonic = time.monotonic()
    probe.lag = 3
    await fraud.metrics.sample()
    labels = {"consumer": "fraud", "topic": SOURCE.topic, "partition": str(SOURCE.partition)}
    assert fraud.metrics.registry.get_sample_value("sanalpos_consumer_lag_messages", labels) == 3
