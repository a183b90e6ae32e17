from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from sanalpos_common.fees import DEFAULT_FEE_PLAN, FEE_PLANS
from sanalpos_common.settings import (
    DEV_ADMIN_TOKEN,
    ServiceSettings,
    local_database_url,
    service_config,
)
from settlement.domain.payout_file import Debtor
from settlement.domain.value_dates import MAX_PAYOUT_DELAY_DAYS, BusinessCalendar, UnknownCalendar

REPO_STATE_DIR = Path(__file__).resolve().parents[4] / ".state"


class SettlementSettings(ServiceSettings):
    model_config = service_config("SETTLEMENT_")
    # Off the payment's critical path (POST -> authorization outcome): batches are worth
    # 100 ms here (fewer fetches, one transaction for several events). Not more: a dispute
    # or a reconciliation right after a capture expects it booked; 500 ms broke four of
    # those flows' tests (docs/performance.md, 2026-12-03 19:30).
    consumer_batch_wait_ms: int = Field(default=100, ge=0, le=5000)

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
    state_dir: Path = Field(default=REPO_STATE_DIR, validation_alias="SANALPOS_STATE_DIR")
    payout_dir: Path | None = None
    """Where payout files (pain.001 XML and CSV) are written; default <state dir>/payouts."""
    payout_interval_s: float = Field(default=300.0, gt=0)
    """How often the payout job looks for batches whose value date has come (business days)."""
    payout_time_zone: str = "Europe/Istanbul"
    """Whose calendar day the periodic payout job runs for."""
    payout_debtor_name: str = "sanalpos Odeme Hizmetleri A.S."
    """The platform's name on the transfers (the debtor of the credit transfers)."""
    payout_debtor_ibans: dict[str, str] = Field(
        default_factory=lambda: {
            "TRY": "TR280001009999901234567890",
            "EUR": "TR980001009999901234567891",
            "USD": "TR710001009999901234567892",
            "GBP": "TR440001009999901234567893",
        }
    )
    """The platform's settlement account per currency the transfers are paid from."""
    payout_debtor_bic: str | None = None
    """The debtor bank's BIC; without one the file says NOTPROVIDED."""
    ledger_day_interval_s: float = Field(default=30.0, gt=0)
    """How often the ledger-day job recomputes the days with new postings (statements)."""
    dispute_fees: dict[str, int] = Field(
        default_factory=lambda: {"TRY": 15_000, "EUR": 1_500, "USD": 1_500, "GBP": 1_500}
    )
    """Fee debited per lost dispute, minor units per currency (none for other currencies)."""
    dispute_response_days: int = Field(default=7, ge=1, le=45)
    """Default time the merchant has to answer a dispute (the issuer may set another)."""
    dispute_answer_grace_s: float = Field(default=300.0, ge=0)
    """A dispute with no answer is lost this long after its deadline: an answer intake took
    just before the deadline still arrives in time."""
    dispute_expiry_interval_s: float = Field(default=60.0, gt=0)
    # --- multi-currency (issue 13, fx) ---
    fx_max_rate_age_s: float = Field(default=96 * 3600.0, gt=0)
    """A rate is fresh for this long after its source published it (TCMB and ECB publish on
    business days: 96 h carries Friday's rate over a weekend and a holiday); stale after, and
    a stale rate never converts a payment."""
    fx_rate_files: dict[Literal["tcmb", "ecb"], Path] = Field(default_factory=dict)
    """Rate files loaded at start-up, e.g. {"tcmb": ".../today.xml"}; the samples in
    settlement/rate_samples are in these formats."""
    consumer_group: str | None = None
    """Kafka consumer group; defaults to the service name (tests use a private one)."""
    recon_time_zone: str = "Europe/Istanbul"
    """Whose calendar day reconciliation's dates are: authorization's clearing time zone."""
    recon_interval_s: float = Field(default=300.0, gt=0)
    """How often the reconciliation loop looks for clearing files not reconciled yet."""
    recon_missing_file_after_s: float = Field(default=7200.0, ge=0)
    """Yesterday's merchants without a clearing file are reconciled without one this long
    after midnight (their ledger lines are then reported missing from clearing)."""
    recon_settle_s: float = Field(default=300.0, ge=0)
    """A clearing file is reconciled this long after it is complete, so the captures and
    refunds it lists (other topics) have been read."""

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

    def payout_folder(self) -> Path:
        return self.payout_dir or self.state_dir / "payouts"

    def payout_debtor(self) -> Debtor:
        return Debtor(
            self.payout_debtor_name, dict(self.payout_debtor_ibans), self.payout_debtor_bic
        )
