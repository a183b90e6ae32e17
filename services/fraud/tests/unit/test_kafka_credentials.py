"""The faust App authenticates like every other sanalpos Kafka client (SANALPOS_KAFKA_*)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import faust
import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from fraud.config import FraudSettings
from fraud.entrypoints.stream_topology import _build_app, faust_credentials
from sanalpos_common.messaging.security import KafkaSecurity, kafka_client_kwargs


def without_context(kwargs: Any) -> dict[str, Any]:
    return {k: v for k, v in dict(kwargs).items() if k != "ssl_context"}


def test_plaintext_gives_faust_no_credentials() -> None:
    assert faust_credentials(KafkaSecurity()) is None


@pytest.mark.parametrize(
    "security",
    [
        KafkaSecurity(security_protocol="SASL_SSL", sasl_username="fraud", sasl_password="pw"),
        KafkaSecurity(
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="SCRAM-SHA-256",
            sasl_username="fraud",
            sasl_password="pw",
        ),
        KafkaSecurity(security_protocol="SSL"),
    ],
    ids=lambda s: s.security_protocol,
)
def test_faust_gets_the_same_client_settings(security: KafkaSecurity) -> None:
    faust_kwargs = credentials_to_aiokafka_auth(faust_credentials(security))
    ours = kafka_client_kwargs(security)
    assert without_context(faust_kwargs) == without_context(ours)
    if security.uses_tls:
        assert isinstance(faust_kwargs["ssl_context"], ssl.SSLContext)
        assert faust_kwargs["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    else:
        assert faust_kwargs.get("ssl_context") is None


def test_the_app_is_built_with_the_environment_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SANALPOS_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("SANALPOS_KAFKA_SASL_USERNAME", "sanalpos-fraud")
    monkeypatch.setenv("SANALPOS_KAFKA_SASL_PASSWORD", "pw-from-secret")
    monkeypatch.setenv("FRAUD_FAUST_DATADIR", str(tmp_path / "faust"))
    app = _build_app(FraudSettings())
    credentials = app.conf.broker_credentials
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.username == "sanalpos-fraud"
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert credentials.protocol.value == "SASL_SSL"
