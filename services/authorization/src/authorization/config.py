from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, model_validator

from sanalpos_common.settings import (
    DEV_ADMIN_TOKEN,
    DEV_ISSUER_KEY,
    DEV_PAN_SEALED_KEYRING,
    ServiceSettings,
    local_database_url,
    service_config,
)

REPO_STATE_DIR = Path(__file__).resolve().parents[4] / ".state"
DEV_CVC_KEY_FILE = "keys/cvc.json"
"""Development CVC keyring shared with intake, under SANALPOS_STATE_DIR."""


class AuthorizationSettings(ServiceSettings):
    model_config = service_config("AUTHORIZATION_")

    database_url: SecretStr = SecretStr(local_database_url("authorization"))
    http_port: int = 18002
    pan_keyring: SecretStr = SecretStr(DEV_PAN_SEALED_KEYRING)
    """Key provider spec (`provider_from_spec`): keyring JSON, `env:VAR`, `file:/path`,
    `local:/dir` or `vault-transit:[mount/]name`."""
    cvc_keyring: SecretStr | None = None
    """Key provider spec of the time-bucketed CVC keyring. Development default:
    `file:<SANALPOS_STATE_DIR>/keys/cvc.json`, shared with intake (which rotates it); required
    in production (a Secret file rotated by `sanalpos keys cvc-rotate`)."""
    cvc_rotate_file: bool | None = None
    """Bring the CVC keyring file up to date once at start-up. Default: in development, when
    the CVC keyring is a `file:`/`local:` spec. Periodic rotation is intake's (or the CronJob's)."""
    key_reload_interval_s: float = 60.0
    state_dir: Path = Field(default=REPO_STATE_DIR, validation_alias="SANALPOS_STATE_DIR")
    issuer_key: SecretStr = SecretStr(DEV_ISSUER_KEY)
    """Key the issuer simulator indexes its card accounts with (HMAC of the PAN)."""
    default_limit_major: int = 50_000
    """Credit limit, in major units of the payment currency, for cards the simulator has not seen."""
    seed_test_cards: bool = True
    consumer_group: str | None = None
    """Kafka consumer group; default `authorization`. Tests run a private one."""
    preauth_expiry_s: int = Field(default=604_800, gt=0)
    """AUTHORIZATION_PREAUTH_EXPIRY_S: a pre-authorization not captured within this many seconds
    expires and its hold is released (default 7 days)."""
    preauth_expiry_scan_interval_s: float = Field(default=60.0, gt=0)
    """AUTHORIZATION_PREAUTH_EXPIRY_SCAN_INTERVAL_S: pause between scans for due pre-authorizations."""
    preauth_expiry_batch_size: int = Field(default=500, gt=0)
    """AUTHORIZATION_PREAUTH_EXPIRY_BATCH_SIZE: pre-authorizations expired per transaction."""

    acs_public_url: str = ""
    """AUTHORIZATION_ACS_PUBLIC_URL: the public base URL of this service's simulated 3-D Secure
    ACS (its challenge pages under `/acs/`); `next_action_url` points there. Default:
    `http://127.0.0.1:<http_port>` (development); required in production."""
    three_ds_challenge_ttl_s: int = Field(default=600, gt=0)
    """AUTHORIZATION_THREE_DS_CHALLENGE_TTL_S: a challenge not finished within this many
    seconds is declined as abandoned (default 10 minutes)."""
    three_ds_max_attempts: int = Field(default=3, gt=0)
    """AUTHORIZATION_THREE_DS_MAX_ATTEMPTS: wrong codes before the challenge fails."""
    three_ds_acs_timeout_s: float = Field(default=2.0, gt=0)
    """AUTHORIZATION_THREE_DS_ACS_TIMEOUT_S: how long the directory server waits for an ACS
    before the authentication is `unavailable` (the payment is then declined)."""
    three_ds_expiry_scan_interval_s: float = Field(default=15.0, gt=0)
    """AUTHORIZATION_THREE_DS_EXPIRY_SCAN_INTERVAL_S: pause between scans for due challenges."""
    three_ds_show_code: bool | None = None
    """Show the one-time code on the challenge page; default: in development only."""

    admin_token: SecretStr = SecretStr(DEV_ADMIN_TOKEN)
    """AUTHORIZATION_ADMIN_TOKEN: bearer token of the ops endpoints under /admin (the clearing
    file, the issuer simulator's disputes); refused in production."""
    clearing_time_zone: str = "Europe/Istanbul"
    """AUTHORIZATION_CLEARING_TIME_ZONE: whose calendar day a clearing file covers."""
    clearing_interval_s: float = Field(default=300.0, gt=0)
    """AUTHORIZATION_CLEARING_INTERVAL_S: how often the loop looks for finished days."""
    clearing_settle_s: float = Field(default=600.0, ge=0)
    """AUTHORIZATION_CLEARING_SETTLE_S: a day is published this long after its midnight."""

    @model_validator(mode="after")
    def _development_cvc_key_file(self) -> Self:
        if self.cvc_keyring is None and not self.is_development:
            raise ValueError("production start-up refused: set real values for cvc_keyring")
        if self.cvc_keyring is None:
            self.cvc_keyring = SecretStr(f"file:{self.state_dir / DEV_CVC_KEY_FILE}")
        return self

    @model_validator(mode="after")
    def _acs_public_url(self) -> Self:
        if not self.acs_public_url and not self.is_development:
            raise ValueError("production start-up refused: set acs_public_url (the ACS's URL)")
        if not self.acs_public_url:
            self.acs_public_url = f"http://127.0.0.1:{self.http_port}"
        if not self.acs_public_url.startswith(("http://", "https://")):
            raise ValueError("acs_public_url must be an http(s) URL")
        return self
