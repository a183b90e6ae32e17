"""Settings shared by every service: pydantic-settings, one env prefix per service.

Outside development, start-up fails fast when a secret is missing or still has its
development default (`SANALPOS_ENV=test` may opt in to them with
`SANALPOS_ALLOW_DEV_SECRETS=1`). In production the topics' replication must be set.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sanalpos_common.messaging.admin import TopicSpec
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
# Webhook signing secrets are sealed to notification (the only service that signs with them):
# intake, which makes them, gets the public half; notification the whole keyring.
DEV_WEBHOOK_SEALED_KEYRING = '{"id": "webhook", "kind": "x25519-sealed", "active": 1, "public": {"1": "FFMmMLUVGvEuHreiexWVL7GbdDpuVJSkQJ38fI2QLnc="}, "private": {"1": "QNRYF8oRIsDcdd6kb9/SpPP70NKr0BX9xjOF2tyYvGY="}}'
DEV_WEBHOOK_SEALED_PUBLIC = '{"id": "webhook", "kind": "x25519-sealed", "active": 1, "public": {"1": "FFMmMLUVGvEuHreiexWVL7GbdDpuVJSkQJ38fI2QLnc="}}'
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
        DEV_WEBHOOK_SEALED_KEYRING,
        DEV_WEBHOOK_SEALED_PUBLIC,
        DEV_FINGERPRINT_KEY,
        DEV_ISSUER_KEY,
        DEV_ADMIN_TOKEN,
    }
)


KAFKA_SEGMENT_H = 24
"""segment.ms of the topics a service creates: records are deleted a segment at a time, so a
record lives at most retention + one segment."""


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
    consumer_batch_wait_ms: int = Field(
        default=0,
        ge=0,
        le=5000,
        description="How long a fetch waits for more records before answering (0: as soon as "
        "one arrives). A consumer off the payment's critical path trades this much latency "
        "for batches: fewer fetches, transactions and wake-ups per payment.",
    )
    startup_timeout_s: float = Field(
        default=120.0,
        gt=0,
        validation_alias="SANALPOS_STARTUP_TIMEOUT_S",
        description="How long start-up waits for PostgreSQL and Kafka before giving up.",
    )
    kafka_partitions: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        validation_alias="SANALPOS_KAFKA_PARTITIONS",
        description="Partitions of the topics a service creates; the most consumer replicas "
        "that share one topic's work. Default: 12 in production, 3 elsewhere.",
    )
    kafka_replication_factor: int | None = Field(
        default=None,
        ge=1,
        le=32,
        validation_alias="SANALPOS_KAFKA_REPLICATION_FACTOR",
        description="Replicas of each topic a service creates. Required in production "
        "(typically 3); default 1 elsewhere (the single local broker).",
    )
    kafka_min_insync_replicas: int | None = Field(
        default=None,
        ge=1,
        le=32,
        validation_alias="SANALPOS_KAFKA_MIN_INSYNC_REPLICAS",
        description="min.insync.replicas of each topic a service creates: with acks=all a "
        "write succeeds only once this many replicas have it. Required in production "
        "(typically 2, below the replication factor so one broker may be down); elsewhere the "
        "broker's default.",
    )
    kafka_retention_h: int = Field(
        default=168,
        ge=1,
        validation_alias="SANALPOS_KAFKA_RETENTION_H",
        description="retention.ms of the topics a service creates, in hours (Kafka's default "
        "week). Topics that already exist keep theirs.",
    )
    inbox_retention_h: int | None = Field(
        default=None,
        ge=1,
        validation_alias="SANALPOS_INBOX_RETENTION_H",
        description="Processed-message (inbox) rows older than this are purged. At least "
        "SANALPOS_KAFKA_RETENTION_H plus one segment (KAFKA_SEGMENT_H); that is the default.",
    )
    allow_dev_secrets: bool = Field(
        default=False,
        validation_alias="SANALPOS_ALLOW_DEV_SECRETS",
        description="With SANALPOS_ENV=test only: accept the development secrets (test "
        "suites). Development always accepts them, production never.",
    )

    @property
    def is_development(self) -> bool:
        return self.env != "production"

    @property
    def topic_partitions(self) -> int:
        if self.kafka_partitions is not None:
            return self.kafka_partitions
        return 3 if self.is_development else 12

    @property
    def accepts_dev_secrets(self) -> bool:
        return self.env == "development" or (self.env == "test" and self.allow_dev_secrets)

    @property
    def inbox_retention_hours(self) -> int:
        return self.inbox_retention_h or self.kafka_retention_h + KAFKA_SEGMENT_H

    @property
    def topic_spec(self) -> TopicSpec:
        return TopicSpec(
            partitions=self.topic_partitions,
            replication=self.kafka_replication_factor or 1,
            min_insync_replicas=self.kafka_min_insync_replicas,
            retention_h=self.kafka_retention_h,
            segment_h=min(KAFKA_SEGMENT_H, self.kafka_retention_h),
        )

    @model_validator(mode="after")
    def _replication_required_in_production(self) -> ServiceSettings:
        if self.env != "production":
            return self
        missing = [
            name
            for name, value in (
                ("SANALPOS_KAFKA_REPLICATION_FACTOR", self.kafka_replication_factor),
                ("SANALPOS_KAFKA_MIN_INSYNC_REPLICAS", self.kafka_min_insync_replicas),
            )
            if value is None
        ]
        if missing:
            raise ValueError(
                "production start-up refused: set " + " and ".join(missing) + " (how many "
                "brokers hold each topic, and how many must have a write before it counts)"
            )
        assert self.kafka_replication_factor is not None
        assert self.kafka_min_insync_replicas is not None
        if self.kafka_min_insync_replicas > self.kafka_replication_factor:
            raise ValueError(
                "SANALPOS_KAFKA_MIN_INSYNC_REPLICAS must not exceed "
                "SANALPOS_KAFKA_REPLICATION_FACTOR: no write could ever succeed"
            )
        return self

    @model_validator(mode="after")
    def _inbox_outlives_the_topics(self) -> ServiceSettings:
        # An inbox row only has to outlive the message it records: a redelivery (a consumer
        # restarting from an older offset, a group reset to the earliest) reads what is still
        # in the log, and Kafka deletes a record once its whole segment is older than the
        # retention, so no record is older than retention + one segment. Purging a row
        # earlier could let a redelivered message be applied twice.
        floor = self.kafka_retention_h + KAFKA_SEGMENT_H
        if self.inbox_retention_h is not None and self.inbox_retention_h < floor:
            raise ValueError(
                f"SANALPOS_INBOX_RETENTION_H must be at least {floor} hours "
                f"(SANALPOS_KAFKA_RETENTION_H {self.kafka_retention_h} + one "
                f"{KAFKA_SEGMENT_H}-hour segment): an older redelivery can still happen"
            )
        return self

    def secret_fields(self) -> dict[str, SecretStr | None]:
        return {
            name: value
            for name in type(self).model_fields
            if isinstance(value := getattr(self, name), SecretStr) and name != "database_url"
        }

    @model_validator(mode="after")
    def _refuse_dev_secrets_in_production(self) -> ServiceSettings:
        if self.accepts_dev_secrets:
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
                f"{self.env} start-up refused: set real values for "
                + ", ".join(sorted(bad))
                + ("" if self.env == "production" else " (or SANALPOS_ALLOW_DEV_SECRETS=1)")
            )
        return self


def service_config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, extra="ignore")


def local_database_url(service: str, port: int = 25432) -> str:
    return f"postgresql://sanalpos_{service}:sanalpos_{service}@127.0.0.1:{port}/sanalpos_{service}"
