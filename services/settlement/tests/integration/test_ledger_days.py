"""The ledger-day job on real PostgreSQL: the SQL aggregation gives the pure mapping's days,
the last closing is the merchant's payable in the ledger, unchanged days are not announced
again, a late posting re-announces its day and the days after it with the next version, and
another merchant's postings stay out."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta

import asyncpg
import httpx

from sanalpos_common import topics
from sanalpos_common.db import unit_of_work
from sanalpos_common.fees import FeePlan
from sanalpos_common.schemas.events import MERCHANT_NAMESPACE
from settlement.adapters.ledger_repository import LedgerRepository
from settlement.domain.ledger import (
    LedgerTransaction,
    capture_transaction,
    merchant_payable,
    refund_transaction,
)
from settlement.domain.payouts import payout_transaction
from settlement.entrypoints.admin import Container, build_app
from settlement.service_layer.batch_closing import BatchCloser
from settlement.service_layer.ledger_days import LedgerDayJob

PLAN = FeePlan("test", mdr_bps=250, installment_bps=0)
# 2026-11-30 22:30 UTC is already 2026-12-01 01:30 in Istanbul (UTC+3).
LATE_NOVEMBER_UTC = datetime(2026, 11, 30, 22, 30, tzinfo=UTC)
NOV_30 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
DEC_2 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


async def post(pool: asyncpg.Pool, transaction: LedgerTransaction, at: datetime) -> None:
    async with unit_of_work(pool, "tests") as uow:
        assert await LedgerRepository(uow.conn).record(transaction, None)
        await uow.conn.execute(
            "UPDATE ledger_transactions SET created_at = $2 WHERE id = $1", transaction.id, at
        )


async def payable(pool: asyncpg.Pool, merchant_id: str) -> int:
    return int(
        await pool.fetchval(
            "SELECT sum(CASE WHEN direction = 'credit' THEN amount ELSE -amount END) "
            "FROM ledger_entries WHERE account = $1 AND currency = 'TRY'",
            merchant_payable(merchant_id),
        )
    )


async def announced(pool: asyncpg.Pool, merchant_id: str) -> list[dict]:  # type: ignore[type-arg]
    rows = await pool.fetch(
        "SELECT message_key, payload FROM outbox WHERE topic = $1 ORDER BY id", topics.LEDGER_DAY
    )
    key = str(uuid.uuid5(MERCHANT_NAMESPACE, merchant_id))
    found = []
    for row in rows:
        event = json.loads(row["payload"])["payload"]
        if event["merchant_id"] == merchant_id:
            assert row["message_key"] == key, "keyed by merchant"
            found.append(event)
    return found


async def test_days_from_the_ledger_are_announced_once_and_again_when_they_change(
    pool: asyncpg.Pool,
) -> None:
    merchant = f"mer_{uuid.uuid4().hex[:10]}"
    other = f"mer_{uuid.uuid4().hex[:10]}"
    job = LedgerDayJob(pool, "settlement")
    first, second = uuid.uuid4(), uuid.uuid4()
    await post(pool, capture_transaction(first, merchant, 10_000, "TRY", 1, PLAN), NOV_30)
    await post(
        pool, capture_transaction(second, merchant, 20_000, "TRY", 1, PLAN), LATE_NOVEMBER_UTC
    )
    await post(pool, refund_transaction(uuid.uuid4(), first, merchant, 4_000, "TRY"), DEC_2)
    await post(pool, payout_transaction(uuid.uuid4(), merchant, 5_000, "TRY"), DEC_2)
    await post(pool, capture_transaction(uuid.uuid4(), other, 99_900, "TRY", 1, PLAN), DEC_2)

    days = await job.recompute(merchant)
    assert [(d.day, d.version) for d in days] == [
        (date(2026, 11, 30), 1),
        (date(2026, 12, 1), 1),  # the late capture is on Istanbul's next day
        (date(2026, 12, 2), 1),
    ]
    nov30, dec1, dec2 = days
    assert (nov30.opening_balance, nov30.sales, nov30.fees, nov30.closing_balance) == (
        0,
        10_000,
        -250,
        9_750,
    )
    assert (dec1.opening_balance, dec1.sales, dec1.fees, dec1.capture_count) == (
        9_750,
        20_000,
        -500,
        1,
    )
    assert (dec2.refunds, dec2.payouts, dec2.refund_count, dec2.payout_count) == (
        -4_000,
        -5_000,
        1,
        1,
    )
    assert dec2.opening_balance == dec1.closing_balance
    assert dec2.closing_balance == await payable(pool, merchant) == 9_750 + 19_500 - 9_000
    assert dec2.time_zone == "Europe/Istanbul"
    assert [e["day"] for e in await announced(pool, merchant)] == [
        "2026-11-30",
        "2026-12-01",
        "2026-12-02",
    ]

    assert await job.recompute(merchant) == [], "unchanged days are not announced again"

    await job.run_pass()  # first pass: the watermark now trails the database clock
    late = capture_transaction(uuid.uuid4(), merchant, 1_000, "TRY", 1, PLAN)
    async with unit_of_work(pool, "tests") as uow:
        await LedgerRepository(uow.conn).record(late, None)
    changed = [e for e in await job.run_pass() if e.merchant_id == merchant]
    assert changed, "a new posting is picked up by the next pass"
    assert [e.day for e in changed] == [max(e.day for e in changed)], "only its own day"
    assert changed[-1].closing_balance == await payable(pool, merchant)

    # A posting that lands late on 1 December moves that day and the next.
    late_on_dec1 = LATE_NOVEMBER_UTC + timedelta(hours=1)
    await post(pool, refund_transaction(uuid.uuid4(), second, merchant, 700, "TRY"), late_on_dec1)
    redone = await job.recompute(merchant, date(2026, 12, 1))
    assert [(e.day, e.version) for e in redone][:2] == [
        (date(2026, 12, 1), 2),
        (date(2026, 12, 2), 2),
    ]
    assert redone[0].refunds == -700 and redone[0].closing_balance == dec1.closing_balance - 700
    assert redone[1].opening_balance == redone[0].closing_balance
    assert redone[-1].closing_balance == await payable(pool, merchant)
    # Its posting is back-dated: a pass whose watermark an earlier test moved on skips it.
    await job.recompute(other)
    stored = await pool.fetch(
        "SELECT day FROM ledger_days WHERE merchant_id = $1 ORDER BY day", other
    )
    assert [r["day"] for r in stored] == [date(2026, 12, 2)], "the other merchant on its own"


async def test_the_ops_api_recomputes_lists_days_and_shows_balances(pool: asyncpg.Pool) -> None:
    merchant = f"mer_{uuid.uuid4().hex[:10]}"
    await post(pool, capture_transaction(uuid.uuid4(), merchant, 8_000, "TRY", 1, PLAN), DEC_2)
    app = build_app()
    app.state.container = Container(
        pool=pool,
        closer=BatchCloser(pool, "settlement"),
        admin_token="ops-token",
        ledger_days=LedgerDayJob(pool, "settlement"),
    )
    admin = {"Authorization": "Bearer ops-token"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://settlement"
    ) as http:
        assert (await http.post("/admin/ledger-days/run")).status_code == 401
        ran = await http.post(
            "/admin/ledger-days/run", json={"merchant_id": merchant}, headers=admin
        )
        assert ran.status_code == 200, ran.text
        [day] = ran.json()["announced"]
        assert (day["day"], day["sales"], day["fees"], day["closing_balance"]) == (
            "2026-12-02",
            8_000,
            -200,
            7_800,
        )
        listed = await http.get(
            "/admin/ledger-days",
            params={"merchant_id": merchant, "from": "2026-12-01"},
            headers=admin,
        )
        assert [d["version"] for d in listed.json()] == [1]
        balances = await http.get(
            "/admin/balances", params={"merchant_id": merchant}, headers=admin
        )
        assert balances.json() == [{"merchant_id": merchant, "currency": "TRY", "payable": 7_800}]
        refused = await http.post(
            "/admin/ledger-days/run", json={"from": "2026-12-01"}, headers=admin
        )
        assert refused.status_code == 422
        assert [e["field"] for e in refused.json()["errors"]] == ["from"]
