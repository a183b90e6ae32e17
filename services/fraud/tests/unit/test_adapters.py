"""Dead-letter adapter; settings validation. No Kafka or database here (velocity:
test_velocity.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from fraud.adapters.deadletter import DeadLetterSource, normalise_headers
from fraud.config import FraudSettings
from fraud.entrypoints.stream_topology import faust_brokers, repartition_topic_name
from sanalpos_common.messaging.deadletter import dead_letter_headers


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
