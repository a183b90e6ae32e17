"""Velocity window reads/writes against faust's real window arithmetic; dead-letter adapter;
settings validation. No Kafka or database here."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import pytest
from faust.windows import HoppingWindow
from fraud.adapters.deadletter import DeadLetterSource, normalise_headers
from fraud.adapters.stream import faust_brokers, repartition_topic_name
from fraud.adapters.velocity import VelocityWindow
from fraud.config import FraudSettings
from sanalpos_common.messaging.deadletter import dead_letter_headers


class FakeWindowTable(defaultdict[Any, int]):
    """What VelocityWindow needs of a faust windowed table, with faust's own windows."""

    def __init__(self, window: HoppingWindow) -> None:
        super().__init__(int)
        self.window = window
        self.name = "velocity"


class FakeWrapper:
    """Mimics faust's WindowWrapper: `relative_to(t)[key] += 1` adds 1 to every window of t.

    (faust: `wrapper[key]` is a WindowSet whose `__iadd__` runs Table._apply_window_op over
    `window.ranges(t)`; the WindowSet assigned back afterwards is ignored.)
    """

    def __init__(self, window: HoppingWindow) -> None:
        self.table = FakeWindowTable(window)

    def relative_to(self, at: float) -> Any:
        table = self.table

        class WindowSet:
            def __init__(self, key: str) -> None:
                self.key = key

            def __iadd__(self, other: int) -> WindowSet:
                for window_range in table.window.ranges(at):
                    table[(self.key, window_range)] += other
                return self

        class Windows:
            def __getitem__(self, key: str) -> WindowSet:
                return WindowSet(key)

            def __setitem__(self, key: str, value: Any) -> None:
                pass

        return Windows()


T0 = 1_700_000_000.0  # a multiple of 120 s and 600 s


def velocity(size: int = 600, step: int = 120) -> VelocityWindow:
    return VelocityWindow(FakeWrapper(HoppingWindow(size, step, expires=2 * size)))


def test_counts_the_trailing_window_not_just_the_current_step() -> None:
    v = velocity()
    for offset in (0, 150, 290, 430):  # spread over four 2-minute steps
        v.add("card", T0 + offset)
    assert v.count("card", T0 + 430) == 4
    assert v.count("other", T0 + 430) == 0


def test_old_payments_fall_out_of_the_trailing_window() -> None:
    v = velocity()
    v.add("card", T0)
    v.add("card", T0 + 500)
    assert v.count("card", T0 + 500) == 2
    # 8-10 minutes of history are kept (size minus one step, plus the current step)
    assert v.count("card", T0 + 600) == 1
    assert v.count("card", T0 + 1200) == 0


def test_event_time_not_arrival_order() -> None:
    v = velocity()
    v.add("card", T0 + 1_000_000)  # a late, far-future payment
    v.add("card", T0)
    assert v.count("card", T0 + 10) == 1
    assert v.count("card", T0 + 1_000_010) == 1


def test_long_window() -> None:
    v = velocity(3600, 600)
    for minute in range(0, 55, 5):
        v.add("card", T0 + 60 * minute)
    assert v.count("card", T0 + 60 * 54) == 11
    assert v.count("card", T0 + 60 * 75) == 7  # only minutes 20-50 are still in the hour


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
