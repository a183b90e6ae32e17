"""Which installment counts a card may be paid in at a merchant, and at what commission."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import asyncpg

from intake.adapters.bins import BinRepository
from intake.domain.bins import BinInfo, InstallmentLimits, describe_bin, max_installments, refusal
from sanalpos_common.db import Connection
from sanalpos_common.fees import DEFAULT_FEE_PLAN, FeePlan, UnknownFeePlan, fee_plan

log = logging.getLogger(__name__)


class InstallmentsNotAllowed(Exception):
    """The requested installment count is not allowed for this card at this merchant."""

    def __init__(self, reason: str, allowed: list[int]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.allowed = allowed


@dataclass(frozen=True)
class InstallmentOption:
    count: int
    commission_bps: int


@dataclass(frozen=True)
class CardInstallments:
    card: BinInfo
    fee_plan: str
    options: list[InstallmentOption]


def plan_of(name: str) -> FeePlan:
    try:
        return fee_plan(name)
    except UnknownFeePlan:  # merchant writes validate the name; a plan retired since then:
        log.warning("merchant fee plan %r is unknown; using %r", name, DEFAULT_FEE_PLAN)
        return fee_plan(DEFAULT_FEE_PLAN)


async def _merchant_terms(db: Connection | asyncpg.Pool, merchant_id: str) -> tuple[int, str]:
    row = await db.fetchrow(
        "SELECT max_installments, fee_plan FROM merchants WHERE id = $1", merchant_id
    )
    if row is None:
        raise LookupError(f"no merchant {merchant_id}")
    return row["max_installments"], row["fee_plan"]


async def _limits(
    db: Connection | asyncpg.Pool, merchant_id: str, bin_digits: str
) -> tuple[BinInfo, FeePlan, InstallmentLimits]:
    merchant_max, plan_name = await _merchant_terms(db, merchant_id)
    info = describe_bin(bin_digits, await BinRepository(db).find(bin_digits))
    plan = plan_of(plan_name)
    limits = InstallmentLimits(
        card_type=info.card_type,
        merchant_max=merchant_max,
        fee_plan_max=plan.max_installments,
        programme_max=info.programme_max_installments,
        programme=info.programme,
    )
    return info, plan, limits


async def card_installments(
    db: Connection | asyncpg.Pool, merchant_id: str, bin_digits: str
) -> CardInstallments:
    info, plan, limits = await _limits(db, merchant_id, bin_digits)
    options = [
        InstallmentOption(count, plan.rate_bps(count))
        for count in range(1, max_installments(limits) + 1)
    ]
    return CardInstallments(info, plan.name, options)


async def check_installments(
    db: Connection | asyncpg.Pool, merchant_id: str, bin_digits: str, installments: int
) -> None:
    """Raises InstallmentsNotAllowed when the count is refused. A single payment is always
    allowed, so the usual case costs no query."""
    if installments <= 1:
        return
    _, _, limits = await _limits(db, merchant_id, bin_digits)
    reason = refusal(limits, installments)
    if reason is not None:
        raise InstallmentsNotAllowed(reason, list(range(1, max_installments(limits) + 1)))
