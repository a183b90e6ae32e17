"""Installment eligibility rules (domain.bins) and the rates offered (fees)."""

from __future__ import annotations

import pytest

from intake.domain.bins import CardType, InstallmentLimits, max_installments, refusal
from sanalpos_common.fees import fee_plan


def limits(**overrides: object) -> InstallmentLimits:
    values: dict[str, object] = {
        "card_type": CardType.CREDIT,
        "merchant_max": 12,
        "fee_plan_max": 12,
    }
    values.update(overrides)
    return InstallmentLimits(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", [CardType.DEBIT, CardType.PREPAID])
def test_debit_and_prepaid_cards_pay_in_one_go(kind: CardType) -> None:
    rule = limits(card_type=kind)
    assert max_installments(rule) == 1
    assert refusal(rule, 1) is None
    reason = refusal(rule, 2)
    assert reason is not None and f"{kind} cards pay in a single installment" in reason


def test_credit_card_up_to_every_ceiling() -> None:
    rule = limits(merchant_max=9, fee_plan_max=12, programme_max=6, programme="CardFinans")
    assert max_installments(rule) == 6
    assert refusal(rule, 6) is None
    assert refusal(rule, 7) == "CardFinans allows at most 6 installments"


def test_merchant_maximum() -> None:
    rule = limits(merchant_max=3)
    assert refusal(rule, 3) is None
    assert refusal(rule, 4) == "this merchant allows at most 3 installments"


def test_fee_plan_maximum() -> None:
    rule = limits(fee_plan_max=fee_plan("single-payment").max_installments)
    assert max_installments(rule) == 1
    assert refusal(rule, 2) == "the merchant's fee plan allows at most 1 installments"


def test_unknown_card_is_left_to_the_issuer() -> None:
    rule = limits(card_type=CardType.UNKNOWN, merchant_max=6)
    assert max_installments(rule) == 6
    assert refusal(rule, 6) is None
    assert refusal(rule, 7) is not None


def test_single_payment_is_always_allowed() -> None:
    assert refusal(limits(card_type=CardType.DEBIT, merchant_max=1, fee_plan_max=1), 1) is None


def test_commission_grows_per_installment() -> None:
    plan = fee_plan("standard")
    assert [plan.rate_bps(n) for n in (1, 2, 3)] == [179, 239, 299]
