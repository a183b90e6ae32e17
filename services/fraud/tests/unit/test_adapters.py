"""Velocity counts (faust's real hopping-window arithmetic) in the feature table; dead-letter adapter;
settings validation. No Kafka or database here."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest

from fraud.adapters.deadletter import DeadLetterSource, normalise_headers
from fraud.adapters.feature_table import BatchFeatures, FeatureTable
from fraud.adapters.velocity import BatchVelocity, VelocityWindow
from fraud.config import FraudSettings
from fraud.domain.features import Observation
from fraud.domain.scoring import Velocity
from fraud.entrypoints.stream_topology import faust_brokers, repartition_topic_name
from sanalpos_common.messaging.deadletter import dead_letter_headers


class FakeFeatureTable(dict[str, Any]):
    """What the feature table needs of a faust PartitionedTable; records the changelog
    partition of every write."""

    def __init__(self) -> None:
        super().__init__()
        self.partition: int | None = None
        self.writes: list[tuple[str, Any, int | None]] = []

    @contextmanager
    def writing_to(self, partition: int) -> Iterator[None]:
        self.partition = partition
        try:
            yield
        finally:
            self.partition = None

    def __setitem__(self, key: str, value: Any) -> None:
        self.writes.append((key, value, self.partition))
        super().__setitem__(key, value)


T0 = 1_700_000_000.0  # a multiple of 120 s and 600 s


class Velocities:
    """Both windows over one fake feature table, the way the stream builds them."""

    def __init__(self) -> None:
        self.table = FakeFeatureTable()
        self.features = FeatureTable(self.table, partitions=4)
        self.short = VelocityWindow("short", 600, 120)
        self.long = VelocityWindow("long", 3600, 600)

    def batch(self) -> BatchVelocity:
        return BatchVelocity(self.short, self.long, BatchFeatures(self.features))

    def short_count(self, card: str, at: float) -> int:
        return self.short.count(self.features, card, at)

    def long_count(self, card: str, at: float) -> int:
        return self.long.count(self.features, card, at)


def test_counts_the_trailing_window_not_just_the_current_step() -> None:
    v = Velocities()
    batch = v.batch()
    for offset in (0, 150, 290, 430):  # spread over four 2-minute steps
        batch.count("card", T0 + offset, 0)
    batch.apply()
    assert v.short_count("card", T0 + 430) == 4
    assert v.short_count("other", T0 + 430) == 0


def test_old_payments_fall_out_of_the_trailing_window() -> None:
    v = Velocities()
    batch = v.batch()
    batch.count("card", T0, 0)
    batch.count("card", T0 + 500, 0)
    batch.apply()
    assert v.short_count("card", T0 + 500) == 2
    # 8-10 minutes of history are kept (size minus one step, plus the current step)
    assert v.short_count("card", T0 + 600) == 1
    assert v.short_count("card", T0 + 1200) == 0


def test_event_time_not_arrival_order() -> None:
    v = Velocities()
    batch = v.batch()
    batch.count("card", T0 + 1_000_000, 0)  # a late, far-future payment
    batch.count("card", T0, 0)
    batch.apply()
    assert v.short_count("card", T0 + 10) == 1
    assert v.short_count("card", T0 + 1_000_010) == 1


def test_long_window() -> None:
    v = Velocities()
    batch = v.batch()
    for minute in range(0, 55, 5):
        batch.count("card", T0 + 60 * minute, 0)
    batch.apply()
    assert v.long_count("card", T0 + 60 * 54) == 11
    assert v.long_count("card", T0 + 60 * 75) == 7  # only minutes 20-50 are still in the hour


def test_a_batch_sees_its_own_earlier_payments_before_anything_is_written() -> None:
    v = Velocities()
    batch = v.batch()
    assert batch.velocity("card", T0) == Velocity(1, 1)
    batch.count("card", T0, 2)
    batch.count("card", T0 + 30, 2)
    assert batch.velocity("card", T0 + 60) == Velocity(3, 3)
    assert batch.velocity("other", T0 + 60) == Velocity(1, 1)
    assert v.short_count("card", T0 + 60) == 0  # nothing in the table until apply()
    batch.apply()
    assert v.short_count("card", T0 + 60) == 2
    assert v.batch().velocity("card", T0 + 60) == Velocity(3, 3)


def test_apply_writes_each_card_once_to_its_partition_with_the_summed_counts() -> None:
    v = Velocities()
    batch = v.batch()
    batch.count("card-a", T0, 1)
    batch.count("card-a", T0 + 1, 1)
    batch.count("card-b", T0, 2)
    batch.apply()
    # One changelog record per card for both windows (the faust hopping tables wrote one
    # per window per payment: 5 + 6 here per card).
    assert sorted((key, partition) for key, _, partition in v.table.writes) == [
        ("card|card-a", 1),
        ("card|card-b", 2),
    ]
    counts = v.short.counts_in(v.table["card|card-a"])
    assert len(counts) == 5 and set(counts.values()) == {2}


def test_expired_windows_are_dropped_so_a_card_value_stays_small() -> None:
    v = Velocities()
    for hour in range(6):
        batch = v.batch()
        batch.count("card", T0 + 3600 * hour, 0)
        batch.apply()
    long_windows = v.long.counts_in(v.table["card|card"])
    assert all(float(start) >= T0 + 3600 * 5 - 7200 for start in long_windows)
    assert v.long_count("card", T0 + 3600 * 5) == 1


def test_features_and_velocity_share_the_card_value() -> None:
    """The feature engine rewrites the card's value each payment; the counts survive."""
    v = Velocities()
    batch = v.batch()
    obs = Observation(
        card="card", amount_minor=1000, event_time=T0, local_time=datetime(2026, 1, 1)
    )
    batch.features(obs, 0)
    batch.count("card", T0, 0)
    batch.features(
        Observation(
            card="card", amount_minor=5, event_time=T0 + 1, local_time=datetime(2026, 1, 1)
        ),
        0,
    )
    batch.apply()
    value = v.table["card|card"]
    assert "p" in value and v.short_count("card", T0 + 1) == 1


def test_a_retried_batch_counts_nothing_twice() -> None:
    v = Velocities()
    failed = v.batch()
    failed.count("card", T0, 0)  # the transaction failed: apply() is never called
    retried = v.batch()
    assert retried.velocity("card", T0) == Velocity(1, 1)
    retried.count("card", T0, 0)
    retried.apply()
    assert v.short_count("card", T0) == 1


def test_tables_must_pin_their_changelog_partition() -> None:
    plain = FeatureTable(SimpleNamespace(get=dict().get, __setitem__=None), partitions=1)  # type: ignore[arg-type]
    batch = BatchVelocity(
        VelocityWindow("short", 600, 120), VelocityWindow("long", 3600, 600), BatchFeatures(plain)
    )
    batch.count("card", T0, 0)
    with pytest.raises(TypeError):
        batch.apply()


def test_dead_letter_source_from_a_faust_message() -> None:
    message = SimpleNamespace(
        topic="payment.initiated.v1",
        partition=2,
        offset=41,
        key=b"k",
        value=b"\x00garbage",
        headers=[("trace", b"1"), (b"bytes-name", "text")],
    )
    source = DeadLetterSource.from_faust(message)
    assert (source.topic, source.partition, source.offset) == ("payment.initiated.v1", 2, 41)
    assert (source.key, source.value) == (b"k", b"\x00garbage")
    assert source.headers == [("trace", b"1"), ("bytes-name", b"text")]
    headers = dict(dead_letter_headers(source, "fraud", "undecodable: boom", 1))
    assert headers["trace"] == b"1"
    assert headers["dlq.error"] == b"undecodable: boom"
    assert headers["dlq.original.offset"] == b"41"


def test_headers_as_a_mapping_or_missing() -> None:
    assert normalise_headers({"a": b"1"}) == [("a", b"1")]
    assert normalise_headers(None) == []
    assert normalise_headers([]) == []


def test_settings_defaults_and_validation() -> None:
    settings = FraudSettings()
    assert settings.http_port == 18001
    rules = settings.scoring_rules()
    assert (rules.review_threshold, rules.decline_threshold) == (65, 75)
    with pytest.raises(ValueError):
        FraudSettings(short_window_s=600, short_window_step_s=7)
    with pytest.raises(ValueError):
        FraudSettings(review_threshold=90, decline_threshold=80)


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUD_HTTP_PORT", "19001")
    monkeypatch.setenv("FRAUD_DECLINE_THRESHOLD", "90")
    monkeypatch.setenv("FRAUD_FAUST_APP_ID", "fraud-blue")
    settings = FraudSettings()
    assert settings.http_port == 19001
    assert settings.scoring_rules().decline_threshold == 90
    assert repartition_topic_name(settings.faust_app_id) == (
        "fraud-blue-payment.initiated.v1-by-card-repartition"
    )


def test_broker_urls() -> None:
    assert faust_brokers("a:1, b:2") == ["kafka://a:1", "kafka://b:2"]
