from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, model_validator

from sanalpos_common.settings import (
    DEV_ADMIN_TOKEN,
    DEV_FINGERPRINT_KEY,
    DEV_PAN_SEALED_PUBLIC,
    DEV_WEBHOOK_SEALED_PUBLIC,
    ServiceSettings,
    local_database_url,
    service_config,
)

DEMO_MERCHANT_ID = "mer_demo"
DEMO_API_KEY = "sk_test_sanalpos_demo_key_for_local_development_only"
REPO_STATE_DIR = Path(__file__).resolve().parents[4] / ".state"
DEV_CLIENT_KEY_FILE = "secrets/intake-client-encryption-key.pem"
DEV_CVC_KEY_FILE = "keys/cvc.json"
DEV_CHECKOUT_KEY_FILE = "secrets/intake-checkout-signing-key.pem"
"""Development CVC keyring shared by intake and authorization, under SANALPOS_STATE_DIR."""


class IntakeSettings(ServiceSettings):
    model_config = service_config("INTAKE_")

    database_url: SecretStr = SecretStr(local_database_url("intake"))
    http_port: int = 18000
    pan_keyring: SecretStr = SecretStr(DEV_PAN_SEALED_PUBLIC)
    """Key provider spec (`provider_from_spec`): keyring JSON, `env:VAR`, `file:/path`,
    `local:/dir` or `vault-transit:[mount/]name`."""
    cvc_keyring: SecretStr | None = None
    """Key provider spec of the time-bucketed CVC keyring. Development default:
    `file:<SANALPOS_STATE_DIR>/keys/cvc.json`, shared with authorization; required in
    production (a Secret file rotated by `sanalpos keys cvc-rotate`)."""
    cvc_rotate_file: bool | None = None
    """Rotate the CVC keyring file at start-up and every `key_reload_interval_s`. Default: in
    development, when the CVC keyring is a `file:`/`local:` spec; never in production (the
    CronJob rotates the Secret there)."""
    key_reload_interval_s: float = 60.0
    fingerprint_key: SecretStr = SecretStr(DEV_FINGERPRINT_KEY)
    """The HMAC key itself, or `env:VAR` / `file:/path` holding it (read at start-up)."""
    admin_token: SecretStr = SecretStr(DEV_ADMIN_TOKEN)
    client_encryption_key: SecretStr | None = None
    """RSA private key (PEM, >= 2048 bits) browsers encrypt card data to (JWE RSA-OAEP-256).
    Required in production. In development, when unset, one is generated once and kept in
    `<SANALPOS_STATE_DIR>/secrets/` so the published public key survives restarts."""
    webhook_secret_keyring: SecretStr = SecretStr(DEV_WEBHOOK_SEALED_PUBLIC)
    """Key provider spec of notification's sealed `webhook` keyring, public half only: new
    endpoints' signing secrets are announced sealed to it."""
    webhook_allow_loopback: bool = False
    """Development only: accept loopback webhook URLs (127.0.0.1, localhost) for local
    receivers. Other non-public hosts are refused whatever this says."""
    webhook_max_endpoints: int = Field(default=16, ge=1, le=1000)
    """Most webhook endpoints one merchant may register."""
    jwe_max_age_s: float = Field(default=900.0, gt=0)
    """Client-side encrypted cards (JWE) older than this (by their `iat`) are refused."""
    jwe_clock_skew_s: float = Field(default=60.0, ge=0)
    """How far in the future a JWE's `iat` may lie (the browser's clock runs ahead)."""
    state_dir: Path = Field(default=REPO_STATE_DIR, validation_alias="SANALPOS_STATE_DIR")
    consumer_group: str | None = None
    """Consumer group of the outcome consumer (default `intake`); a second deployment on the
    same broker (e.g. the fraud-evaluation harness) sets its own."""
    seed_demo_merchant: bool = True
    """Development only: creates the demo merchant with the documented demo key."""
    prefer_wait_max_s: float = Field(default=10.0, gt=0, le=60)
    """Longest `Prefer: wait=N` honoured on POST /v1/payments; larger N are capped to it."""
    export_max_concurrent: int = Field(default=4, ge=1)
    """CSV exports streaming at once (per process); one more is answered 503 with
    Retry-After. Exports follow the merchant's link speed, so they are bounded apart from
    everything else."""
    export_pool_size: int = Field(default=2, ge=1)
    """Connections of the exports' own pool: exports never take the main pool's, whatever
    their number (pages are short queries, so a few serve all running exports)."""
    export_retry_after_s: int = Field(default=5, ge=1)
    """Retry-After of the 503 answered to an export over `export_max_concurrent`."""
    allow_replay_time: bool = False
    """Development only (the fraud replay harness): POST /v1/payments may carry `occurred_at`,
    the payment's original time, used as its event time (`created_at` of payment.initiated)."""

    # --- hosted payment page (issue 11) ---
    public_base_url: str = Field(
        default="http://127.0.0.1:18000", pattern=r"^https?://[^\s/]+(/[^\s]*)?$"
    )
    """Where shoppers' browsers reach intake: checkout page URLs and 3-D Secure return URLs
    are made from it (no trailing slash needed)."""
    checkout_signing_key: SecretStr | None = None
    """Ed25519 private key (PEM) signing the results sent back to shops. In development,
    when unset, one is generated once and kept in `<SANALPOS_STATE_DIR>/secrets/`. Outside
    development, when unset, checkout sessions are refused (503) until one is configured."""
    checkout_max_attempts: int = Field(default=3, ge=1, le=20)
    """Declined card attempts one checkout session accepts (against card testing)."""

    @model_validator(mode="after")
    def _client_key_required_in_production(self) -> Self:
        if not self.is_development and (
            self.client_encryption_key is None
            or not self.client_encryption_key.get_secret_value().strip()
        ):
            raise ValueError(
                "production start-up refused: set real values for client_encryption_key"
            )
        return self

    @model_validator(mode="after")
    def _development_cvc_key_file(self) -> Self:
        if self.allow_replay_time and not self.is_development:
            raise ValueError("production start-up refused: allow_replay_time is for replays")
        if self.webhook_allow_loopback and not self.is_development:
            raise ValueError(
                "production start-up refused: webhook_allow_loopback is for development"
            )
        if self.cvc_keyring is None and not self.is_development:
            raise ValueError("production start-up refused: set real values for cvc_keyring")
        if self.cvc_keyring is None:
            self.cvc_keyring = SecretStr(f"file:{self.dev_cvc_key_path}")
        return self

    @property
    def dev_cvc_key_path(self) -> Path:
        return self.state_dir / DEV_CVC_KEY_FILE

    @property
    def dev_checkout_key_path(self) -> Path:
        return self.state_dir / DEV_CHECKOUT_KEY_FILE

    @property
    def dev_client_key_path(self) -> Path:
        return self.state_dir / DEV_CLIENT_KEY_FILE
