"""Each rule action, each list, the evaluation order and the bands (pure)."""

from __future__ import annotations

from typing import Any

from fraud.domain.policy import Bands, Policy, RuleAction, Verdict, compile_rule, decide
from sanalpos_common.schemas.events import FraudDecision

ATTRS: dict[str, Any] = {
    "amount": 777_700,
    "currency": "TRY",
    "card.fingerprint": "fp-1",
    "card.bin": "41111111",
    "customer.email": "shopper@example.com",
    "customer.ip": "10.0.0.1",
    "billing.country": "TR",
}


def run(
    rules: list[tuple[str, str, RuleAction]] = (),  # type: ignore[assignment]
    score: int = 5,
    lists: dict[str, set[str]] | None = None,
    bands: dict[str, Bands] | None = None,
    merchant: str = "m1",
) -> Verdict:
    compiled = tuple(compile_rule(n, e, a) for n, e, a in rules)
    policy = Policy(1, compiled, Bands(), bands or {})
    return decide(policy, merchant, score, ("base",), ATTRS, lists or {})


def test_each_action_on_its_own() -> None:
    assert run([("ok", "amount > 0", RuleAction.ALLOW)], score=90).decision is FraudDecision.APPROVE
    blocked = run([("no", "amount >= 777700", RuleAction.BLOCK)])
    assert (blocked.decision, blocked.decided_by) == (FraudDecision.DECLINE, "block_rule")
    review = run([("look", "amount >= 777700", RuleAction.REVIEW)])
    assert (review.decision, review.action) == (FraudDecision.REVIEW, RuleAction.REVIEW)
    step_up = run([("tds", "amount >= 777700", RuleAction.THREE_DS)])
    assert (step_up.decision, step_up.action) == (FraudDecision.REVIEW, RuleAction.THREE_DS)
    assert run([("quiet", "amount < 10", RuleAction.BLOCK)]).decision is FraudDecision.APPROVE


def test_allow_beats_block_beats_review_and_3ds() -> None:
    everything = [
        ("a-review", "amount > 0", RuleAction.REVIEW),
        ("b-3ds", "amount > 0", RuleAction.THREE_DS),
        ("c-block", "amount > 0", RuleAction.BLOCK),
        ("d-allow", "amount > 0", RuleAction.ALLOW),
    ]
    verdict = run(everything, score=95)
    assert (verdict.decision, verdict.decided_by) == (FraudDecision.APPROVE, "allow_rule")
    assert verdict.score == 95  # kept for the record
    assert set(verdict.rules_fired) == {"a-review", "b-3ds", "c-block", "d-allow"}
    assert "rule:d-allow:allow" in verdict.reasons
    assert run(everything[:3]).decision is FraudDecision.DECLINE
    assert run(everything[:2]).action is RuleAction.REVIEW  # manual review over step-up


def test_a_review_rule_never_lowers_a_declining_score() -> None:
    verdict = run([("look", "amount > 0", RuleAction.REVIEW)], score=80)
    assert (verdict.decision, verdict.decided_by) == (FraudDecision.DECLINE, "score")


def test_lists_allow_first_then_block() -> None:
    blocked = run(lists={"block_cards": {"fp-1"}})
    assert (blocked.decision, blocked.decided_by) == (FraudDecision.DECLINE, "block_list")
    assert "list:block_cards:card.fingerprint" in blocked.reasons
    both = run(lists={"block_emails": {"shopper@example.com"}, "allow_bins": {"41111111"}})
    assert (both.decision, both.decided_by) == (FraudDecision.APPROVE, "allow_list")
    assert run(lists={"block_countries": {"TR"}}).decision is FraudDecision.DECLINE
    assert run(lists={"block_ips": {"10.0.0.1"}}).decision is FraudDecision.DECLINE
    # an allow list beats a block rule too
    allowed = run([("no", "amount > 0", RuleAction.BLOCK)], lists={"allow_cards": {"fp-1"}})
    assert allowed.decision is FraudDecision.APPROVE


def test_bands_default_and_per_merchant() -> None:
    assert run(score=64).decision is FraudDecision.APPROVE
    assert run(score=65).decision is FraudDecision.REVIEW
    assert run(score=75).decision is FraudDecision.DECLINE
    strict = {"m1": Bands(review_at=30, decline_at=50)}
    assert run(score=40, bands=strict).decision is FraudDecision.REVIEW
    assert run(score=40, bands=strict, merchant="m2").decision is FraudDecision.APPROVE
