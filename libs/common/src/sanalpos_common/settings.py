"""Settings shared by every service: pydantic-settings, one env prefix per service.

Outside development, start-up fails fast when a secret is missing or still has its
development default.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sanalpos_common.messaging.security import KafkaSecurity

Environment = Literal["development", "test", "production"]

# Development-only key material: public, in the repository, refused outside development.
DEV_PAN_KEYRING = (
    '{"id": "pan", "active": 1, "keys": {"1": "ZGV2LXBhbi1rZXktMDAwMDAwMDAwMDAwMDAwMDAwMDA="}}'
)
# The card-number keyring is sealed (sp3): intake gets the public half only, so it can encrypt
# card numbers but never decrypt them; authorization gets the private half.
DEV_PAN_SEALED_KEYRING = '{"id": "pan", "kind": "x25519-sealed", "active": 1, "public": {"1": "F4hKei3zP/bRdufgDzCk3u5KNNEUyuecPaNQHDIOzkQ="}, "private": {"1": "aGU4q2bzkb/2GBvcdV9tpTD73vXLkohWgBW7rVX9jn4="}}'
DEV_PAN_SEALED_PUBLIC = '{"id": "pan", "kind": "x25519-sealed", "active": 1, "public": {"1": "F4hKei3zP/bRdufgDzCk3u5KNNEUyuecPaNQHDIOzkQ="}}'
DEV_CVC_KEYRING = (
    '{"id": "cvc", "active": 1, "keys": {"1": "ZGV2LWN2Yy1rZXktMDAwMDAwMDAwMDAwMDAwMDAwMDA="}}'
)
DEV_FINGERPRINT_KEY = "dev-fingerprint-key-not-for-production"
DEV_ISSUER_KEY = "dev-issuer-simulator-key-not-for-production"
DEV_ADMIN_TOKEN = "dev-admin-token-not-for-production"  # noqa: S105 - refused outside development
DEV_SECRETS = frozenset(
    {
        DEV_PAN_KEYRING,
        DEV_PAN_SEALED_KEYRING,
        DEV_PAN_SEALED_PUBLIC,
        DEV_CVC_KEYRING,
        DEV_FINGERPRINT_KEY,
        DEV_ISSUER_KEY,
        DEV_ADMIN_TOKEN,
    }
)


class ServiceSettings(BaseSettings):
    """Subclass per service with `model_config = service_config("INTAKE_")`."""

    model_config = SettingsConfigDict(extra="ignore")

    env: Environment = Field(default="development", validation_alias="SANALPOS_ENV")
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:29092", validation_alias="KAFKA_BOOTSTRAP_SERVERS"
    )
    # SANALPOS_KAFKA_SECURITY_PROTOCOL etc. (messaging/security.py): read here so that an
    # incomplete SASL/TLS setup stops start-up instead of the first Kafka connection.
    kafka_security: KafkaSecurity = Field(default_factory=KafkaSecurity)
    log_level: str = Field(default="INFO", validation_alias="SANALPOS_LOG_LEVEL")
    database_url: SecretStr
    http_host: str = "127.0.0.1"
    http_port: int
    db_pool_size: int = 10
    kafka_partitions: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        validation_alias="SANALPOS_KAFKA_PARTITIONS",
        description="Partitions of the topics a service creates; the most consumer replicas "
        "that share one topic's work. Default: 12 in production, 3 elsewhere.",
    )

    @property
    def is_development(self) -> bool:
        return self.env != "production"

    @property
    def topic_partitions(self) -> int:
        if self.kafka_partitions is not None:
            return self.kafka_partitions
        return 3 if self.is_development else 12

    def secret_fields(self) -> dict[str, SecretStr | None]:
        return {
            name: value
            for name in type(self).model_fields
            if isinstance(value := getattr(self, name), SecretStr) and name != "database_url"
        }

    @model_validator(mode="after")
    def _refuse_dev_secrets_in_production(self) -> ServiceSettings:
        if self.is_development:
            return self
        bad = [
            name
            for name, value in self.secret_fields().items()
            if value is None
            or not value.get_secret_value()
            or value.get_secret_value() in DEV_SECRETS
        ]
        if bad:
            raise ValueError(
                "production start-up refused: set real values for " + ", ".join(sorted(bad))
            )
        return self


def service_config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, extra="ignore")


def local_database_url(service: str, port: int = 25432) -> str:
    return f"postgresql://sanalpos_{service}:sanalpos_{service}@127.0.0.1:{port}/sanalpos_{service}"
