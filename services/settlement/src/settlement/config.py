from datetime import date

from pydantic import Field, SecretStr, field_validator

from sanalpos_common.fees import DEFAULT_FEE_PLAN, FEE_PLANS
from sanalpos_common.settings import (
    DEV_ADMIN_TOKEN,
    ServiceSettings,
    local_database_url,
    service_config,
)
from settlement.domain.value_dates import MAX_PAYOUT_DELAY_DAYS, BusinessCalendar, UnknownCalendar


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
    value_date_delay_days: int = Field(default=1, ge=0, le=MAX_PAYOUT_DELAY_DAYS)
    """Payout ("valör") date = batch date + this many business days, for merchants that have
    not chosen a payout plan (`payout_delay_days` on the merchant record)."""
    holiday_country: str = "TR"
    """Whose public holidays are not business days (ISO 3166-1 alpha-2)."""
    extra_holidays: list[date] = Field(default_factory=list)
    """Days off decreed after the holiday data was released, e.g. ["2026-10-30"]."""
    consumer_group: str | None = None
    """Kafka consumer group; defaults to the service name (tests use a private one)."""

    @field_validator("holiday_country")
    @classmethod
    def _known_country(cls, country: str) -> str:
        try:
            BusinessCalendar(country)
        except UnknownCalendar as exc:
            raise ValueError(str(exc)) from None
        return country

    def calendar(self) -> BusinessCalendar:
        return BusinessCalendar(self.holiday_country, frozenset(self.extra_holidays))

    @field_validator("fallback_fee_plan")
    @classmethod
    def _known_plan(cls, name: str) -> str:
        if name not in FEE_PLANS:
            raise ValueError(f"unknown fee plan {name!r}; known: {sorted(FEE_PLANS)}")
        return name
