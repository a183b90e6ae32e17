"""What settlement knows of a merchant: where its business day ends and what it pays. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sanalpos_common import business_day
from sanalpos_common.fees import DEFAULT_FEE_PLAN, FEE_PLANS, FeePlan, fee_plan
from sanalpos_common.schemas.events import MerchantUpdated

DEFAULT_SETTLEMENT_CURRENCY = "TRY"


class InvalidMerchantProfile(ValueError):
    pass


@dataclass(frozen=True)
class MerchantProfile:
    merchant_id: str
    time_zone: str = business_day.DEFAULT_TIME_ZONE
    cutoff: time = business_day.DEFAULT_CUTOFF
    fee_plan: str = DEFAULT_FEE_PLAN
    settlement_currency: str = DEFAULT_SETTLEMENT_CURRENCY
    payout_delay_days: int | None = None
    """Business days from batch date to value date; None: the service's default."""
    payout_plan: str = "batch"
    """`batch` or `per_installment` (domain/installments.py)."""
    version: int = 0
    """0: never heard of; the defaults stand in until the first merchant.updated."""
    # --- multi-currency (issue 13, fx) ---
    currency_settlement: dict[str, str] = field(default_factory=dict)
    """Per payment currency: "convert" into settlement_currency, or "in_currency"."""
    fx_markup_bps: int = 0
    fx_no_rate: str = "in_currency"

    def conversion_target(self, currency: str) -> str | None:
        """The currency a payment in `currency` is to be converted into; None: settled in
        its own currency."""
        if currency == self.settlement_currency:
            return None
        if self.currency_settlement.get(currency) != "convert":
            return None
        return self.settlement_currency

    def batch_date(self, at: datetime) -> date:
        return business_day.batch_date(at, self.time_zone, self.cutoff)

    def closes_at(self, day: date) -> datetime:
        return business_day.batch_closes_at(day, self.time_zone, self.cutoff)

    def plan_for(self, installments: int, fallback: str = DEFAULT_FEE_PLAN) -> FeePlan:
        """The merchant's plan; a capture its plan does not allow (intake should have refused
        it, but the money has moved) is still booked, at the fallback plan's rate."""
        plan = fee_plan(self.fee_plan)
        if installments <= plan.max_installments:
            return plan
        return fee_plan(fallback)


def profile_from_event(event: MerchantUpdated) -> MerchantProfile:
    if event.fee_plan not in FEE_PLANS:
        raise InvalidMerchantProfile(f"fee_plan: unknown plan {event.fee_plan!r}")
    try:
        ZoneInfo(event.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidMerchantProfile(f"time_zone: unknown zone {event.time_zone!r}") from None
    return MerchantProfile(
        merchant_id=event.merchant_id,
        time_zone=event.time_zone,
        cutoff=event.cutoff_time,
        fee_plan=event.fee_plan,
        settlement_currency=event.settlement_currency,
        payout_delay_days=event.payout_delay_days,
        payout_plan=event.payout_plan or "batch",
        version=event.version,
        currency_settlement=dict(event.currency_settlement),
        fx_markup_bps=event.fx_markup_bps,
        fx_no_rate=event.fx_no_rate,
    )
