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
    cvc_keyring: SecretStr = SecretStr(DEV_CVC_KEYRING)
    issuer_key: SecretStr = SecretStr(DEV_ISSUER_KEY)
    """Key the issuer simulator indexes its card accounts with (HMAC of the PAN)."""
    default_limit_major: int = 50_000
    """Credit limit, in major units of the payment currency, for cards the simulator has not seen."""
    seed_test_cards: bool = True
