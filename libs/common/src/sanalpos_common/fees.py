"""Fee plans: the commission a merchant pays per payment, shared by intake (what it shows for
each installment count) and settlement (what it books). Rates in basis points (1/100 of 1%)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sanalpos_common.money import apply_rate_bps

DEFAULT_FEE_PLAN: Final = "standard"


@dataclass(frozen=True)
class FeePlan:
    name: str
    mdr_bps: int
    """Merchant discount rate on every payment."""
    installment_bps: int
    """Added for each installment beyond the first (the acquirer finances the instalments)."""
    max_installments: int = 12

    def rate_bps(self, installments: int) -> int:
        if not 1 <= installments <= self.max_installments:
            raise ValueError(f"plan {self.name!r} allows 1..{self.max_installments} installments")
        return self.mdr_bps + self.installment_bps * (installments - 1)

    def fee(self, amount: int, installments: int) -> int:
        return apply_rate_bps(amount, self.rate_bps(installments))


FEE_PLANS: Final[dict[str, FeePlan]] = {
    plan.name: plan
    for plan in (
        FeePlan("standard", mdr_bps=179, installment_bps=60),
        FeePlan("volume", mdr_bps=149, installment_bps=55),
        FeePlan("single-payment", mdr_bps=159, installment_bps=0, max_installments=1),
    )
}


class UnknownFeePlan(KeyError):
    pass


def fee_plan(name: str) -> FeePlan:
    try:
        return FEE_PLANS[name]
    except KeyError:
        raise UnknownFeePlan(name) from None
