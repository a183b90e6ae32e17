from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from sanalpos_common.settings import (
    DEV_WEBHOOK_SEALED_KEYRING,
    ServiceSettings,
    local_database_url,
    service_config,
)


class StaticEndpoint(BaseModel):
    """An endpoint configured by operators rather than registered through an event."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    merchant_id: str = Field(min_length=1)
    url: str
    secret: SecretStr
    enabled: bool = True


class NotificationSettings(ServiceSettings):
    model_config = service_config("NOTIFICATION_")
    # Off the payment's critical path (POST -> authorization outcome): batches are worth
    # 250 ms here (webhooks and emails are late by at most this). Fewer fetches and one transaction for several events; an idle
    # consumer's fetch comes back every 250 ms instead of every 100 (docs/performance.md).
    consumer_batch_wait_ms: int = Field(default=250, ge=0, le=5000)

    database_url: SecretStr = SecretStr(local_database_url("notification"))
    http_port: int = 18004

    static_endpoints: list[StaticEndpoint] = Field(default_factory=list)
    """JSON list of {merchant_id, url, secret[, enabled]}, upserted at start-up."""
    allow_http_endpoints: bool | None = None
    """Accept plain-http endpoint URLs. Default: only outside production."""
    webhook_allow_loopback: bool = False
    """Development only: deliver to loopback addresses (local receivers on 127.0.0.1). Every
    other non-public address is refused at connect time whatever this says."""
    webhook_secret_keyring: SecretStr = SecretStr(DEV_WEBHOOK_SEALED_KEYRING)
    """Key provider spec of the sealed (x25519) `webhook` keyring, private half included:
    endpoint secrets arrive and are stored sealed to it (intake holds the public half)."""
    secret_rotation_grace_s: float = 24 * 3600
    """After a secret changes, the old one keeps signing (alongside the new) this long."""

    delivery_concurrency: int = Field(default=64, ge=1)
    """Most webhook POSTs in flight at once; also the largest claim batch."""
    delivery_timeout_s: float = Field(default=5.0, gt=0)
    delivery_lease_s: float = Field(default=60.0, gt=0)
    """A claimed delivery whose worker died becomes due again after this long."""
    retry_base_s: float = Field(default=30.0, gt=0)
    retry_cap_s: float = Field(default=3600.0, gt=0)
    retry_max_attempts: int = Field(default=8, ge=1)
    worker_idle_poll_s: float = Field(default=1.0, gt=0)
    """Longest idle sleep; new deliveries wake the worker at once through pg NOTIFY."""
    worker_stall_after_s: float = Field(default=30.0, gt=0)

    smtp_host: str = "127.0.0.1"
    """SMTP server of shopper receipts and notices. `make run` starts a local sink here."""
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_tls: Literal["none", "starttls", "tls"] = "none"
    """none: plain SMTP; starttls: upgrade after connecting (port 587); tls: implicit TLS
    from the first byte (port 465). Certificates are verified."""
    smtp_username: str | None = None
    """Log in with this and smtp_password; none: send without AUTH."""
    smtp_password: SecretStr | None = None
    smtp_from: str = "sanalpos <no-reply@sanalpos.local>"
    """From header of every shopper email (display name optional)."""
    smtp_timeout_s: float = Field(default=30.0, gt=0)
    email_concurrency: int = Field(default=8, ge=1)
    """SMTP sessions in flight at once; also the largest claim batch."""
    email_lease_s: float = Field(default=120.0, gt=0)
    email_retry_base_s: float = Field(default=60.0, gt=0)
    email_retry_cap_s: float = Field(default=3600.0, gt=0)
    email_retry_max_attempts: int = Field(default=10, ge=1)
    email_waiting_retention_h: float = Field(default=192.0, gt=0)
    """An outcome whose payment.initiated has not arrived after this long is dropped."""
    history_retention_days: float = Field(default=90.0, gt=0)
    """Finished webhook deliveries and shopper emails (with their attempts) older than this
    are deleted. At least the inbox retention (SANALPOS_INBOX_RETENTION_H)."""

    consumer_group: str | None = None
    """Kafka consumer group; defaults to the service name. Tests use a private one."""

    @model_validator(mode="after")
    def _loopback_only_in_development(self) -> Self:
        if self.webhook_allow_loopback and not self.is_development:
            raise ValueError(
                "production start-up refused: webhook_allow_loopback is for development"
            )
        return self

    @model_validator(mode="after")
    def _history_outlives_the_inbox(self) -> Self:
        # A purged delivery whose event can still be redelivered must meet its inbox row,
        # or the webhook and the email would be sent again.
        if self.history_retention_days * 24 < self.inbox_retention_hours:
            raise ValueError(
                f"NOTIFICATION_HISTORY_RETENTION_DAYS must be at least the inbox retention "
                f"({self.inbox_retention_hours} hours): a redelivered event could be sent again"
            )
        return self

    @model_validator(mode="after")
    def _smtp_credentials_need_tls(self) -> Self:
        if self.smtp_username and not (
            self.smtp_password and self.smtp_password.get_secret_value()
        ):
            raise ValueError("smtp_username is set without smtp_password")
        if self.smtp_username and self.smtp_tls == "none" and not self.is_development:
            raise ValueError(
                f"{self.env} start-up refused: smtp_username is set with smtp_tls=none "
                "(the password would travel in clear); use starttls or tls"
            )
        return self

    @property
    def http_endpoints_allowed(self) -> bool:
        if self.allow_http_endpoints is None:
            return self.is_development
        return self.allow_http_endpoints
