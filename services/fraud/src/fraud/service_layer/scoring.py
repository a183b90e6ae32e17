"""Scores payment.initiated messages; decisions, events and inbox rows commit together.

A batch of messages is one transaction (group commit): for each message in order, the
inbox row (`UnitOfWork.mark_processed`); for each new one, velocity (which sees the
earlier payments of the same batch), the rules, the decision row and the payment.scored
outbox row. Either the whole batch commits or nothing of it does.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import asyncpg

from fraud.domain.scoring import Assessment, PaymentFacts, ScoringRules, Velocity, assess
from sanalpos_common import topics
from sanalpos_common.db import unit_of_work
from sanalpos_common.schemas.codec import new_envelope
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import PaymentInitiated, PaymentScored

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
    assessment: Assessment | None = None
    velocity: Velocity | None = None


class VelocityLedger(Protocol):
    """Velocity for payments in batch order; counts become durable only after commit."""

    def velocity(self, fingerprint: str, at: float) -> Velocity: ...

    def count(self, fingerprint: str, at: float, partition: int) -> None: ...


@dataclass(frozen=True)
class Incoming:
    envelope: Envelope[Any]
    partition: int
    """Stream partition the message came from (where its card's counts live)."""

    @property
    def payment(self) -> PaymentInitiated:
        return self.envelope.payload


_INSERT_DECISIONS = """
INSERT INTO fraud_decisions (payment_id, merchant_id, score, decision, reasons, rules_version,
    amount, currency, card_fingerprint, card_bin, card_last4, velocity_card_10m,
    velocity_card_1h, payment_created_at, message_id)
SELECT d.payment_id, d.merchant_id, d.score, d.decision,
       ARRAY(SELECT jsonb_array_elements_text(d.reasons::jsonb)), d.rules_version, d.amount,
       d.currency, d.card_fingerprint, d.card_bin, d.card_last4, d.velocity_card_10m,
       d.velocity_card_1h, d.payment_created_at, d.message_id
FROM unnest($1::uuid[], $2::text[], $3::smallint[], $4::text[], $5::text[], $6::text[],
            $7::bigint[], $8::text[], $9::text[], $10::text[], $11::text[], $12::int[],
            $13::int[], $14::timestamptz[], $15::uuid[])
     WITH ORDINALITY AS d(payment_id, merchant_id, score, decision, reasons, rules_version,
         amount, currency, card_fingerprint, card_bin, card_last4, velocity_card_10m,
         velocity_card_1h, payment_created_at, message_id, position)
ORDER BY d.position
ON CONFLICT (payment_id) DO NOTHING
RETURNING payment_id
"""


@dataclass(frozen=True)
class PaymentScoring:
    pool: asyncpg.Pool
    rules: ScoringRules
    inbox_consumer: str

    async def score(self, batch: Sequence[Incoming], ledger: VelocityLedger) -> list[ScoreResult]:
        """One transaction for the batch. Raises (and commits nothing) on any failure."""
        results: list[ScoreResult] = []
        decided: list[tuple[int, Incoming, Assessment, Velocity]] = []
        async with unit_of_work(self.pool) as uow:
            for item in batch:
                envelope, payment = item.envelope, item.payment
                if not await uow.mark_processed(
                    self.inbox_consumer, envelope.message_id, topics.PAYMENT_INITIATED
                ):
                    results.append(ScoreResult(Outcome.DUPLICATE))
                    continue
                fingerprint = str(payment.card.fingerprint)
                at = payment.created_at.timestamp()
                velocity = ledger.velocity(fingerprint, at)
                # Counted once per inbox entry: a redelivered message never counts again.
                ledger.count(fingerprint, at, item.partition)
                assessment = assess(
                    PaymentFacts(payment.amount, payment.currency), velocity, self.rules
                )
                decided.append((len(results), item, assessment, velocity))
                results.append(ScoreResult(Outcome.ALREADY_DECIDED, assessment, velocity))
            if not decided:
                return results
            inserted = await self._insert_decisions(uow.conn, decided)
            emitted = []
            for position, item, assessment, velocity in decided:
                payment = item.payment
                if payment.payment_id not in inserted:
                    continue
                inserted.discard(payment.payment_id)  # a payment twice in one batch: once
                results[position] = ScoreResult(Outcome.SCORED, assessment, velocity)
                emitted.append((topics.PAYMENT_SCORED, self._scored(item, assessment)))
            await uow.emit_many(emitted)
        for result, item in zip(results, batch, strict=True):
            self._log(item, result)
        return results

    @staticmethod
    async def _insert_decisions(
        conn: Any, decided: list[tuple[int, Incoming, Assessment, Velocity]]
    ) -> set[uuid.UUID]:
        columns: list[list[Any]] = [[] for _ in range(15)]
        for _, item, assessment, velocity in decided:
            payment = item.payment
            row = (
                payment.payment_id,
                payment.merchant_id,
                assessment.score,
                assessment.decision.value,
                json.dumps(list(assessment.reasons)),
                assessment.rules_version,
                payment.amount,
                payment.currency,
                payment.card.fingerprint,
                payment.card.bin,
                payment.card.last4,
                velocity.card_10m,
                velocity.card_1h,
                payment.created_at,
                item.envelope.message_id,
            )
            for column, value in zip(columns, row, strict=True):
                column.append(value)
        rows = await conn.fetch(_INSERT_DECISIONS, *columns)
        return {row["payment_id"] for row in rows}

    @staticmethod
    def _scored(item: Incoming, assessment: Assessment) -> Envelope[Any]:
        payment = item.payment
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
        return new_envelope(
            topics.PAYMENT_SCORED,
            scored,
            correlation_id=payment.payment_id,
            causation_id=item.envelope.message_id,
            producer=PRODUCER,
        )

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
