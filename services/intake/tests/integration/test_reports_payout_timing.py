"""GET /v1/reports/summary, extended for statements (issue 13): net volume after refunds and
fees per currency, and payout timing from settlement's payouts (paid, in transit, returned;
days from a batch's business date to its payout's value date), only the merchant's own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

from intake.bootstrap import CONSUMER
from intake.service_layer.consumed import CONSUMER_HANDLERS
from sanalpos_common import topics
from sanalpos_common.messaging.idempotent import idempotent
from sanalpos_common.schemas.codec import new_envelope
from sanalpos_common.schemas.events import PayoutLine, PayoutStatus, PayoutUpdated
from sanalpos_common.service import Platform
from sanalpos_common.settings import DEV_ADMIN_TOKEN

from .conftest import http_client, insert_payment_row, private_intake

NOV_2 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
async def platform() -> AsyncIterator[Platform]:
    async with private_intake() as platform:
        yield platform


@pytest.fixture(scope="module")
async def http(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(platform) as client:
        yield client


async def merchant(http: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    response = await http.post(
        "/admin/merchants",
        json={"name": "Timing Shop", "time_zone": "Europe/Istanbul"},
        headers={"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return body["id"], {"Authorization": f"Bearer {body['api_key']}"}


async def paid_out(
    platform: Platform,
    merchant_id: str,
    value_date: date,
    lines: list[tuple[date, int]],
    status: PayoutStatus,
) -> None:
    now = datetime.now(UTC)
    event = PayoutUpdated(
        payout_id=uuid.uuid4(),
        merchant_id=merchant_id,
        currency="TRY",
        amount=sum(amount for _, amount in lines),
        status=status,
        value_date=value_date,
        account_id=uuid.uuid4(),
        iban_last4="9595",
        lines=tuple(
            PayoutLine(batch_id=uuid.uuid4(), batch_date=d, value_date=value_date, amount=a)
            for d, a in lines
        ),
        created_at=now,
        updated_at=now,
        version=1,
    )
    handle = idempotent(platform.pool, CONSUMER, CONSUMER_HANDLERS, producer=CONSUMER)
    envelope = new_envelope(topics.PAYOUT_UPDATED, event, correlation_id=None, producer="tests")
    await handle(topics.PAYOUT_UPDATED, envelope)


async def summary(http: httpx.AsyncClient, key: dict[str, str]) -> dict[str, Any]:
    response = await http.get(
        "/v1/reports/summary", params={"from": "2026-11-01", "to": "2026-12-01"}, headers=key
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_net_volume_and_payout_timing(http: httpx.AsyncClient, platform: Platform) -> None:
    merchant_id, key = await merchant(http)
    other_id, other_key = await merchant(http)
    captured = {"authorized": True, "status": "captured", "captured_amount": 10_000}
    await insert_payment_row(
        platform.pool,
        merchant_id,
        NOV_2,
        **{**captured, "status": "settled"},
        amount=10_000,
        fee_amount=250,
        net_amount=9_750,
    )
    refunded = await insert_payment_row(
        platform.pool, merchant_id, NOV_2, **captured, amount=10_000
    )
    await platform.pool.execute(
        "INSERT INTO refunds (id, payment_id, amount, currency, reason, status) "
        "VALUES ($1, $2, 3000, 'TRY', 'returned', 'succeeded')",
        uuid.uuid4(),
        refunded,
    )
    nov = date(2026, 11, 1)
    await paid_out(
        platform,
        merchant_id,
        date(2026, 11, 4),
        [(date(2026, 11, 2), 9_000), (date(2026, 11, 3), 4_000), (date(2026, 11, 1), -500)],
        PayoutStatus.PAID,
    )
    await paid_out(
        platform,
        merchant_id,
        date(2026, 11, 10),
        [(date(2026, 11, 5), 6_000)],
        PayoutStatus.IN_TRANSIT,
    )
    await paid_out(platform, merchant_id, date(2026, 11, 6), [(nov, 1_000)], PayoutStatus.RETURNED)
    await paid_out(  # value date in December: outside the period
        platform,
        merchant_id,
        date(2026, 12, 1),
        [(date(2026, 11, 30), 2_000)],
        PayoutStatus.PAID,
    )
    await paid_out(platform, other_id, date(2026, 11, 4), [(nov, 777)], PayoutStatus.PAID)

    body = await summary(http, key)
    [totals] = body["totals"]
    assert totals["net_volume"] == 20_000 - 3_000 - 250
    assert all("net_volume" in g for g in body["groups"])
    [timing] = body["payout_timing"]
    assert timing == {
        "currency": "TRY",
        "paid_count": 1,
        "paid_amount": 12_500,
        "in_transit_count": 1,
        "in_transit_amount": 6_000,
        "returned_count": 1,
        "returned_amount": 1_000,
        "batches_paid": 3,  # the negative line is refunds netted, not a wait
        "average_days_to_payout": "2.67",  # (2 + 1 + 5) / 3
        "max_days_to_payout": 5,
    }

    [theirs] = (await summary(http, other_key))["payout_timing"]
    assert (theirs["paid_amount"], theirs["max_days_to_payout"]) == (777, 3)
