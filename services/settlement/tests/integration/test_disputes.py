"""Disputes against the real PostgreSQL: what may be disputed, the hold in the merchant's open
batch, the merchant's answer through the consumer (late, twice, someone else's), the issuer's
events, and the expiry pass with an injected clock."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import asyncpg
import pytest

from sanalpos_common import topics
from sanalpos_common.messaging import idempotent
from sanalpos_common.messaging.consumer import NonRetryable
from sanalpos_common.messaging.idempotent import IdempotentHandler
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import (
    DisputeDecided,
    DisputeRaised,
    DisputeResponded,
    DisputeResponse,
    PaymentRefunded,
)
from settlement.adapters.repositories import PostgresRepositories
from settlement.bootstrap import CONSUMER
from settlement.service_layer.disputes import DisputeDesk, PaymentNotDisputable, RaiseRequest
from settlement.service_layer.handlers import SettlementHandlers

from .conftest import envelope
from .test_batches import capture

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
GRACE = timedelta(minutes=5)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def desk(pool: asyncpg.Pool, clock: Clock) -> DisputeDesk:
    return DisputeDesk(pool, "settlement", fees={"TRY": 15_000}, grace=GRACE, clock=clock)


@pytest.fixture
def consume(pool: asyncpg.Pool, desk: DisputeDesk) -> IdempotentHandler:
    handlers = SettlementHandlers(PostgresRepositories(), disputes=desk)
    return idempotent(pool, CONSUMER, handlers.table())


def merchant() -> str:
    return f"mer_disp_{uuid.uuid4().hex[:8]}"


async def kinds(pool: asyncpg.Pool, dispute_id: uuid.UUID) -> dict[str, bool]:
    """Each booked kind, and whether it sits in a batch."""
    rows = await pool.fetch(
        "SELECT kind, batch_id IS NOT NULL AS batched FROM ledger_transactions "
        "WHERE payment_id = $1",
        dispute_id,
    )
    return {r["kind"]: r["batched"] for r in rows}


async def status(pool: asyncpg.Pool, dispute_id: uuid.UUID) -> tuple[str, str | None]:
    row = await pool.fetchrow(
        "SELECT status, outcome_reason FROM disputes WHERE dispute_id = $1", dispute_id
    )
    assert row is not None
    return row["status"], row["outcome_reason"]


async def announced(pool: asyncpg.Pool, payment_id: uuid.UUID) -> int:
    count = await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE topic = $1 AND message_key = $2",
        topics.DISPUTE_UPDATED,
        str(payment_id),
    )
    return int(count)


def answer(
    dispute_id: uuid.UUID, payment_id: uuid.UUID, merchant_id: str, at: datetime
) -> DisputeResponded:
    return DisputeResponded(
        dispute_id=dispute_id,
        payment_id=payment_id,
        merchant_id=merchant_id,
        response=DisputeResponse.EVIDENCE,
        text="delivered and signed for",
        responded_at=at,
    )


async def test_a_dispute_claims_at_most_the_captured_amount_less_refunds(
    pool: asyncpg.Pool, handle: IdempotentHandler, desk: DisputeDesk
) -> None:
    m = merchant()
    payment_id = await capture(handle, m, NOW, 10_000)
    refund = PaymentRefunded(
        refund_id=uuid.uuid4(),
        payment_id=payment_id,
        merchant_id=m,
        amount=4_000,
        currency="TRY",
        reason="returned",
    )
    await handle(
        topics.PAYMENT_REFUNDED, envelope(topics.PAYMENT_REFUNDED, refund, NOW, payment_id)
    )
    with pytest.raises(PaymentNotDisputable) as refused:
        await desk.raise_dispute(RaiseRequest(payment_id, "10.4", "fraud", amount=6_001))
    assert refused.value.code == "amount_not_disputable"
    with pytest.raises(PaymentNotDisputable) as unknown:
        await desk.raise_dispute(RaiseRequest(uuid.uuid4(), "10.4", "fraud"))
    assert unknown.value.code == "payment_not_found"

    row = await desk.raise_dispute(RaiseRequest(payment_id, "10.4", "fraud"))
    assert (row["amount"], row["fee"], row["respond_by"]) == (6_000, 15_000, NOW + timedelta(7))
    assert await kinds(pool, row["dispute_id"]) == {"dispute_hold": True}
    assert await announced(pool, payment_id) == 1
    with pytest.raises(PaymentNotDisputable):  # nothing left once the rest is disputed
        await desk.raise_dispute(RaiseRequest(payment_id, "10.4", "again", amount=1))


async def test_the_merchants_answer_once_in_time_and_only_its_own(
    pool: asyncpg.Pool, handle: IdempotentHandler, desk: DisputeDesk, consume: IdempotentHandler
) -> None:
    m = merchant()
    payment_id = await capture(handle, m, NOW, 10_000)
    row = await desk.raise_dispute(
        RaiseRequest(payment_id, "13.1", "not received", respond_by=NOW + timedelta(hours=1))
    )
    dispute_id = row["dispute_id"]

    def delivered(payload: DisputeResponded) -> Envelope[Any]:
        return envelope(topics.DISPUTE_RESPONDED, payload, NOW, payment_id)

    with pytest.raises(NonRetryable):
        await consume(
            topics.DISPUTE_RESPONDED,
            delivered(answer(dispute_id, payment_id, "mer_someone_else", NOW)),
        )
    late = answer(dispute_id, payment_id, m, NOW + timedelta(hours=1, seconds=1))
    await consume(topics.DISPUTE_RESPONDED, delivered(late))
    assert await status(pool, dispute_id) == ("needs_response", None)

    in_time = delivered(answer(dispute_id, payment_id, m, NOW + timedelta(minutes=59)))
    await consume(topics.DISPUTE_RESPONDED, in_time)
    await consume(topics.DISPUTE_RESPONDED, in_time)
    assert await status(pool, dispute_id) == ("under_review", None)
    assert await announced(pool, payment_id) == 2  # raised, answered: the redelivery is skipped
    evidence = await pool.fetchval(
        "SELECT evidence->>'text' FROM disputes WHERE dispute_id = $1", dispute_id
    )
    assert evidence == "delivered and signed for"


async def test_the_issuer_simulators_events_raise_and_rule_it(
    pool: asyncpg.Pool, handle: IdempotentHandler, consume: IdempotentHandler
) -> None:
    m = merchant()
    payment_id = await capture(handle, m, NOW, 10_000)
    dispute_id = uuid.uuid4()
    raised = DisputeRaised(
        dispute_id=dispute_id,
        payment_id=payment_id,
        merchant_id=m,
        amount=2_500,
        currency="TRY",
        reason_code="10.4",
        reason="fraud",
        raised_at=NOW,
    )
    await consume(topics.DISPUTE_RAISED, envelope(topics.DISPUTE_RAISED, raised, NOW, payment_id))
    assert await status(pool, dispute_id) == ("needs_response", None)

    def ruling(outcome: Literal["won", "lost"]) -> Envelope[Any]:
        decided = DisputeDecided(
            dispute_id=dispute_id,
            payment_id=payment_id,
            merchant_id=m,
            outcome=outcome,
            decided_at=NOW,
        )
        return envelope(topics.DISPUTE_DECIDED, decided, NOW, payment_id)

    await consume(topics.DISPUTE_DECIDED, ruling("lost"))
    await consume(topics.DISPUTE_DECIDED, ruling("won"))
    assert await status(pool, dispute_id) == ("lost", "issuer_lost")
    assert await kinds(pool, dispute_id) == {
        "dispute_hold": True,
        "dispute_loss": True,
        "dispute_fee": True,
    }

    someone_else = raised.model_copy(update={"dispute_id": uuid.uuid4(), "merchant_id": "x"})
    with pytest.raises(NonRetryable):
        await consume(
            topics.DISPUTE_RAISED,
            envelope(topics.DISPUTE_RAISED, someone_else, NOW, payment_id),
        )


async def test_no_answer_is_lost_after_the_deadline_and_its_grace(
    pool: asyncpg.Pool, handle: IdempotentHandler, desk: DisputeDesk, clock: Clock
) -> None:
    m = merchant()
    payment_id = await capture(handle, m, NOW, 10_000)
    deadline = NOW + timedelta(hours=2)
    row = await desk.raise_dispute(RaiseRequest(payment_id, "13.1", "x", respond_by=deadline))
    dispute_id = row["dispute_id"]

    clock.now = deadline + GRACE
    assert dispute_id not in await desk.expire_due()
    clock.now = deadline + GRACE + timedelta(seconds=1)
    assert dispute_id in await desk.expire_due()
    assert dispute_id not in await desk.expire_due()
    assert await status(pool, dispute_id) == ("lost", "no_response")
    balance = await pool.fetchval(
        "SELECT sum(CASE WHEN direction = 'credit' THEN amount ELSE -amount END) "
        "FROM ledger_entries WHERE account = $1",
        f"merchant:{m}:dispute_hold",
    )
    assert balance == 0
