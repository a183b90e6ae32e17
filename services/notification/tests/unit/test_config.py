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


def test_smtp_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = NotificationSettings()
    assert (defaults.smtp_host, defaults.smtp_port, defaults.smtp_tls) == (
        "127.0.0.1",
        1025,
        "none",
    )
    assert defaults.smtp_username is None and defaults.smtp_password is None
    monkeypatch.setenv("NOTIFICATION_SMTP_HOST", "smtp.example.com")
    monkeypatch.setenv("NOTIFICATION_SMTP_PORT", "465")
    monkeypatch.setenv("NOTIFICATION_SMTP_TLS", "tls")
    monkeypatch.setenv("NOTIFICATION_SMTP_USERNAME", "receipts")
    monkeypatch.setenv("NOTIFICATION_SMTP_PASSWORD", "s3cret-smtp")
    monkeypatch.setenv("NOTIFICATION_SMTP_FROM", "Receipts <receipts@example.com>")
    settings = NotificationSettings()
    assert settings.smtp_port == 465 and settings.smtp_tls == "tls"
    assert settings.smtp_password is not None
    assert settings.smtp_password.get_secret_value() == "s3cret-smtp"
    assert "s3cret-smtp" not in repr(settings)
    monkeypatch.setenv("NOTIFICATION_SMTP_TLS", "ssl")
    with pytest.raises(ValueError, match="smtp_tls"):
        NotificationSettings()


def _production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANALPOS_ENV", "production")
    monkeypatch.setenv("SANALPOS_KAFKA_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("SANALPOS_KAFKA_MIN_INSYNC_REPLICAS", "2")
    monkeypatch.setenv(
        "NOTIFICATION_WEBHOOK_SECRET_KEYRING", SealedKeyring.generate("webhook").to_json()
    )


def test_production_needs_a_smtp_password_only_with_a_username(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _production(monkeypatch)
    assert NotificationSettings().smtp_password is None  # a relay without AUTH is fine
    monkeypatch.setenv("NOTIFICATION_SMTP_TLS", "starttls")
    monkeypatch.setenv("NOTIFICATION_SMTP_USERNAME", "receipts")
    with pytest.raises(ValueError, match="smtp_password"):
        NotificationSettings()
    monkeypatch.setenv("NOTIFICATION_SMTP_PASSWORD", "s3cret-smtp")
    assert NotificationSettings().smtp_username == "receipts"


def test_production_refuses_smtp_credentials_in_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    _production(monkeypatch)
    monkeypatch.setenv("NOTIFICATION_SMTP_USERNAME", "receipts")
    monkeypatch.setenv("NOTIFICATION_SMTP_PASSWORD", "s3cret-smtp")
    with pytest.raises(ValueError, match="smtp_tls=none"):
        NotificationSettings()
    monkeypatch.setenv("NOTIFICATION_SMTP_TLS", "tls")
    assert NotificationSettings().smtp_tls == "tls"


def test_history_is_kept_at_least_as_long_as_the_inbox(monkeypatch: pytest.MonkeyPatch) -> None:
    assert NotificationSettings().history_retention_days == 90.0
    monkeypatch.setenv("SANALPOS_INBOX_RETENTION_H", "240")
    monkeypatch.setenv("NOTIFICATION_HISTORY_RETENTION_DAYS", "10")
    assert NotificationSettings().history_retention_days == 10.0, "240 h is exactly 10 days"
    monkeypatch.setenv("NOTIFICATION_HISTORY_RETENTION_DAYS", "9.5")
    with pytest.raises(ValueError, match="at least the inbox retention"):
        NotificationSettings()
