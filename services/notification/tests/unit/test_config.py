from __future__ import annotations

import json

import pytest

from notification.config import NotificationSettings
from notification.domain.signing import generate_secret
from sanalpos_common.crypto.sealed import SealedKeyring
from sanalpos_common.settings import DEV_WEBHOOK_SEALED_KEYRING


def test_defaults() -> None:
    settings = NotificationSettings()
    assert settings.http_port == 18004
    assert settings.retry_max_attempts == 8
    assert settings.delivery_timeout_s == 5.0
    assert settings.static_endpoints == []
    assert "sanalpos_notification" in settings.database_url.get_secret_value()


def test_static_endpoints_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = generate_secret()
    monkeypatch.setenv(
        "NOTIFICATION_STATIC_ENDPOINTS",
        json.dumps([{"merchant_id": "m-ops", "url": "https://ops.example/h", "secret": secret}]),
    )
    monkeypatch.setenv("NOTIFICATION_RETRY_BASE_S", "0.5")
    settings = NotificationSettings()
    [endpoint] = settings.static_endpoints
    assert endpoint.merchant_id == "m-ops"
    assert endpoint.secret.get_secret_value() == secret
    assert secret not in repr(settings)  # secrets stay out of logs and reprs
    assert settings.retry_base_s == 0.5


def test_http_endpoints_only_outside_production(monkeypatch: pytest.MonkeyPatch) -> None:
    assert NotificationSettings().http_endpoints_allowed is True
    monkeypatch.setenv("SANALPOS_ENV", "production")
    monkeypatch.setenv("SANALPOS_KAFKA_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("SANALPOS_KAFKA_MIN_INSYNC_REPLICAS", "2")
    monkeypatch.setenv(
        "NOTIFICATION_WEBHOOK_SECRET_KEYRING", SealedKeyring.generate("webhook").to_json()
    )
    assert NotificationSettings().http_endpoints_allowed is False
    monkeypatch.setenv("NOTIFICATION_ALLOW_HTTP_ENDPOINTS", "true")
    assert NotificationSettings().http_endpoints_allowed is True


def test_production_refuses_the_development_webhook_keyring_and_loopback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SANALPOS_ENV", "production")
    monkeypatch.setenv("SANALPOS_KAFKA_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("SANALPOS_KAFKA_MIN_INSYNC_REPLICAS", "2")
    monkeypatch.setenv("NOTIFICATION_WEBHOOK_SECRET_KEYRING", DEV_WEBHOOK_SEALED_KEYRING)
    with pytest.raises(ValueError, match="webhook_secret_keyring"):
        NotificationSettings()
    monkeypatch.setenv(
        "NOTIFICATION_WEBHOOK_SECRET_KEYRING", SealedKeyring.generate("webhook").to_json()
    )
    assert NotificationSettings().webhook_allow_loopback is False
    monkeypatch.setenv("NOTIFICATION_WEBHOOK_ALLOW_LOOPBACK", "true")
    with pytest.raises(ValueError, match="webhook_allow_loopback"):
        NotificationSettings()
