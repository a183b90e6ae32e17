"""Reason codes -> sentences a reviewer can read (pure)."""

from __future__ import annotations

from collections.abc import Sequence

_FIXED = {
    "amount_high": "amount is high (>= 10,000.00 in two-decimal units)",
    "amount_very_high": "amount is very high (>= 5x the high-amount threshold)",
    "amount_card_testing": "tiny amount, typical of card testing",
    "card_testing_burst": "tiny amounts in a burst on one card",
    "action:3ds": "step-up: 3-D Secure asked for",
}
_PREFIXED = {
    "velocity_card_10m": "{} payments on this card in ~10 minutes",
    "velocity_card_1h": "{} payments on this card in ~1 hour",
    "model": "learned model's fraud probability {}",
    "model_feature": "model: {} pushed the risk up",
}


def explain(reason: str) -> str:
    if reason in _FIXED:
        return _FIXED[reason]
    if reason.startswith("rule:"):
        _, name, action = ([*reason.split(":", 2), "", ""])[:3]
        return f"rule '{name}' matched (action {action})"
    if reason.startswith("list:"):
        _, name, attribute = ([*reason.split(":", 2), "", ""])[:3]
        return f"{attribute} is on list '{name}'"
    prefix, _, value = reason.partition(":")
    if prefix in _PREFIXED and value:
        return _PREFIXED[prefix].format(value)
    return reason


def explain_all(reasons: Sequence[str]) -> list[str]:
    return [explain(r) for r in reasons]


DECIDED_BY = {
    "allow_list": "approved: on an allow list (score kept for the record)",
    "allow_rule": "approved by an allow rule (score kept for the record)",
    "block_list": "declined: on a block list",
    "block_rule": "declined by a block rule",
    "rule": "sent to review by a rule",
    "score": "decided by the score and the merchant's bands",
}
