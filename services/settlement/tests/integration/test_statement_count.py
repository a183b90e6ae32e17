"""What one sale's capture costs settlement in Postgres round trips, through the handler as
the service wires it (inbox and transaction included), on the real database. Each count is
an upper bound: a change that adds a statement to the common path fails here."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import time

import asyncpg
import pytest

from sanalpos_common import topics
from sanalpos_common.db import create_pool
from sanalpos_common.messaging import idempotent
from sanalpos_common.messaging.idempotent import IdempotentHandler
from sanalpos_common.schemas.events import MerchantUpdated, PaymentCaptured, PaymentVoided
from sanalpos_common.testing import StatementLog
from settlement.adapters.repositories import PostgresRepositories
from settlement.bootstrap import CONSUMER
from settlement.service_layer.handlers import SettlementHandlers

from .conftest import envelope, utc

AT = utc(2026, 3, 2, 10, 0)


@pytest.fixture
async def counted(schema_dsn: str) -> AsyncIterator[tuple[IdempotentHandler, StatementLog]]:
    statements = StatementLog()
    pool = await create_pool(schema_dsn, min_size=1, max_size=1, init=statements.attach)
    try:
        handler = idempotent(pool, CONSUMER, SettlementHandlers(PostgresRepositories()).table())
        yield handler, statements
    finally:
        await pool.close()


def _captured(merchant_id: str, payment_id: uuid.UUID) -> PaymentCaptured:
    return PaymentCaptured(
        payment_id=payment_id,
        merchant_id=merchant_id,
        amount=25_000,
        currency="TRY",
        installments=1,
        auth_code="123456",
        authorized_amount=25_000,
    )


async def _capture(handle: IdempotentHandler, merchant_id: str) -> uuid.UUID:
    payment_id = uuid.uuid4()
    event = envelope(topics.PAYMENT_CAPTURED, _captured(merchant_id, payment_id), AT, payment_id)
    await handle(topics.PAYMENT_CAPTURED, event)
    return payment_id


async def _merchant(handle: IdempotentHandler) -> str:
    merchant_id = f"mer_{uuid.uuid4().hex[:10]}"
    event = MerchantUpdated(
        merchant_id=merchant_id,
        name="Count Ltd",
        settlement_currency="TRY",
        time_zone="Europe/Istanbul",
        cutoff_time=time(23, 0),
        fee_plan="standard",
        version=1,
    )
    await handle(
        topics.MERCHANT_UPDATED, envelope(topics.MERCHANT_UPDATED, event, AT, uuid.uuid4())
    )
    return merchant_id


async def test_a_capture_into_an_open_batch_costs_five_statements(
    counted: tuple[IdempotentHandler, StatementLog], pool: asyncpg.Pool
) -> None:
    handle, statements = counted
    merchant_id = await _merchant(handle)
    await _capture(handle, merchant_id)  # opens the day's batch, and warms the statements
    before = await statements.mark()
    payment_id = await _capture(handle, merchant_id)
    spent = statements.queries[before:]
    # BEGIN, inbox, booked-and-profile, the booking, COMMIT
    assert len(spent) <= 5, spent
    row = await pool.fetchrow(
        "SELECT p.status, p.gross_amount, p.fee_amount, b.status AS batch_status, "
        "(SELECT count(*) FROM ledger_entries e WHERE e.transaction_id = p.capture_transaction_id)"
        " AS entries FROM settlement_payments p JOIN settlement_batches b ON b.id = p.batch_id "
        "WHERE p.payment_id = $1",
        payment_id,
    )
    assert row is not None
    assert (row["status"], row["gross_amount"], row["batch_status"]) == ("captured", 25_000, "open")
    assert row["entries"] == 3 and row["fee_amount"] > 0


async def test_the_days_first_capture_opens_its_batch_in_two_more(
    counted: tuple[IdempotentHandler, StatementLog],
) -> None:
    handle, statements = counted
    merchant_id = await _merchant(handle)
    await _capture(handle, merchant_id)  # warms the statements (another merchant's batch)
    other = await _merchant(handle)
    before = await statements.mark()
    await _capture(handle, other)
    spent = statements.queries[before:]
    # + the booking that finds no open batch, and the batch's insert
    assert len(spent) <= 7, spent


async def test_a_redelivered_capture_costs_the_inbox_only_and_books_nothing(
    counted: tuple[IdempotentHandler, StatementLog], pool: asyncpg.Pool
) -> None:
    handle, statements = counted
    merchant_id = await _merchant(handle)
    payment_id = uuid.uuid4()
    event = envelope(topics.PAYMENT_CAPTURED, _captured(merchant_id, payment_id), AT, payment_id)
    await handle(topics.PAYMENT_CAPTURED, event)
    before = await statements.mark()
    await handle(topics.PAYMENT_CAPTURED, event)
    assert len(statements.queries[before:]) <= 3  # BEGIN, inbox (a duplicate), COMMIT
    # a new message for the same capture: the booked check stops it before any write
    again = envelope(topics.PAYMENT_CAPTURED, _captured(merchant_id, payment_id), AT, payment_id)
    await handle(topics.PAYMENT_CAPTURED, again)
    count = await pool.fetchval(
        "SELECT count(*) FROM ledger_transactions WHERE payment_id = $1", payment_id
    )
    assert count == 1


async def test_a_void_read_before_its_capture_is_taken_by_the_booking(
    counted: tuple[IdempotentHandler, StatementLog], pool: asyncpg.Pool
) -> None:
    handle, _ = counted
    merchant_id = await _merchant(handle)
    payment_id = uuid.uuid4()
    void = PaymentVoided(
        payment_id=payment_id,
        merchant_id=merchant_id,
        amount=25_000,
        currency="TRY",
        after_capture=True,
    )
    await handle(topics.PAYMENT_VOIDED, envelope(topics.PAYMENT_VOIDED, void, AT, payment_id))
    event = envelope(topics.PAYMENT_CAPTURED, _captured(merchant_id, payment_id), AT, payment_id)
    await handle(topics.PAYMENT_CAPTURED, event)
    status = await pool.fetchval(
        "SELECT status FROM settlement_payments WHERE payment_id = $1", payment_id
    )
    waiting = await pool.fetchval(
        "SELECT count(*) FROM voids_before_capture WHERE payment_id = $1", payment_id
    )
    kinds = await pool.fetch(
        "SELECT kind FROM ledger_transactions WHERE payment_id = $1 ORDER BY kind", payment_id
    )
    assert (status, waiting) == ("voided", 0)
    assert [r["kind"] for r in kinds] == ["capture", "reversal"]
