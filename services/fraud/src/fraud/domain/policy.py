"""Managed fraud policy: rules, lists and decision bands, and how they decide (pure).

Order (fixed): allow (allow lists, `allow` rules) -> block (block lists, `block` rules) ->
3-D Secure / review (`3ds`, `review` rules, and the score bands). Allow and block decide
outright; the score is kept and recorded either way. Otherwise the more severe of "what the
rules asked" and "what the score band says" wins: a `review` rule never lowers a score that
is in the decline band. When both kinds fire, manual review wins over a 3-D Secure step-up.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from fraud.domain.expressions import Expression, parse
from sanalpos_common.schemas.events import FraudDecision


class RuleAction(StrEnum):
    ALLOW = "allow"
    BLOCK = "block"
    REVIEW = "review"
    THREE_DS = "3ds"


class ListKind(StrEnum):
    CARD = "card"
    BIN = "bin"
    IP = "ip"
    EMAIL = "email"
    COUNTRY = "country"


# The attributes a payment offers to rules (name -> what it is). Unknown at run time = None.
ATTRIBUTES: Mapping[str, str] = {
    "amount": "amount in minor units of its currency",
    "amount_normalised": "amount rescaled to two decimals (JPY x100, KWD /10)",
    "currency": "ISO 4217 code",
    "merchant_id": "merchant id",
    "installments": "number of installments (1-12)",
    "capture": "true for a sale, false for a pre-authorization",
    "hour_utc": "hour of the payment's created_at, UTC (0-23)",
    "score": "risk score 0-99 before rules and lists",
    "card.bin": "first 6-8 digits",
    "card.brand": "card brand (visa, mastercard, ...)",
    "card.fingerprint": "keyed fingerprint of the card number",
    "card.velocity_10m_count": "payments on this card in the trailing ~10 minutes (this one included)",
    "card.velocity_1h_count": "payments on this card in the trailing ~hour (this one included)",
    "customer.ip": "shopper IP address",
    "customer.email": "shopper email, lower-cased",
    "customer.email_domain": "domain part of the shopper email",
    "customer.device_id": "shopper device id",
    "billing.country": "billing country (ISO 3166 alpha-2)",
    "billing.distance_to_merchant_km": "great-circle distance billing location -> merchant",
    "merchant.category_code": "merchant category code (MCC)",
    "ip_country": "country of the shopper IP, when known",
    "card_country": "issuing country of the card, when known",
    "model.probability": "learned model's fraud probability (0-1), when a model is loaded",
}

# Which attributes each list kind matches (country: any of them).
LIST_KIND_ATTRIBUTES: Mapping[ListKind, tuple[str, ...]] = {
    ListKind.CARD: ("card.fingerprint",),
    ListKind.BIN: ("card.bin",),
    ListKind.IP: ("customer.ip",),
    ListKind.EMAIL: ("customer.email",),
    ListKind.COUNTRY: ("billing.country", "ip_country", "card_country"),
}

# The standard lists: applied to every payment without a rule.
STANDARD_LISTS: Mapping[str, tuple[RuleAction, ListKind]] = {
    f"{action.value}_{plural}": (action, kind)
    for action in (RuleAction.ALLOW, RuleAction.BLOCK)
    for kind, plural in (
        (ListKind.CARD, "cards"),
        (ListKind.BIN, "bins"),
        (ListKind.IP, "ips"),
        (ListKind.EMAIL, "emails"),
        (ListKind.COUNTRY, "countries"),
    )
}


@dataclass(frozen=True)
class Bands:
    review_at: int = 65
    decline_at: int = 75

    def __post_init__(self) -> None:
        if not 0 < self.review_at <= self.decline_at <= 99:
            raise ValueError("need 0 < review_at <= decline_at <= 99")

    def decide(self, score: int) -> FraudDecision:
        if score >= self.decline_at:
            return FraudDecision.DECLINE
        if score >= self.review_at:
            return FraudDecision.REVIEW
        return FraudDecision.APPROVE


@dataclass(frozen=True)
class Rule:
    name: str
    expression: Expression
    action: RuleAction
    version: int = 1


def compile_rule(
    name: str, source: str, action: RuleAction | str, known_lists: Collection[str] | None = None
) -> Rule:
    """Raises InvalidExpression (unknown attribute, unknown list, syntax)."""
    return Rule(name, parse(source, ATTRIBUTES.keys(), known_lists), RuleAction(action))


@dataclass(frozen=True)
class Policy:
    """A snapshot of the managed policy at one version."""

    version: int = 0
    rules: tuple[Rule, ...] = ()
    default_bands: Bands = field(default_factory=Bands)
    merchant_bands: Mapping[str, Bands] = field(default_factory=dict)
    list_kinds: Mapping[str, ListKind] = field(default_factory=dict)

    def bands_for(self, merchant_id: str) -> Bands:
        return self.merchant_bands.get(merchant_id, self.default_bands)


@dataclass(frozen=True)
class Verdict:
    score: int
    decision: FraudDecision
    reasons: tuple[str, ...]
    rules_fired: tuple[str, ...]
    action: RuleAction | None = None
    """For a review: REVIEW (manual) or THREE_DS (step-up)."""
    decided_by: str = "score"
    """allow_list | allow_rule | block_list | block_rule | rule | score"""


def list_candidates(attributes: Mapping[str, Any]) -> set[str]:
    """Every string value of a payment that a list could hold (looked up per batch)."""
    return {v for v in attributes.values() if isinstance(v, str) and v}


def matching_lists(
    attributes: Mapping[str, Any], memberships: Mapping[str, Collection[str]]
) -> dict[str, str]:
    """Standard lists this payment hits -> the attribute that matched."""
    hits: dict[str, str] = {}
    for list_name, (_, kind) in STANDARD_LISTS.items():
        values = memberships.get(list_name, ())
        for attribute in LIST_KIND_ATTRIBUTES[kind]:
            value = attributes.get(attribute)
            if isinstance(value, str) and value in values:
                hits[list_name] = attribute
                break
    return hits


def decide(
    policy: Policy,
    merchant_id: str,
    score: int,
    base_reasons: Sequence[str],
    attributes: Mapping[str, Any],
    memberships: Mapping[str, Collection[str]],
) -> Verdict:
    """`memberships`: list name -> the values of this payment found in that list."""
    hits = matching_lists(attributes, memberships)
    fired: dict[RuleAction, list[str]] = {action: [] for action in RuleAction}
    for rule in policy.rules:
        if rule.expression.evaluate(attributes, memberships):
            fired[rule.action].append(rule.name)
    all_fired = tuple(name for action in RuleAction for name in fired[action])
    reasons = list(base_reasons)
    reasons += [f"list:{name}:{attr}" for name, attr in hits.items()]
    reasons += [f"rule:{name}:{action.value}" for action in RuleAction for name in fired[action]]

    def verdict(decision: FraudDecision, by: str, action: RuleAction | None = None) -> Verdict:
        return Verdict(score, decision, tuple(reasons), all_fired, action, by)

    if any(STANDARD_LISTS[name][0] is RuleAction.ALLOW for name in hits):
        return verdict(FraudDecision.APPROVE, "allow_list")
    if fired[RuleAction.ALLOW]:
        return verdict(FraudDecision.APPROVE, "allow_rule")
    if any(STANDARD_LISTS[name][0] is RuleAction.BLOCK for name in hits):
        return verdict(FraudDecision.DECLINE, "block_list")
    if fired[RuleAction.BLOCK]:
        return verdict(FraudDecision.DECLINE, "block_rule")
    banded = policy.bands_for(merchant_id).decide(score)
    if banded is FraudDecision.DECLINE:
        return verdict(FraudDecision.DECLINE, "score")
    if fired[RuleAction.REVIEW]:
        return verdict(FraudDecision.REVIEW, "rule", RuleAction.REVIEW)
    if fired[RuleAction.THREE_DS]:
        return verdict(FraudDecision.REVIEW, "rule", RuleAction.THREE_DS)
    if banded is FraudDecision.REVIEW:
        return verdict(FraudDecision.REVIEW, "score", RuleAction.REVIEW)
    return verdict(FraudDecision.APPROVE, "score")
