"""What one payment costs in Postgres statements (round trips), through the real handler and
the idempotent consumer's transaction on the real database, counted by asyncpg's query logger
on the connection the unit of work borrows. BEGIN, the inbox row, the outbox write (one
`executemany`, one round trip) and COMMIT are included; the outbox relay is not.

The bounds are what the handlers cost now (issue 9): adding a statement to one of these paths
fails here. Each path also checks its outcome, so a cheaper path must still be the same path.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import asyncpg
from pydantic import BaseModel

from authorization.adapters.issuer_simulator import IssuerSimulator
from authorization.adapters.payment_gate import PaymentGate, ScoreArrival
from authorization.adapters.review_repository import ReviewRepository
from sanalpos_common import topics
from sanalpos_common.messaging import idempotent
from sanalpos_common.schemas.codec import new_envelope
from sanalpos_common.schemas.events import (
    FraudDecision,
    ReviewDecision,
    ReviewResolved,
)
from sanalpos_common.testing import StatementLog, wait_for

from .conftest import LIMIT_MAJOR, MERCHANT, Lifecycle, fresh_pan

SALE_STATEMENTS = 7
"""BEGIN, inbox, payment lock and score gate, issuer (account + balance + hold), authorization
row, outbox (authorized + captured), COMMIT."""
DECLINE_STATEMENTS = 6
"""A fraud decline or a hold for review: no issuer statement."""


@dataclass
class CountingPool:
    """A pool whose every borrowed connection reports each statement it sends."""

    pool: asyncpg.Pool
    log: StatementLog = field(default_factory=StatementLog)

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[Any]:
        async with self.pool.acquire() as conn:
            conn.add_query_logger(self.log)
            try:
                yield conn
            finally:
                conn.remove_query_logger(self.log)

    async def count(
        self, lifecycle: Lifecycle, payload: BaseModel, topic: str = topics.PAYMENT_SCORED
    ) -> list[str]:
        """The statements that handling `payload` once (as the consumer does) costs."""
        await self.log.take()
        payment_id = payload.payment_id  # type: ignore[attr-defined]
        envelope = new_envelope(topic, payload, correlation_id=payment_id, producer="test")
        pool = cast(asyncpg.Pool, self)
        await idempotent(pool, "authorization", lifecycle.handlers.table())(topic, envelope)
        return await self.log.take()


def _fails(statements: list[str], bound: int) -> str:
    return f"{len(statements)} statements (bound {bound}):\n" + "\n".join(statements)


async def test_an_approved_sale_with_capture_costs_at_most_seven_statements(
    lifecycle: Lifecycle,
) -> None:
    counting = CountingPool(lifecycle.pool)
    pan = fresh_pan()  # no account yet: the issuer opens it in the same statement
    first = lifecycle.scored(pan, 12_500, capture=True)

    statements = await counting.count(lifecycle, first)

    assert len(statements) <= SALE_STATEMENTS, _fails(statements, SALE_STATEMENTS)
    assert (statements[0], statements[-1]) == ("BEGIN;", "COMMIT;")
    state = await lifecycle.state(first.payment_id)
    assert (state["status"], state["captured_amount"]) == ("captured", 12_500)
    assert (state["hold_status"], state["hold_captured"]) == ("captured", 12_500)
    assert await lifecycle.topics_of(first.payment_id) == [
        topics.PAYMENT_AUTHORIZED,
        topics.PAYMENT_CAPTURED,
    ]
    # The card's account exists now: a second sale on it costs the same.
    second = lifecycle.scored(pan, 7_500, capture=True)
    statements = await counting.count(lifecycle, second)
    assert len(statements) <= SALE_STATEMENTS, _fails(statements, SALE_STATEMENTS)
    assert (await lifecycle.state(second.payment_id))["status"] == "captured"
    await lifecycle.assert_balanced(pan, limit_major=50_000)  # the issuer's default limit
    assert await lifecycle.available(pan) == 50_000 * 100 - 20_000


async def test_declines_and_reviews_cost_no_more_than_a_sale(lifecycle: Lifecycle) -> None:
    counting = CountingPool(lifecycle.pool)
    pan = fresh_pan()

    blocked = lifecycle.scored(pan, 5_000, decision=FraudDecision.DECLINE)
    statements = await counting.count(lifecycle, blocked)
    assert len(statements) <= DECLINE_STATEMENTS, _fails(statements, DECLINE_STATEMENTS)
    assert (await lifecycle.last(blocked.payment_id))[1]["response_code"] == "59"

    doubtful = lifecycle.scored(pan, 5_000, decision=FraudDecision.REVIEW)
    statements = await counting.count(lifecycle, doubtful)
    assert len(statements) <= DECLINE_STATEMENTS, _fails(statements, DECLINE_STATEMENTS)
    assert await lifecycle.topics_of(doubtful.payment_id) == [topics.PAYMENT_ACTION_REQUIRED]
    # Its approval: the lock, the pending review, its resolution, then as a sale would.
    approval = ReviewResolved(
        payment_id=doubtful.payment_id,
        merchant_id=MERCHANT,
        decision=ReviewDecision.APPROVE,
        resolved_by="analyst@example.com",
    )
    statements = await counting.count(lifecycle, approval, topics.REVIEW_RESOLVED)
    assert len(statements) <= SALE_STATEMENTS + 2, _fails(statements, SALE_STATEMENTS + 2)
    assert await lifecycle.topics_of(doubtful.payment_id) == [
        topics.PAYMENT_ACTION_REQUIRED,
        topics.PAYMENT_AUTHORIZED,
    ]

    # Over the balance of a card whose account is open: the issuer answers 51 in one statement.
    await lifecycle.pay(pan, 10_000)
    too_much = lifecycle.scored(pan, 50_000 * 100, capture=True)
    statements = await counting.count(lifecycle, too_much)
    assert len(statements) <= SALE_STATEMENTS, _fails(statements, SALE_STATEMENTS)
    assert (await lifecycle.last(too_much.payment_id))[1]["response_code"] == "51"
    await lifecycle.assert_balanced(pan, limit_major=50_000)

    # A second score of a payment changes nothing and costs only the gate.
    again = lifecycle.scored(pan, 5_000, payment_id=blocked.payment_id)
    statements = await counting.count(lifecycle, again)
    assert len(statements) <= 4, _fails(statements, 4)
    assert await lifecycle.topics_of(blocked.payment_id) == [topics.PAYMENT_DECLINED]


async def test_first_payments_of_a_new_card_never_spend_the_same_limit(
    private_pool: asyncpg.Pool,
) -> None:
    # No account yet for the card: ten concurrent first payments race to open its account and
    # balance in the issuer's one statement; 1,000.00 TRY fits exactly three of 300.00.
    lifecycle = Lifecycle(private_pool, issuer=IssuerSimulator(b"test-key", LIMIT_MAJOR))
    pan = fresh_pan()
    payments = [lifecycle.scored(pan, 30_000, capture=True) for _ in range(10)]

    await asyncio.gather(*(lifecycle.deliver(topics.PAYMENT_SCORED, p) for p in payments))

    rows = await private_pool.fetch(
        "SELECT status, response_code FROM authorizations WHERE payment_id = ANY($1)",
        [p.payment_id for p in payments],
    )
    assert (
        sorted((r["response_code"], r["status"]) for r in rows)
        == [("00", "captured")] * 3 + [("51", "declined")] * 7
    )
    assert await lifecycle.available(pan) == LIMIT_MAJOR * 100 - 3 * 30_000
    await lifecycle.assert_balanced(pan)
    accounts = await private_pool.fetchval(
        "SELECT count(*) FROM card_accounts WHERE card_ref = $1", lifecycle.issuer.card_ref(pan)
    )
    assert accounts == 1


async def test_a_first_payment_over_the_limit_opens_the_balance_and_declines(
    private_pool: asyncpg.Pool,
) -> None:
    lifecycle = Lifecycle(private_pool, issuer=IssuerSimulator(b"test-key", LIMIT_MAJOR))
    pan = fresh_pan()

    over = await lifecycle.pay(pan, LIMIT_MAJOR * 100 + 1, capture=True)

    assert (await lifecycle.last(over))[1]["response_code"] == "51"
    assert await lifecycle.available(pan) == LIMIT_MAJOR * 100  # opened, nothing taken
    assert (
        await private_pool.fetchval("SELECT count(*) FROM holds WHERE payment_id = $1", over) == 0
    )
    within = await lifecycle.pay(pan, LIMIT_MAJOR * 100, capture=True)
    assert (await lifecycle.state(within))["status"] == "captured"
    assert await lifecycle.available(pan) == 0
    await lifecycle.assert_balanced(pan)


async def test_an_account_unlike_the_one_it_would_open_is_screened_on_its_own_terms(
    lifecycle: Lifecycle,
) -> None:
    # Seeded with another limit and expiry than a new account would get: the issuer screens
    # the stored account (two statements more), and its limit is the one that counts.
    pan = await lifecycle.card(limit_major=100)
    counting = CountingPool(lifecycle.pool)

    over = lifecycle.scored(pan, 100 * 100 + 1, capture=True)
    statements = await counting.count(lifecycle, over)
    assert len(statements) <= SALE_STATEMENTS + 2, _fails(statements, SALE_STATEMENTS + 2)
    assert (await lifecycle.last(over.payment_id))[1]["response_code"] == "51"
    sale = await lifecycle.pay(pan, 100 * 100, capture=True)
    assert (await lifecycle.state(sale))["status"] == "captured"
    await lifecycle.assert_balanced(pan, limit_major=100)


async def test_a_score_waiting_on_the_payment_lock_sees_what_its_holder_committed(
    private_pool: asyncpg.Pool,
) -> None:
    # The score's one round trip takes the lock, then reads: a resolution remembered by the
    # lock's holder while the score waited is taken by the score, not left behind.
    payment_id = uuid.uuid4()
    early = ReviewResolved(
        payment_id=payment_id,
        merchant_id=MERCHANT,
        decision=ReviewDecision.APPROVE,
        resolved_by="analyst@example.com",
    )
    waiter_pid: list[int] = []

    async def score() -> ScoreArrival:
        async with private_pool.acquire() as conn, conn.transaction():
            waiter_pid.append(conn.get_server_pid())
            return await PaymentGate(conn).score_arrived(payment_id)

    async def waiting() -> bool:
        return bool(
            waiter_pid
            and await private_pool.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                "AND pid = $1",
                waiter_pid[0],
            )
        )

    async with private_pool.acquire() as holder, holder.transaction():
        await PaymentGate(holder).lock(payment_id)
        arrival = asyncio.create_task(score())
        await wait_for(waiting)
        await ReviewRepository(holder).remember_early_resolution(early, uuid.uuid4())
    taken = await arrival

    assert taken == ScoreArrival(False, early)
    assert (
        await private_pool.fetchval(
            "SELECT count(*) FROM review_resolutions_before_score WHERE payment_id = $1",
            payment_id,
        )
        == 0
    )


async def test_a_score_of_a_scored_payment_leaves_a_kept_resolution_alone(
    lifecycle: Lifecycle,
) -> None:
    pan = fresh_pan()
    payment_id = await lifecycle.pay(pan, 5_000, decision=FraudDecision.DECLINE)
    await lifecycle.pool.execute(
        "INSERT INTO review_resolutions_before_score "
        "(payment_id, merchant_id, decision, resolved_by, message_id) "
        "VALUES ($1, $2, 'approve', 'analyst@example.com', $3)",
        payment_id,
        MERCHANT,
        uuid.uuid4(),
    )
    async with lifecycle.pool.acquire() as conn, conn.transaction():
        arrival = await PaymentGate(conn).score_arrived(payment_id)
        assert await PaymentGate(conn).already_scored(payment_id)
    assert arrival == ScoreArrival(True, None)
    assert (
        await lifecycle.pool.fetchval(
            "SELECT count(*) FROM review_resolutions_before_score WHERE payment_id = $1",
            payment_id,
        )
        == 1
    )
