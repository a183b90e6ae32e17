from pydantic import SecretStr

from sanalpos_common.settings import (
    DEV_ADMIN_TOKEN,
    DEV_CVC_KEYRING,
    DEV_FINGERPRINT_KEY,
    DEV_PAN_KEYRING,
    ServiceSettings,
    local_database_url,
    service_config,
)

DEMO_MERCHANT_ID = "mer_demo"
DEMO_API_KEY = "sk_test_sanalpos_demo_key_for_local_development_only"


class IntakeSettings(ServiceSettings):
    model_config = service_config("INTAKE_")

    database_url: SecretStr = SecretStr(local_database_url("intake"))
    http_port: int = 18000
    pan_keyring: SecretStr = SecretStr(DEV_PAN_KEYRING)
    cvc_keyring: SecretStr = SecretStr(DEV_CVC_KEYRING)
    fingerprint_key: SecretStr = SecretStr(DEV_FINGERPRINT_KEY)
    admin_token: SecretStr = SecretStr(DEV_ADMIN_TOKEN)
    seed_demo_merchant: bool = True
    """Development only: creates the demo merchant with the documented demo key."""
