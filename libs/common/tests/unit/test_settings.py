import pytest
from pydantic import SecretStr, ValidationError

from sanalpos_common.settings import DEV_FINGERPRINT_KEY, ServiceSettings, service_config


class DemoSettings(ServiceSettings):
    model_config = service_config("DEMO_")

    database_url: SecretStr = SecretStr("postgresql://localhost/x")
    http_port: int = 1
    fingerprint_key: SecretStr = SecretStr(DEV_FINGERPRINT_KEY)


def test_development_accepts_development_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANALPOS_ENV", "development")
    assert DemoSettings().fingerprint_key.get_secret_value() == DEV_FINGERPRINT_KEY


def test_production_refuses_default_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANALPOS_ENV", "production")
    with pytest.raises(ValidationError, match="fingerprint_key"):
        DemoSettings()


def test_production_refuses_empty_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANALPOS_ENV", "production")
    monkeypatch.setenv("DEMO_FINGERPRINT_KEY", "")
    with pytest.raises(ValidationError, match="fingerprint_key"):
        DemoSettings()


def test_production_accepts_real_secrets_and_env_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANALPOS_ENV", "production")
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
    monkeypatch.setenv("SANALPOS_ENV", "production")
    assert Probe(**base).topic_partitions == 12
