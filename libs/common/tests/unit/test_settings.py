import pytest
from pydantic import SecretStr, ValidationError

from sanalpos_common.settings import (
    DEV_FINGERPRINT_KEY,
    KAFKA_SEGMENT_H,
    ServiceSettings,
    service_config,
)


class DemoSettings(ServiceSettings):
    model_config = service_config("DEMO_")

    database_url: SecretStr = SecretStr("postgresql://localhost/x")
    http_port: int = 1
    fingerprint_key: SecretStr = SecretStr(DEV_FINGERPRINT_KEY)


def production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANALPOS_ENV", "production")
    monkeypatch.setenv("SANALPOS_KAFKA_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("SANALPOS_KAFKA_MIN_INSYNC_REPLICAS", "2")


def test_development_accepts_development_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANALPOS_ENV", "development")
    assert DemoSettings().fingerprint_key.get_secret_value() == DEV_FINGERPRINT_KEY


def test_production_refuses_default_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    production(monkeypatch)
    with pytest.raises(ValidationError, match="fingerprint_key"):
        DemoSettings()


def test_production_refuses_empty_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    production(monkeypatch)
    monkeypatch.setenv("DEMO_FINGERPRINT_KEY", "")
    with pytest.raises(ValidationError, match="fingerprint_key"):
        DemoSettings()


def test_production_accepts_real_secrets_and_env_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    production(monkeypatch)
    monkeypatch.setenv("DEMO_FINGERPRINT_KEY", "a-real-key-from-the-secret-store")
    monkeypatch.setenv("DEMO_HTTP_PORT", "9999")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker:9092")
    settings = DemoSettings()
    assert settings.http_port == 9999
    assert settings.kafka_bootstrap_servers == "broker:9092"
    assert not settings.is_development


def test_topic_partitions_default_by_environment_and_configurable(monkeypatch) -> None:
    from sanalpos_common.settings import ServiceSettings

    class Probe(ServiceSettings):
        pass

    base = {"database_url": "postgresql://x", "http_port": 1}
    assert Probe(**base).topic_partitions == 3
    monkeypatch.setenv("SANALPOS_KAFKA_PARTITIONS", "7")
    assert Probe(**base).topic_partitions == 7
    monkeypatch.delenv("SANALPOS_KAFKA_PARTITIONS")
    production(monkeypatch)
    assert Probe(**base).topic_partitions == 12


# --- test environment and development secrets -----------------------------------------------


def test_the_test_environment_refuses_development_secrets_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SANALPOS_ENV", "test")
    monkeypatch.delenv("SANALPOS_ALLOW_DEV_SECRETS", raising=False)
    with pytest.raises(ValidationError, match=r"fingerprint_key.*SANALPOS_ALLOW_DEV_SECRETS"):
        DemoSettings()


def test_the_test_environment_accepts_them_when_allowed_explicitly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SANALPOS_ENV", "test")
    monkeypatch.setenv("SANALPOS_ALLOW_DEV_SECRETS", "1")
    assert DemoSettings().fingerprint_key.get_secret_value() == DEV_FINGERPRINT_KEY


def test_production_refuses_development_secrets_even_when_allowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    production(monkeypatch)
    monkeypatch.setenv("SANALPOS_ALLOW_DEV_SECRETS", "1")
    with pytest.raises(ValidationError, match="fingerprint_key"):
        DemoSettings()


# --- topic replication ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "unset", ["SANALPOS_KAFKA_REPLICATION_FACTOR", "SANALPOS_KAFKA_MIN_INSYNC_REPLICAS"]
)
def test_production_requires_replication_settings(
    monkeypatch: pytest.MonkeyPatch, unset: str
) -> None:
    production(monkeypatch)
    monkeypatch.setenv("DEMO_FINGERPRINT_KEY", "a-real-key-from-the-secret-store")
    monkeypatch.delenv(unset)
    with pytest.raises(ValidationError, match=f"production start-up refused: set {unset}"):
        DemoSettings()


def test_min_insync_replicas_above_the_replication_factor_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    production(monkeypatch)
    monkeypatch.setenv("DEMO_FINGERPRINT_KEY", "a-real-key-from-the-secret-store")
    monkeypatch.setenv("SANALPOS_KAFKA_MIN_INSYNC_REPLICAS", "4")
    with pytest.raises(ValidationError, match="must not exceed"):
        DemoSettings()


def test_replication_settings_shape_the_created_topics(monkeypatch: pytest.MonkeyPatch) -> None:
    production(monkeypatch)
    monkeypatch.setenv("DEMO_FINGERPRINT_KEY", "a-real-key-from-the-secret-store")
    spec = DemoSettings().topic_spec
    assert (spec.partitions, spec.replication) == (12, 3)
    assert spec.configs()["min.insync.replicas"] == "2"


def test_development_topics_have_one_replica_and_the_broker_default_isr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SANALPOS_ENV", "development")
    spec = DemoSettings().topic_spec
    assert spec.replication == 1
    assert "min.insync.replicas" not in spec.configs()


# --- inbox retention --------------------------------------------------------------------------


def test_inbox_retention_defaults_to_topic_retention_plus_one_segment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SANALPOS_KAFKA_RETENTION_H", "72")
    assert DemoSettings().inbox_retention_hours == 72 + KAFKA_SEGMENT_H


def test_inbox_retention_shorter_than_the_topics_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SANALPOS_KAFKA_RETENTION_H", "168")
    monkeypatch.setenv("SANALPOS_INBOX_RETENTION_H", "100")
    with pytest.raises(ValidationError, match="SANALPOS_INBOX_RETENTION_H must be at least"):
        DemoSettings()
    monkeypatch.setenv("SANALPOS_INBOX_RETENTION_H", str(168 + KAFKA_SEGMENT_H))
    assert DemoSettings().inbox_retention_hours == 168 + KAFKA_SEGMENT_H
