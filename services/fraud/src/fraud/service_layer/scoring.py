"""Scores payment.initiated messages; decisions, events and inbox rows commit together.

A batch of messages is one transaction (group commit): the inbox rows of the whole batch in
one statement (`UnitOfWork.mark_all_processed`); then, for each new message in order, velocity (which sees the
earlier payments of the same batch), the built-in score (rules-v1, plus the model's points
when a model is wired), then the managed policy (rules, lists, per-merchant bands; see
domain/policy.py), the decision row and the payment.scored outbox row. The policy version
and the batch's list memberships are one query in the same transaction, so
a rule or list change applies from the next batch on. Either the whole batch commits or
nothing of it does.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import asyncpg

from fraud.adapters import policy_store
from fraud.adapters.decisions import DecisionRepository, DecisionRow
from fraud.config import SERVICE
from fraud.domain.attributes import payment_attributes
from fraud.domain.features import Observation, storable
from fraud.domain.features_live import observation_of
from fraud.domain.policy import Bands, RuleAction, Verdict, decide, list_candidates
from fraud.domain.scoring import (
    MAX_SCORE,
    RULES_VERSION,
    Assessment,
    PaymentFacts,
    ScoringRules,
    Velocity,
    assess,
)
from fraud.model.combine import REASON_MIN_P
from fraud.service_layer.policy_cache import PolicyCache
from sanalpos_common import topics, tracing
from sanalpos_common.db import UnitOfWork, unit_of_work
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import PaymentInitiated, PaymentScored, payment_ref

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    SCORED = "scored"
    DUPLICATE = "duplicate"
    """This message id is already in the inbox: nothing changes, nothing is emitted."""
    ALREADY_DECIDED = "already_decided"
    """New message id, but this payment already has a decision: it is kept, no new event."""


@dataclass(frozen=True)
class ScoreResult:
    outcome: Outcome
    assessment: Assessment | None = None
    velocity: Velocity | None = None
    verdict: Verdict | None = None


@dataclass(frozen=True)
class ModelOutput:
    probability: float
    points: int
    """Score points added to the built-in score (fraud.model.combine.model_points)."""
    version: str
    top_features: tuple[tuple[str, float], ...] = ()


class ModelHook(Protocol):
    """In-process model: one output per attribute map (policy.ATTRIBUTES names)."""

    def predict(self, rows: Sequence[Mapping[str, Any]]) -> Sequence[ModelOutput]: ...


class VelocityLedger(Protocol):
    """Velocity for payments in batch order; counts become durable only after commit."""

    def velocity(self, fingerprint: str, at: float) -> Velocity: ...

    def count(self, fingerprint: str, at: float, partition: int) -> None: ...


@runtime_checkable
class FeatureLedger(Protocol):
    """A ledger that also yields the streaming model features (fraud.domain.features):
    this payment's, from earlier payments only, then counts it (durable after commit)."""

    def features(self, obs: Observation, partition: int) -> dict[str, float]: ...


@dataclass(frozen=True)
class Incoming:
    envelope: Envelope[Any]
    partition: int
    """Stream partition the message came from (where its card's counts live)."""

    @property
    def payment(self) -> PaymentInitiated:
        return self.envelope.payload


@dataclass
class _Decided:
    position: int
    item: Incoming
    velocity: Velocity
    base: Assessment
    attributes: dict[str, Any]
    model: ModelOutput | None
    verdict: Verdict | None = None


@dataclass
class PaymentScoring:
    pool: asyncpg.Pool
    rules: ScoringRules
    inbox_consumer: str
    model: ModelHook | None = None
    policy: PolicyCache = field(init=False)

    def __post_init__(self) -> None:
        self.policy = PolicyCache(Bands(self.rules.review_threshold, self.rules.decline_threshold))

    async def score(self, batch: Sequence[Incoming], ledger: VelocityLedger) -> list[ScoreResult]:
        """One transaction for the batch. Raises (and commits nothing) on any failure."""
        results: list[ScoreResult] = []
        decided: list[_Decided] = []
        async with unit_of_work(self.pool, producer=SERVICE) as uow:
            fresh = await uow.mark_all_processed(
                self.inbox_consumer,
                [(item.envelope.message_id, topics.PAYMENT_INITIATED) for item in batch],
            )
            for item in batch:
                envelope, payment = item.envelope, item.payment
                if envelope.message_id not in fresh:  # handled before, or twice in this batch
                    results.append(ScoreResult(Outcome.DUPLICATE))
                    continue
                fresh.discard(envelope.message_id)
                fingerprint = str(payment.card.fingerprint)
                at = payment.created_at.timestamp()
                velocity = ledger.velocity(fingerprint, at)
                # Counted once per inbox entry: a redelivered message never counts again.
                ledger.count(fingerprint, at, item.partition)
                base = assess(PaymentFacts(payment.amount, payment.currency), velocity, self.rules)
                attributes = payment_attributes(
                    payment, velocity, base.score, extra=_streaming_features(ledger, item)
                )
                decided.append(_Decided(len(results), item, velocity, base, attributes, None))
                results.append(ScoreResult(Outcome.ALREADY_DECIDED, base, velocity))
            if not decided:
                return results
            self._apply_model(decided)
            version, found = await policy_store.version_and_memberships(
                uow.conn, {v for d in decided for v in list_candidates(d.attributes)}
            )
            policy = await self.policy.current(uow.conn, version)
            for d in decided:
                payment = d.item.payment
                score = min(MAX_SCORE, d.base.score + (d.model.points if d.model else 0))
                reasons = d.base.reasons + _model_reasons(d.model)
                d.verdict = decide(policy, payment.merchant_id, score, reasons, d.attributes, found)
            rows = [_decision_row(d, policy.version) for d in decided]
            inserted = await DecisionRepository(uow.conn).add_many(rows)
            for d in decided:
                payment = d.item.payment
                if payment.payment_id not in inserted:
                    continue
                inserted.discard(payment.payment_id)  # a payment twice in one batch: once
                assert d.verdict is not None
                results[d.position] = ScoreResult(
                    Outcome.SCORED, _assessment(d.verdict), d.velocity, d.verdict
                )
                await _emit_scored(uow, d.item, d.verdict)
        for result, item in zip(results, batch, strict=True):
            self._log(item, result)
        return results

    def _apply_model(self, decided: list[_Decided]) -> None:
        if self.model is None:
            return
        outputs = self.model.predict([d.attributes for d in decided])
        for d, output in zip(decided, outputs, strict=True):
            d.model = output
            d.attributes["model.probability"] = output.probability

    @staticmethod
    def _log(item: Incoming, result: ScoreResult) -> None:
        extra = {"payment_id": str(item.payment.payment_id)}
        if result.outcome is Outcome.DUPLICATE:
            log.info("duplicate message %s skipped", item.envelope.message_id, extra=extra)
        elif result.outcome is Outcome.ALREADY_DECIDED:
            log.warning("payment already scored under another message; kept", extra=extra)
        elif result.assessment is not None:
            log.info(
                "scored %d -> %s (%s)",
                result.assessment.score,
                result.assessment.decision.value,
                ",".join(result.assessment.reasons) or "-",
                extra=extra,
            )


def _decision_row(d: _Decided, policy_version: int) -> DecisionRow:
    payment, verdict, model = d.item.payment, d.verdict, d.model
    assert verdict is not None
    return DecisionRow(
        payment_id=payment.payment_id,
        merchant_id=payment.merchant_id,
        score=verdict.score,
        decision=verdict.decision.value,
        reasons=verdict.reasons,
        rules_version=RULES_VERSION,
        amount=payment.amount,
        currency=payment.currency,
        card_fingerprint=payment.card.fingerprint,
        card_bin=payment.card.bin,
        card_last4=payment.card.last4,
        velocity_card_10m=d.velocity.card_10m,
        velocity_card_1h=d.velocity.card_1h,
        payment_created_at=payment.created_at,
        message_id=d.item.envelope.message_id,
        rules_fired=verdict.rules_fired,
        action=verdict.action.value if verdict.action else None,
        decided_by=verdict.decided_by,
        policy_version=policy_version,
        model_version=model.version if model else None,
        model_probability=model.probability if model else None,
        top_features=model.top_features if model else (),
        attributes=d.attributes,
    )


async def _emit_scored(uow: UnitOfWork, item: Incoming, verdict: Verdict) -> None:
    """payment.scored, caused by the payment.initiated message it answers."""
    payment = item.payment
    reasons = verdict.reasons
    if verdict.action is RuleAction.THREE_DS:
        reasons = (*reasons, "action:3ds")
    uow.cause = item.envelope
    if tracing.active:  # under this payment's scoring span: payment.scored is its child
        with tracing.activate(tracing.span_for(item.envelope.message_id)):
            await uow.emit(_scored(payment, verdict, reasons))
    else:
        await uow.emit(_scored(payment, verdict, reasons))
    uow.cause = None


def _scored(payment: PaymentInitiated, verdict: Verdict, reasons: tuple[str, ...]) -> PaymentScored:
    return PaymentScored(
        **payment_ref(payment),
        score=verdict.score,
        decision=verdict.decision,
        reasons=reasons,
        capture=payment.capture,
        installments=payment.installments,
        card=payment.card,
        three_d_secure=payment.three_d_secure,
        return_url=payment.return_url,
    )


def _model_reasons(model: ModelOutput | None) -> tuple[str, ...]:
    if model is None or model.points <= 0 or model.probability < REASON_MIN_P:
        return ()  # a model that barely moved the score leaves no reason
    return (f"model:{model.probability:.4f}",)


def _streaming_features(ledger: VelocityLedger, item: Incoming) -> dict[str, Any] | None:
    """`{"features": {...}}` (NaN as null) when the ledger keeps streaming features: the
    model reads them (fraud.model.hook) and they are stored with the decision."""
    if not isinstance(ledger, FeatureLedger):
        return None
    return {"features": storable(ledger.features(observation_of(item.payment), item.partition))}


def _assessment(verdict: Verdict) -> Assessment:
    return Assessment(verdict.score, verdict.decision, verdict.reasons, RULES_VERSION)
