"""Scores one payment.initiated and records the decision, its event and the inbox row at once."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import asyncpg
from sanalpos_common import topics
from sanalpos_common.db import unit_of_work
from sanalpos_common.schemas.codec import new_envelope
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import PaymentInitiated, PaymentScored

from fraud.adapters.decisions import DecisionRecord, DecisionRepository
from fraud.domain.scoring import Assessment, PaymentFacts, ScoringRules, Velocity, assess

log = logging.getLogger(__name__)
PRODUCER = "fraud"


class Outcome(StrEnum):
    SCORED = "scored"
    DUPLICATE = "duplicate"
    """This message id is already in the inbox: nothing changes, nothing is emitted."""
    ALREADY_DECIDED = "already_decided"
    """New message id, but this payment already has a decision: it is kept, no new event."""


@dataclass(frozen=True)
class ScoreResult:
    outcome: Outcome
    assessment: Assessment

    @property
    def counts_for_velocity(self) -> bool:
        """Velocity is updated once per inbox entry, never for a redelivered message."""
        return self.outcome is not Outcome.DUPLICATE


@dataclass(frozen=True)
class PaymentScoring:
    pool: asyncpg.Pool
    rules: ScoringRules
    inbox_consumer: str

    async def score(self, envelope: Envelope[Any], velocity: Velocity) -> ScoreResult:
        payment: PaymentInitiated = envelope.payload
        assessment = assess(PaymentFacts(payment.amount, payment.currency), velocity, self.rules)
        async with unit_of_work(self.pool) as uow:
            if not await uow.mark_processed(
                self.inbox_consumer, envelope.message_id, topics.PAYMENT_INITIATED
            ):
                log.info("duplicate message %s skipped", envelope.message_id)
                return ScoreResult(Outcome.DUPLICATE, assessment)
            record = DecisionRecord(
                payment_id=payment.payment_id,
                merchant_id=payment.merchant_id,
                amount=payment.amount,
                currency=payment.currency,
                card_fingerprint=payment.card.fingerprint,
                card_bin=payment.card.bin,
                card_last4=payment.card.last4,
                payment_created_at=payment.created_at,
                message_id=envelope.message_id,
                assessment=assessment,
                velocity=velocity,
            )
            if not await DecisionRepository(uow.conn).add(record):
                log.warning("payment already scored under another message; decision kept")
                return ScoreResult(Outcome.ALREADY_DECIDED, assessment)
            scored = PaymentScored(
                payment_id=payment.payment_id,
                merchant_id=payment.merchant_id,
                score=assessment.score,
                decision=assessment.decision,
                reasons=assessment.reasons,
                amount=payment.amount,
                currency=payment.currency,
                capture=payment.capture,
                installments=payment.installments,
                card=payment.card,
            )
            await uow.emit(
                topics.PAYMENT_SCORED,
                new_envelope(
                    topics.PAYMENT_SCORED,
                    scored,
                    correlation_id=payment.payment_id,
                    causation_id=envelope.message_id,
                    producer=PRODUCER,
                ),
            )
        log.info(
            "scored %d -> %s (%s)",
            assessment.score,
            assessment.decision.value,
            ",".join(assessment.reasons) or "-",
        )
        return ScoreResult(Outcome.SCORED, assessment)
