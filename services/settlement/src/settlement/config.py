from pydantic import SecretStr

from sanalpos_common.settings import ServiceSettings, local_database_url, service_config


class SettlementSettings(ServiceSettings):
    model_config = service_config("SETTLEMENT_")

    database_url: SecretStr = SecretStr(local_database_url("settlement"))
    http_port: int = 18003
    default_mdr_bps: int = 179
    """Merchant discount rate in basis points when a merchant has no fee plan (1.79%)."""
    default_installment_bps: int = 60
    """Extra commission per installment beyond the first, in basis points."""
