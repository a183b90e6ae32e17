from pydantic import Field, SecretStr, field_validator

from sanalpos_common.fees import DEFAULT_FEE_PLAN, FEE_PLANS
from sanalpos_common.settings import (
    DEV_ADMIN_TOKEN,
    ServiceSettings,
    local_database_url,
    service_config,
)


class SettlementSettings(ServiceSettings):
    model_config = service_config("SETTLEMENT_")

    database_url: SecretStr = SecretStr(local_database_url("settlement"))
    http_port: int = 18003
    admin_token: SecretStr = SecretStr(DEV_ADMIN_TOKEN)
    """Bearer token of the ops endpoints under /admin (batches); refused in production."""
    fallback_fee_plan: str = DEFAULT_FEE_PLAN
    """Plan used when a capture has more installments than the merchant's plan allows."""
    batch_close_interval_s: float = Field(default=30.0, gt=0)
    """How often the cut-off loop looks for batches past their merchant's cut-off."""
    value_date_delay_days: int = Field(default=1, ge=0)
    """Payout ("valör") date = batch date + this many calendar days."""
    consumer_group: str | None = None
    """Kafka consumer group; defaults to the service name (tests use a private one)."""

    @field_validator("fallback_fee_plan")
    @classmethod
    def _known_plan(cls, name: str) -> str:
        if name not in FEE_PLANS:
            raise ValueError(f"unknown fee plan {name!r}; known: {sorted(FEE_PLANS)}")
        return name
