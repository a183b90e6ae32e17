"""SANALPOS_KAFKA_* client security: one set of kwargs for every aiokafka client."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from sanalpos_common.messaging.security import KafkaSecurity, kafka_client_kwargs
from sanalpos_common.settings import ServiceSettings

ENV_NAMES = (
    "SANALPOS_KAFKA_SECURITY_PROTOCOL",
    "SANALPOS_KAFKA_SASL_MECHANISM",
    "SANALPOS_KAFKA_SASL_USERNAME",
    "SANALPOS_KAFKA_SASL_PASSWORD",
    "SANALPOS_KAFKA_SSL_CAFILE",
)
CA_NAME = "sanalpos-test-cluster-ca"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    """A self-signed CA certificate, like the cluster CA a Strimzi Kafka publishes."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "ca.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def production_env(monkeypatch: pytest.MonkeyPatch, ca_file: Path) -> None:
    monkeypatch.setenv("SANALPOS_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("SANALPOS_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("SANALPOS_KAFKA_SASL_USERNAME", "sanalpos-intake")
    monkeypatch.setenv("SANALPOS_KAFKA_SASL_PASSWORD", "s3cret-from-the-kafkauser-secret")
    monkeypatch.setenv("SANALPOS_KAFKA_SSL_CAFILE", str(ca_file))


def test_default_is_plaintext_and_adds_no_kwargs() -> None:
    assert KafkaSecurity().security_protocol == "PLAINTEXT"
    assert kafka_client_kwargs() == {}


def test_sasl_ssl_from_the_environment(monkeypatch: pytest.MonkeyPatch, ca_file: Path) -> None:
    production_env(monkeypatch, ca_file)
    kwargs = kafka_client_kwargs()
    context = kwargs.pop("ssl_context")
    assert kwargs == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "sanalpos-intake",
        "sasl_plain_password": "s3cret-from-the-kafkauser-secret",
    }
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    subjects = [dict(item[0] for item in ca["subject"]) for ca in context.get_ca_certs()]
    assert {"commonName": CA_NAME} in subjects


def test_tls_without_sasl() -> None:
    kwargs = kafka_client_kwargs(KafkaSecurity(security_protocol="SSL"))
    assert kwargs["security_protocol"] == "SSL"
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)
    assert not any(key.startswith("sasl") for key in kwargs)


def test_sasl_plaintext_has_no_tls_context() -> None:
    security = KafkaSecurity(
        security_protocol="SASL_PLAINTEXT", sasl_username="u", sasl_password="p"
    )
    kwargs = kafka_client_kwargs(security)
    assert kwargs["security_protocol"] == "SASL_PLAINTEXT"
    assert "ssl_context" not in kwargs
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"


def test_sasl_without_credentials_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANALPOS_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("SANALPOS_KAFKA_SASL_USERNAME", "sanalpos-fraud")
    with pytest.raises(ValidationError, match="SANALPOS_KAFKA_SASL_PASSWORD"):
        KafkaSecurity()


def test_unknown_protocol_and_mechanism_are_refused() -> None:
    with pytest.raises(ValidationError, match="security_protocol"):
        KafkaSecurity(security_protocol="TLS")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="sasl_mechanism"):
        KafkaSecurity(sasl_mechanism="GSSAPI")  # type: ignore[arg-type]


def test_ca_file_must_exist_and_needs_tls(tmp_path: Path, ca_file: Path) -> None:
    with pytest.raises(ValidationError, match="no such file"):
        KafkaSecurity(security_protocol="SSL", ssl_cafile=tmp_path / "missing.crt")
    with pytest.raises(ValidationError, match="does not use TLS"):
        KafkaSecurity(ssl_cafile=ca_file)


def test_password_never_in_repr(monkeypatch: pytest.MonkeyPatch, ca_file: Path) -> None:
    production_env(monkeypatch, ca_file)
    assert "s3cret" not in repr(KafkaSecurity())
    assert "s3cret" not in str(KafkaSecurity().model_dump())


async def test_aiokafka_clients_accept_the_kwargs(
    monkeypatch: pytest.MonkeyPatch, ca_file: Path
) -> None:
    """aiokafka validates protocol and mechanism in its constructors (no connection made)."""
    production_env(monkeypatch, ca_file)
    producer = AIOKafkaProducer(bootstrap_servers="kafka:9093", **kafka_client_kwargs())
    consumer = AIOKafkaConsumer(bootstrap_servers="kafka:9093", **kafka_client_kwargs())
    admin = AIOKafkaAdminClient(bootstrap_servers="kafka:9093", **kafka_client_kwargs())
    for client in (producer.client, consumer._client, admin._client):
        assert client._security_protocol == "SASL_SSL"
        assert client._sasl_mechanism == "SCRAM-SHA-512"
        assert client._sasl_plain_username == "sanalpos-intake"
        assert isinstance(client._ssl_context, ssl.SSLContext)
    await producer.stop()
    await consumer.stop()
    await admin.close()


class _Settings(ServiceSettings):
    http_port: int = 1


def test_service_settings_fail_fast_on_incomplete_security(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SANALPOS_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(ValidationError, match="SANALPOS_KAFKA_SASL_USERNAME"):
        _Settings(database_url="postgresql://x@y/z")
    monkeypatch.setenv("SANALPOS_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
    settings = _Settings(database_url="postgresql://x@y/z")
    assert settings.kafka_security.security_protocol == "PLAINTEXT"
