"""Booking and closing batches against real PostgreSQL: the consumer's handler (as wired in
the service, inbox included) fed envelopes directly, and the batch closer with a fake clock."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date, datetime, time
from typing import Any

import asyncpg

from sanalpos_common import topics
from sanalpos_common.messaging.idempotent import IdempotentHandler
from sanalpos_common.schemas.events import (
    MerchantUpdated,
    PaymentCaptured,
    PaymentRefunded,
    PaymentVoided,
)
from settlement.bootstrap import CONSUMER
from settlement.service_layer.batch_closing import BatchCloser

from .conftest import envelope, utc


def merchant() -> str:
    return f"mer_{uuid.uuid4().hex[:10]}"


async def capture(
    handle: IdempotentHandler,
    merchant_id: str,
    at: datetime,
    amount: int = 10_000,
    *,
    currency: str = "TRY",
    installments: int = 1,
    payment_id: uuid.UUID | None = None,
) -> uuid.UUID:
    payment_id = payment_id or uuid.uuid4()
    event = PaymentCaptured(
        payment_id=payment_id,
        merchant_id=merchant_id,
        amount=amount,
        currency=currency,
        installments=installments,
        auth_code="123456",
        authorized_amount=amount,
    )
    await handle(topics.PAYMENT_CAPTURED, envelope(topics.PAYMENT_CAPTURED, event, at, payment_id))
    return payment_id


async def void(
    handle: IdempotentHandler,
    merchant_id: str,
    payment_id: uuid.UUID,
    at: datetime,
    *,
    after_capture: bool = True,
) -> None:
    event = PaymentVoided(
        payment_id=payment_id,
        merchant_id=merchant_id,
        amount=10_000,
        currency="TRY",
        after_capture=after_capture,
    )
    await handle(topics.PAYMENT_VOIDED, envelope(topics.PAYMENT_VOIDED, event, at, payment_id))


def refund_event(
    merchant_id: str, payment_id: uuid.UUID, amount: int, refund_id: uuid.UUID | None = None
) -> PaymentRefunded:
    return PaymentRefunded(
        refund_id=refund_id or uuid.uuid4(),
        payment_id=payment_id,
        merchant_id=merchant_id,
        amount=amount,
        currency="TRY",
        reason="customer returned goods",
    )


async def update_merchant(
    handle: IdempotentHandler, merchant_id: str, version: int, **changes: Any
) -> None:
    fields: dict[str, Any] = {
        "merchant_id": merchant_id,
        "name": "Shop",
        "settlement_currency": "TRY",
        "time_zone": "America/New_York",
        "cutoff_time": time(18, 0),
        "fee_plan": "volume",
        "version": version,
    }
    event = MerchantUpdated.model_validate({**fields, **changes})
    await handle(
        topics.MERCHANT_UPDATED,
        envelope(topics.MERCHANT_UPDATED, event, utc(2026, 1, 1), uuid.uuid4()),
    )


async def batches_of(pool: asyncpg.Pool, merchant_id: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT * FROM settlement_batches WHERE merchant_id = $1 ORDER BY batch_date, opened_at",
        merchant_id,
    )


async def settled_events(pool: asyncpg.Pool, payment_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT payload FROM outbox WHERE topic = $1 AND message_key = $2",
        topics.PAYMENT_SETTLED,
        str(payment_id),
    )
    return [json.loads(r["payload"])["payload"] for r in rows]


async def payment_status(pool: asyncpg.Pool, payment_id: uuid.UUID) -> str:
    status: str = await pool.fetchval(
        "SELECT status FROM settlement_payments WHERE payment_id = $1", payment_id
    )
    return status


async def assert_ledger_balanced(pool: asyncpg.Pool) -> None:
    unbalanced = await pool.fetch(
        "SELECT currency, sum(CASE direction WHEN 'debit' THEN amount ELSE -amount END) AS d "
        "FROM ledger_entries GROUP BY currency HAVING "
        "sum(CASE direction WHEN 'debit' THEN amount ELSE -amount END) <> 0"
    )
    assert unbalanced == []


async def test_capture_joins_the_batch_of_its_business_date_in_the_merchants_zone(
    pool: asyncpg.Pool, handle: IdempotentHandler
) -> None:
    merchant_id = merchant()
    await update_merchant(handle, merchant_id, 1)  # New York, cut-off 18:00, plan "volume"
    before = await capture(handle, merchant_id, utc(2026, 6, 1, 21, 59))  # 17:59 local
    at_cutoff = await capture(handle, merchant_id, utc(2026, 6, 1, 22, 0))  # 18:00 local
    batches = await batches_of(pool, merchant_id)
    assert [(b["batch_date"], b["status"]) for b in batches] == [
        (date(2026, 6, 1), "open"),
        (date(2026, 6, 2), "open"),
    ]
    assert batches[0]["closes_at"] == utc(2026, 6, 1, 22, 0)
    in_batch = {
        r["payment_id"]: r["batch_id"]
        for r in await pool.fetch("SELECT payment_id, batch_id FROM settlement_payments")
    }
    assert in_batch[before] == batches[0]["id"] and in_batch[at_cutoff] == batches[1]["id"]
    assert await payment_status(pool, before) == "captured"
    assert await settled_events(pool, before) == [], "settled only when the batch closes"
    fee = await pool.fetchval(
        "SELECT fee_amount FROM settlement_payments WHERE payment_id = $1", before
    )
    assert fee == 149  # the "volume" plan: 1.49%


async def test_merchant_not_heard_of_uses_istanbul_2359_and_the_standard_plan(
    pool: asyncpg.Pool, handle: IdempotentHandler
) -> None:
    merchant_id = merchant()
    payment_id = await capture(handle, merchant_id, utc(2026, 6, 1, 20, 59), installments=3)
    [batch] = await batches_of(pool, merchant_id)
    assert batch["batch_date"] == date(2026, 6, 2)  # 23:59 in Istanbul is past the cut-off
    assert batch["closes_at"] == utc(2026, 6, 2, 20, 59)
    fee = await pool.fetchval(
        "SELECT fee_amount FROM settlement_payments WHERE payment_id = $1", payment_id
    )
    assert fee == 179 + 2 * 60


async def test_merchant_updates_apply_by_version_never_backwards(
    pool: asyncpg.Pool, handle: IdempotentHandler
) -> None:
    merchant_id = merchant()
    await update_merchant(handle, merchant_id, 2, fee_plan="volume")
    await update_merchant(handle, merchant_id, 1, fee_plan="standard")  # late, older
    await update_merchant(handle, merchant_id, 2, fee_plan="single-payment")  # same version
    row = await pool.fetchrow(
        "SELECT fee_plan, version FROM merchants WHERE merchant_id = $1", merchant_id
    )
    assert (row["fee_plan"], row["version"]) == ("volume", 2)
    await update_merchant(handle, merchant_id, 3, fee_plan="standard", time_zone="Europe/Berlin")
    row = await pool.fetchrow(
        "SELECT fee_plan, version, time_zone FROM merchants WHERE merchant_id = $1", merchant_id
    )
    assert (row["fee_plan"], row["version"], row["time_zone"]) == ("standard", 3, "Europe/Berlin")


async def test_new_cutoff_reschedules_the_open_batch(
    pool: asyncpg.Pool, handle: IdempotentHandler
) -> None:
    merchant_id = merchant()
    await update_merchant(handle, merchant_id, 1)
    await capture(handle, merchant_id, utc(2026, 6, 1, 12, 0))
    await update_merchant(handle, merchant_id, 2, cutoff_time=time(20, 30))
    [batch] = await batches_of(pool, merchant_id)
    assert batch["closes_at"] == utc(2026, 6, 2, 0, 30)  # 20:30 New York


async def test_void_after_capture_takes_the_sale_out_of_the_open_batch(
    pool: asyncpg.Pool, handle: IdempotentHandler
) -> None:
    merchant_id = merchant()
    kept = await capture(handle, merchant_id, utc(2026, 6, 1, 9, 0), 20_000)
    voided = await capture(handle, merchant_id, utc(2026, 6, 1, 10, 0))
    await void(handle, merchant_id, voided, utc(2026, 6, 1, 11, 0))
    await void(handle, merchant_id, voided, utc(2026, 6, 1, 11, 1))  # a second void event
    kinds = await pool.fetch(
        "SELECT kind, batch_id FROM ledger_transactions WHERE payment_id = $1 ORDER BY kind",
        voided,
    )
    assert [k["kind"] for k in kinds] == ["capture", "reversal"]
    assert kinds[0]["batch_id"] == kinds[1]["batch_id"]
    assert await payment_status(pool, voided) == "voided"

    [closed] = await BatchCloser(pool, CONSUMER).close_open(merchant_id)
    assert closed.counts.payments == 1 and closed.counts.reversals == 1
    assert closed.totals.gross == 30_000 and closed.totals.reversals == 10_000
    assert closed.totals.fees == 358  # only the kept sale's commission (1.79%)
    assert closed.totals.net == 20_000 - 358
    assert await settled_events(pool, voided) == []
    assert len(await settled_events(pool, kept)) == 1
    await assert_ledger_balanced(pool)


async def test_void_of_an_uncaptured_hold_books_nothing(
    pool: asyncpg.Pool, handle: IdempotentHandler
) -> None:
    merchant_id, payment_id = merchant(), uuid.uuid4()
    await void(handle, merchant_id, payment_id, utc(2026, 6, 1, 9, 0), after_capture=False)
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM ledger_transactions WHERE payment_id = $1", payment_id
        )
        == 0
    )
    assert await pool.fetchval(
        "SELECT count(*) FROM inbox WHERE consumer = 'settlement' AND topic = $1",
        topics.PAYMENT_VOIDED,
    )
    assert await batches_of(pool, merchant_id) == []


async def test_void_read_before_its_capture_is_applied_when_the_capture_arrives(
    pool: asyncpg.Pool, handle: IdempotentHandler
) -> None:
    merchant_id, payment_id = merchant(), uuid.uuid4()
    await void(handle, merchant_id, payment_id, utc(2026, 6, 1, 10, 5))
    await capture(handle, merchant_id, utc(2026, 6, 1, 10, 0), payment_id=payment_id)
    assert await payment_status(pool, payment_id) == "voided"
    [closed] = await BatchCloser(pool, CONSUMER).close_open(merchant_id)
    assert (closed.totals.gross, closed.totals.reversals, closed.totals.net) == (10_000, 10_000, 0)
    assert closed.counts.payments == 0


async def test_void_after_the_batch_closed_is_reversed_in_the_current_open_batch(
    pool: asyncpg.Pool, handle: IdempotentHandler
) -> None:
    merchant_id = merchant()
    payment_id = await capture(handle, merchant_id, utc(2026, 6, 1, 10, 0))
    [first] = await BatchCloser(pool, CONSUMER).close_open(merchant_id)
    await void(handle, merchant_id, payment_id, utc(2026, 6, 2, 10, 0))
    batches = await batches_of(pool, merchant_id)
    assert [(b["batch_date"], b["status"]) for b in batches] == [
        (date(2026, 6, 1), "closed"),
        (date(2026, 6, 2), "open"),
    ]
    assert len(await settled_events(pool, payment_id)) == 1  # it did settle in the first batch
    [second] = await BatchCloser(pool, CONSUMER).close_open(merchant_id)
    assert first.totals.net == 10_000 - 179
    assert (second.totals.reversals, second.totals.fees, second.totals.net) == (
        10_000,
        -179,
        -(10_000 - 179),
    )
    await assert_ledger_balanced(pool)


async def test_partial_refunds_debit_the_merchant_in_the_current_batch_without_fee_refund(
    pool: asyncpg.Pool, handle: IdempotentHandler
) -> None:
    merchant_id = merchant()
    payment_id = await capture(handle, merchant_id, utc(2026, 6, 1, 10, 0))
    [sale_day] = await BatchCloser(pool, CONSUMER).close_open(merchant_id)
    first = refund_event(merchant_id, payment_id, 3_000)
    for refund in (first, refund_event(merchant_id, payment_id, 2_000)):
        await handle(
            topics.PAYMENT_REFUNDED,
            envelope(topics.PAYMENT_REFUNDED, refund, utc(2026, 6, 3, 9, 0), payment_id),
        )
    # the same refund again, re-published under a new message id: booked once
    await handle(
        topics.PAYMENT_REFUNDED,
        envelope(topics.PAYMENT_REFUNDED, first, utc(2026, 6, 3, 9, 5), payment_id),
    )
    [refund_day] = await BatchCloser(pool, CONSUMER).close_open(merchant_id)
    assert sale_day.batch_date == date(2026, 6, 1) and refund_day.batch_date == date(2026, 6, 3)
    assert refund_day.counts.refunds == 2 and refund_day.counts.payments == 0
    assert (refund_day.totals.refunds, refund_day.totals.fees, refund_day.totals.net) == (
        5_000,
        0,
        -5_000,
    )
    payable = await pool.fetchval(
        "SELECT sum(CASE direction WHEN 'credit' THEN amount ELSE -amount END) "
        "FROM ledger_entries WHERE account = $1",
        f"merchant:{merchant_id}:payable",
    )
    assert payable == 10_000 - 179 - 5_000
    await assert_ledger_balanced(pool)


async def test_close_settles_each_payment_once_with_its_batch(
    pool: asyncpg.Pool, handle: IdempotentHandler
) -> None:
    merchant_id = merchant()
    try_payment = await capture(handle, merchant_id, utc(2026, 6, 1, 10, 0), 12_500)
    usd_payment = await capture(handle, merchant_id, utc(2026, 6, 1, 10, 0), 4_000, currency="USD")
    closer = BatchCloser(pool, CONSUMER, value_date_delay_days=2)
    results = await asyncio.gather(*(closer.close_open(merchant_id) for _ in range(3)))
    closed = [b for result in results for b in result]
    assert sorted(b.currency for b in closed) == ["TRY", "USD"], "each batch closed exactly once"
    assert await closer.close_open(merchant_id) == []
    try_batch = next(b for b in closed if b.currency == "TRY")
    assert try_batch.value_date == date(2026, 6, 3)
    [event] = await settled_events(pool, try_payment)
    assert event == {
        "payment_id": str(try_payment),
        "merchant_id": merchant_id,
        "gross_amount": 12_500,
        "fee_amount": 224,
        "net_amount": 12_500 - 224,
        "currency": "TRY",
        "ledger_transaction_id": str(uuid.uuid5(try_payment, "capture")),
        "batch_id": str(try_batch.id),
        "batch_date": "2026-06-01",
        # not converted (issue 13, fx): the optional FX fields are empty
        "settlement_currency": None,
        "settlement_net_amount": None,
        "fx_markup_amount": None,
        "fx_rate_id": None,
        "fx_rate": None,
    }
    [usd_event] = await settled_events(pool, usd_payment)
    assert usd_event["currency"] == "USD" and usd_event["batch_id"] != str(try_batch.id)
    assert await payment_status(pool, try_payment) == "settled"
    row = await pool.fetchrow("SELECT * FROM settlement_batches WHERE id = $1", try_batch.id)
    assert (row["status"], row["close_reason"], row["payment_count"], row["net_amount"]) == (
        "closed",
        "manual",
        1,
        12_500 - 224,
    )


async def test_cutoff_loop_closes_only_batches_whose_cutoff_has_passed(
    pool: asyncpg.Pool, handle: IdempotentHandler
) -> None:
    # 2020: before every other test's batches, so only these can be due at this clock
    merchant_id, other_zone = merchant(), merchant()
    await update_merchant(handle, other_zone, 1, time_zone="Asia/Tokyo", cutoff_time=time(22, 0))
    due_first = await capture(handle, merchant_id, utc(2020, 3, 2, 12, 0))  # closes 20:59 UTC
    due_later = await capture(handle, other_zone, utc(2020, 3, 2, 14, 0))  # 23:00 Tokyo: 3 March
    now = utc(2020, 3, 2, 20, 58)
    closer = BatchCloser(pool, CONSUMER, value_date_delay_days=1, clock=lambda: now)
    assert await closer.close_due() == []
    now = utc(2020, 3, 2, 20, 59)
    [closed] = await closer.close_due()
    assert (closed.merchant_id, closed.batch_date) == (merchant_id, date(2020, 3, 2))
    assert closed.value_date == date(2020, 3, 3)
    assert len(await settled_events(pool, due_first)) == 1
    assert await settled_events(pool, due_later) == []
    now = utc(2020, 3, 3, 13, 0)  # 22:00 in Tokyo on 3 March
    [closed] = await closer.close_due()
    assert (closed.merchant_id, closed.batch_date) == (other_zone, date(2020, 3, 3))
    row = await pool.fetchrow(
        "SELECT close_reason FROM settlement_batches WHERE id = $1", closed.id
    )
    assert row["close_reason"] == "cutoff"

    loop_closer = BatchCloser(pool, CONSUMER, interval_s=0.05, clock=lambda: utc(2020, 3, 10))
    late = await capture(handle, merchant_id, utc(2020, 3, 5, 12, 0))  # read after its cut-off
    task = asyncio.create_task(loop_closer.run())
    try:
        for _ in range(200):
            if await settled_events(pool, late):
                break
            await asyncio.sleep(0.05)
        assert len(await settled_events(pool, late)) == 1
        assert (await loop_closer.readiness())[0]
    finally:
        loop_closer.stop()
        await asyncio.wait_for(task, timeout=5)


async def test_concurrent_booking_and_close_lose_no_entry(
    pool: asyncpg.Pool, handle: IdempotentHandler
) -> None:
    merchant_id = merchant()
    closer = BatchCloser(pool, CONSUMER)
    payments = [uuid.uuid4() for _ in range(30)]

    async def book() -> None:
        for payment_id in payments:
            await capture(handle, merchant_id, utc(2026, 7, 1, 10, 0), payment_id=payment_id)

    async def close_repeatedly() -> list[Any]:
        closed = []
        for _ in range(10):
            closed += await closer.close_open(merchant_id)
            await asyncio.sleep(0.005)
        return closed

    _, closed = await asyncio.gather(book(), close_repeatedly())
    closed += await closer.close_open(merchant_id)
    assert sum(b.counts.payments for b in closed) == len(payments)
    assert sum(b.totals.gross for b in closed) == 10_000 * len(payments)
    statuses = await pool.fetch(
        "SELECT status FROM settlement_payments WHERE merchant_id = $1", merchant_id
    )
    assert {r["status"] for r in statuses} == {"settled"} and len(statuses) == len(payments)


async def test_value_date_follows_the_merchants_payout_plan_and_skips_holidays(
    pool: asyncpg.Pool, handle: IdempotentHandler
) -> None:
    on_plan, on_default = merchant(), merchant()
    await update_merchant(handle, on_plan, 1, time_zone="Europe/Istanbul", payout_delay_days=2)
    await update_merchant(handle, on_default, 1, time_zone="Europe/Istanbul")
    await capture(handle, on_plan, utc(2026, 10, 28, 9, 0))  # Wednesday; Thursday is a holiday
    await capture(handle, on_default, utc(2026, 10, 28, 9, 0))
    closer = BatchCloser(pool, CONSUMER, value_date_delay_days=1)
    [planned] = await closer.close_open(on_plan)
    [defaulted] = await closer.close_open(on_default)
    assert planned.batch_date == defaulted.batch_date == date(2026, 10, 28)
    assert planned.value_date == date(2026, 11, 2), "29 Oct and the weekend skipped"
    assert defaulted.value_date == date(2026, 10, 30)
    stored = await pool.fetchval(
        "SELECT value_date FROM settlement_batches WHERE id = $1", planned.id
    )
    assert stored == date(2026, 11, 2)


async def test_a_closed_batch_is_announced_once_with_its_totals_and_value_date(
    pool: asyncpg.Pool, handle: IdempotentHandler
) -> None:
    """settlement.batch-closed.v1 (intake's balance): in the closing transaction's outbox,
    keyed by the batch, with what the batch row holds; closing again announces nothing."""
    merchant_id = merchant()
    await update_merchant(handle, merchant_id, 1, time_zone="Europe/Istanbul", payout_delay_days=2)
    sale = await capture(handle, merchant_id, utc(2026, 10, 28, 9, 0), 12_500)
    await capture(handle, merchant_id, utc(2026, 10, 28, 9, 5), 2_000)
    await handle(
        topics.PAYMENT_REFUNDED,
        envelope(
            topics.PAYMENT_REFUNDED,
            refund_event(merchant_id, sale, 500),
            utc(2026, 10, 28, 9, 10),
            sale,
        ),
    )
    closer = BatchCloser(pool, CONSUMER)
    [batch] = await closer.close_open(merchant_id)
    assert await closer.close_open(merchant_id) == []
    rows = await pool.fetch(
        "SELECT payload FROM outbox WHERE topic = $1 AND message_key = $2",
        topics.BATCH_CLOSED,
        str(batch.id),
    )
    [announced] = [json.loads(r["payload"]) for r in rows]
    assert announced["producer"] == CONSUMER
    event = announced["payload"]
    closed_at = event.pop("closed_at")
    row = await pool.fetchrow("SELECT * FROM settlement_batches WHERE id = $1", batch.id)
    assert event == {
        "batch_id": str(batch.id),
        "merchant_id": merchant_id,
        "currency": "TRY",
        "batch_date": "2026-10-28",
        "value_date": "2026-11-02",  # T+2 business days: 29 Oct and the weekend skipped
        "gross_amount": 14_500,
        "fee_amount": row["fee_amount"],
        "refund_amount": 500,
        "reversal_amount": 0,
        "net_amount": 14_500 - row["fee_amount"] - 500,
        "payment_count": 2,
        "refund_count": 1,
        "reversal_count": 0,
        "payout_schedule": None,  # the batch plan: all of it on value_date
    }
    assert row["fee_amount"] > 0 and row["net_amount"] == event["net_amount"]
    assert datetime.fromisoformat(closed_at) == row["closed_at"]
