"""PaymentScoring.score against PostgreSQL: what one batch transaction does and does not do."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
import pytest

from fraud.bootstrap import MIGRATIONS, SERVICE
from fraud.domain.scoring import ScoringRules, Velocity
from fraud.service_layer.scoring import Incoming, Outcome, PaymentScoring
from sanalpos_common.db import create_pool, migrate
from sanalpos_common.settings import local_database_url

from .conftest import Payments


@dataclass
class CountingLedger:
    """Counts per fingerprint in memory; can be told to fail on the n-th velocity read."""

    counted: dict[str, int] = field(default_factory=dict)
    fail_on: int | None = None
    reads: int = 0

    def velocity(self, fingerprint: str, at: float) -> Velocity:
        self.reads += 1
        if self.fail_on is not None and self.reads >= self.fail_on:
            raise RuntimeError("boom")
        n = self.counted.get(fingerprint, 0) + 1
        return Velocity(n, n)

    def count(self, fingerprint: str, at: float, partition: int) -> None:
        self.counted[fingerprint] = self.counted.get(fingerprint, 0) + 1


@pytest.fixture(scope="module")
async def pool() -> AsyncIterator[asyncpg.Pool]:
    base = os.environ.get("FRAUD_DATABASE_URL", local_database_url("fraud"))
    schema = f"fraud_tx_test_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(base)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    pool = await create_pool(f"{base}?search_path={schema}", max_size=2)
    try:
        await migrate(pool, SERVICE, MIGRATIONS)
        yield pool
    finally:
        await pool.close()
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


@pytest.fixture
def payments() -> Payments:
    return Payments(fingerprint_key=uuid.uuid4().bytes)


def scoring(pool: asyncpg.Pool) -> PaymentScoring:
    return PaymentScoring(pool=pool, rules=ScoringRules(), inbox_consumer="fraud")


async def counts(pool: asyncpg.Pool, message_ids: list[uuid.UUID]) -> tuple[int, int, int]:
    async with pool.acquire() as conn:
        inbox = await conn.fetchval(
            "SELECT count(*) FROM inbox WHERE message_id = ANY($1::uuid[])", message_ids
        )
        decisions = await conn.fetchval(
            "SELECT count(*) FROM fraud_decisions WHERE message_id = ANY($1::uuid[])",
            message_ids,
        )
        outbox = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE convert_from(payload, 'UTF8')::jsonb "
            "->> 'causation_id' = ANY($1::text[])",
            [str(m) for m in message_ids],
        )
    return inbox, decisions, outbox


async def test_a_batch_scores_in_order_and_sees_its_own_velocity(
    pool: asyncpg.Pool, payments: Payments
) -> None:
    envelopes = [payments.envelope(pan="4111111111111111") for _ in range(5)]
    ledger = CountingLedger()
    results = await scoring(pool).score([Incoming(e, 0) for e in envelopes], ledger)
    assert [r.outcome for r in results] == [Outcome.SCORED] * 5
    assert [r.velocity.card_10m for r in results if r.velocity] == [1, 2, 3, 4, 5]
    assert results[3].assessment is not None
    assert "velocity_card_10m:4" in results[3].assessment.reasons
    assert await counts(pool, [e.message_id for e in envelopes]) == (5, 5, 5)
    rows = await pool.fetch(
        "SELECT velocity_card_10m, reasons FROM fraud_decisions "
        "WHERE payment_id = ANY($1::uuid[]) ORDER BY velocity_card_10m",
        [e.payload.payment_id for e in envelopes],
    )
    assert [r["velocity_card_10m"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[4]["reasons"] == ["velocity_card_10m:5"]


async def test_the_same_message_twice_in_a_batch_and_again_later(
    pool: asyncpg.Pool, payments: Payments
) -> None:
    envelope = payments.envelope()
    ledger = CountingLedger()
    first = await scoring(pool).score([Incoming(envelope, 0), Incoming(envelope, 0)], ledger)
    assert [r.outcome for r in first] == [Outcome.SCORED, Outcome.DUPLICATE]
    again = await scoring(pool).score([Incoming(envelope, 0)], ledger)
    assert [r.outcome for r in again] == [Outcome.DUPLICATE]
    assert ledger.counted == {envelope.payload.card.fingerprint: 1}
    assert await counts(pool, [envelope.message_id]) == (1, 1, 1)


async def test_one_payment_under_two_message_ids_is_decided_once(
    pool: asyncpg.Pool, payments: Payments
) -> None:
    original = payments.envelope()
    reissued = original.model_copy(update={"message_id": uuid.uuid4()})
    results = await scoring(pool).score(
        [Incoming(original, 0), Incoming(reissued, 0)], CountingLedger()
    )
    assert [r.outcome for r in results] == [Outcome.SCORED, Outcome.ALREADY_DECIDED]
    inbox, decisions, outbox = await counts(pool, [original.message_id, reissued.message_id])
    assert (inbox, decisions, outbox) == (2, 1, 1)


async def test_a_failing_batch_commits_nothing(pool: asyncpg.Pool, payments: Payments) -> None:
    envelopes = [payments.envelope() for _ in range(3)]
    with pytest.raises(RuntimeError):
        await scoring(pool).score([Incoming(e, 0) for e in envelopes], CountingLedger(fail_on=3))
    assert await counts(pool, [e.message_id for e in envelopes]) == (0, 0, 0)
    results = await scoring(pool).score([Incoming(e, 0) for e in envelopes], CountingLedger())
    assert [r.outcome for r in results] == [Outcome.SCORED] * 3
