from pydantic import SecretStr

from sanalpos_common.settings import (
    DEV_CVC_KEYRING,
    DEV_ISSUER_KEY,
    DEV_PAN_KEYRING,
    ServiceSettings,
    local_database_url,
    service_config,
)


class AuthorizationSettings(ServiceSettings):
    model_config = service_config("AUTHORIZATION_")

    database_url: SecretStr = SecretStr(local_database_url("authorization"))
    http_port: int = 18002
    pan_keyring: SecretStr = SecretStr(DEV_PAN_KEYRING)
    """Key provider spec (`provider_from_spec`): keyring JSON, `env:VAR`, `file:/path`,
    `local:/dir` or `vault-transit:[mount/]name`."""
    cvc_keyring: SecretStr = SecretStr(DEV_CVC_KEYRING)
    """Key provider spec of the CVC keyring (same forms as `pan_keyring`)."""
    cvc_rotate_file: bool | None = None
    """Bring the CVC keyring file up to date once at start-up. Default: in development, when
    the CVC keyring is a `file:`/`local:` spec. Periodic rotation is intake's (or the CronJob's)."""
    key_reload_interval_s: float = 60.0
    issuer_key: SecretStr = SecretStr(DEV_ISSUER_KEY)
    """Key the issuer simulator indexes its card accounts with (HMAC of the PAN)."""
    default_limit_major: int = 50_000
    """Credit limit, in major units of the payment currency, for cards the simulator has not seen."""
    seed_test_cards: bool = True
