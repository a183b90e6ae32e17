"""Velocity window reads/writes against faust's real window arithmetic; dead-letter adapter;
settings validation. No Kafka or database here."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest
from faust.windows import HoppingWindow

from fraud.adapters.deadletter import DeadLetterSource, normalise_headers
from fraud.adapters.velocity import BatchVelocity, VelocityWindow
from fraud.config import FraudSettings
from fraud.domain.scoring import Velocity
from fraud.entrypoints.stream_topology import faust_brokers, repartition_topic_name
from sanalpos_common.messaging.deadletter import dead_letter_headers


class FakeWindowTable(defaultdict[Any, int]):
    """What the velocity adapter needs of a faust windowed PartitionedTable, with faust's
    own window arithmetic; records the changelog partition of every write."""

    def __init__(self, window: HoppingWindow) -> None:
        super().__init__(int)
        self.window = window
        self.name = "velocity"
        self.partition: int | None = None
        self.writes: list[tuple[Any, int, int | None]] = []

    @contextmanager
    def writing_to(self, partition: int) -> Iterator[None]:
        self.partition = partition
        try:
            yield
        finally:
            self.partition = None

    def __setitem__(self, key: Any, value: int) -> None:
        self.writes.append((key, value, self.partition))
        super().__setitem__(key, value)


T0 = 1_700_000_000.0  # a multiple of 120 s and 600 s


def window(size: int = 600, step: int = 120) -> VelocityWindow:
    return VelocityWindow(SimpleNamespace(table=FakeWindowTable(HoppingWindow(size, step, size))))


def ledger() -> BatchVelocity:
    return BatchVelocity(short=window(600, 120), long=window(3600, 600))


def test_counts_the_trailing_window_not_just_the_current_step() -> None:
    short = window()
    batch = BatchVelocity(short=short, long=window(3600, 600))
    for offset in (0, 150, 290, 430):  # spread over four 2-minute steps
        batch.count("card", T0 + offset, 0)
    batch.apply()
    assert short.count("card", T0 + 430) == 4
    assert short.count("other", T0 + 430) == 0


def test_old_payments_fall_out_of_the_trailing_window() -> None:
    short = window()
    batch = BatchVelocity(short=short, long=window(3600, 600))
    batch.count("card", T0, 0)
    batch.count("card", T0 + 500, 0)
    batch.apply()
    assert short.count("card", T0 + 500) == 2
    # 8-10 minutes of history are kept (size minus one step, plus the current step)
    assert short.count("card", T0 + 600) == 1
    assert short.count("card", T0 + 1200) == 0


def test_event_time_not_arrival_order() -> None:
    short = window()
    batch = BatchVelocity(short=short, long=window(3600, 600))
    batch.count("card", T0 + 1_000_000, 0)  # a late, far-future payment
    batch.count("card", T0, 0)
    batch.apply()
    assert short.count("card", T0 + 10) == 1
    assert short.count("card", T0 + 1_000_010) == 1


def test_long_window() -> None:
    long_ = window(3600, 600)
    batch = BatchVelocity(short=window(), long=long_)
    for minute in range(0, 55, 5):
        batch.count("card", T0 + 60 * minute, 0)
    batch.apply()
    assert long_.count("card", T0 + 60 * 54) == 11
    assert long_.count("card", T0 + 60 * 75) == 7  # only minutes 20-50 are still in the hour


def test_a_batch_sees_its_own_earlier_payments_before_anything_is_written() -> None:
    batch = ledger()
    assert batch.velocity("card", T0) == Velocity(1, 1)
    batch.count("card", T0, 2)
    batch.count("card", T0 + 30, 2)
    assert batch.velocity("card", T0 + 60) == Velocity(3, 3)
    assert batch.velocity("other", T0 + 60) == Velocity(1, 1)
    assert batch.short.count("card", T0 + 60) == 0  # nothing in the table until apply()
    batch.apply()
    assert batch.short.count("card", T0 + 60) == 2
    assert batch.velocity("card", T0 + 60) == Velocity(3, 3)  # pending was cleared


def test_apply_sums_per_window_and_writes_to_the_cards_partition() -> None:
    short = window()
    batch = BatchVelocity(short=short, long=window(3600, 600))
    batch.count("card-a", T0, 1)
    batch.count("card-a", T0 + 1, 1)
    batch.count("card-b", T0, 2)
    batch.apply()
    table = short._table
    assert len(table.writes) == 10  # 5 windows per card, each written once with the sum
    assert {(key[0], partition) for key, _, partition in table.writes} == {
        ("card-a", 1),
        ("card-b", 2),
    }
    assert all(value == 2 for key, value, _ in table.writes if key[0] == "card-a")


def test_a_retried_batch_counts_nothing_twice() -> None:
    short = window()
    long_ = window(3600, 600)
    failed = BatchVelocity(short=short, long=long_)
    failed.count("card", T0, 0)  # the transaction failed: apply() is never called
    retried = BatchVelocity(short=short, long=long_)
    assert retried.velocity("card", T0) == Velocity(1, 1)
    retried.count("card", T0, 0)
    retried.apply()
    assert short.count("card", T0) == 1


def test_tables_must_pin_their_changelog_partition() -> None:
    plain = VelocityWindow(
        SimpleNamespace(table=SimpleNamespace(window=HoppingWindow(600, 120), get=dict().get))
    )
    with pytest.raises(TypeError):
        plain.add({("card", (T0, T0 + 599.9)): 1}, partition=0)


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
