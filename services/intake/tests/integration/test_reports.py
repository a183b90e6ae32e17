"""GET /v1/reports/summary against the real intake database: figures per group and currency,
days in the merchant's time zone, fraud declines from the timeline, refunds, fees."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from sanalpos_common.service import Platform
from sanalpos_common.settings import DEV_ADMIN_TOKEN

from .conftest import insert_payment_row

NOV_1 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)  # 13:00 in Istanbul
LATE_NOV_1 = datetime(2026, 11, 1, 22, 30, tzinfo=UTC)  # already 2 November in Istanbul
NOV_2 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


async def insert_payment(platform: Platform, merchant_id: str, **fields: Any) -> uuid.UUID:
    return await insert_payment_row(platform.pool, merchant_id, NOV_1, **fields)


async def declined(
    platform: Platform, merchant_id: str, by: str, reason: str, **fields: Any
) -> None:
    payment_id = await insert_payment(
        platform, merchant_id, status="declined", declined=True, decline_reason=reason, **fields
    )
    await platform.pool.execute(
        "INSERT INTO payment_events (message_id, payment_id, type, occurred_at, details) "
        "VALUES ($1, $2, 'payment.declined', $3, $4::jsonb)",
        uuid.uuid4(),
        payment_id,
        fields.get("created_at", NOV_1),
        json.dumps({"declined_by": by, "decline_reason": reason}),
    )


async def refund(platform: Platform, payment_id: uuid.UUID, amount: int, status: str) -> None:
    await platform.pool.execute(
        "INSERT INTO refunds (id, payment_id, amount, currency, reason, status) "
        "VALUES ($1, $2, $3, 'TRY', 'returned', $4)",
        uuid.uuid4(),
        payment_id,
        amount,
        status,
    )


@pytest.fixture(scope="module")
async def shop(platform: Platform, http: httpx.AsyncClient) -> dict[str, str]:
    response = await http.post(
        "/admin/merchants",
        json={"name": "Report Shop", "time_zone": "Europe/Istanbul"},
        headers={"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"},
    )
    assert response.status_code == 201, response.text
    merchant_id = response.json()["id"]
    approved = {"authorized": True, "status": "captured", "captured_amount": 1000}
    # 1 November (Istanbul): two approved TRY (one settled with fees, one partly refunded),
    # a fraud decline, an issuer decline, a pending one, and an approved USD payment.
    await insert_payment(
        platform, merchant_id, **{**approved, "status": "settled"}, fee_amount=30, net_amount=970
    )
    refunded = await insert_payment(platform, merchant_id, **approved, amount=2000, installments=3)
    await refund(platform, refunded, 500, "succeeded")
    await refund(platform, refunded, 700, "failed")
    await declined(platform, merchant_id, "fraud", "high risk score")
    await declined(platform, merchant_id, "issuer", "insufficient funds", amount=5000)
    await insert_payment(platform, merchant_id)
    await insert_payment(platform, merchant_id, **approved, currency="USD", amount=300)
    # 2 November (Istanbul), one of them 22:30 UTC on 1 November.
    await insert_payment(platform, merchant_id, **approved, created_at=LATE_NOV_1, amount=4000)
    await declined(platform, merchant_id, "issuer", "insufficient funds", created_at=NOV_2)
    # Outside the period.
    await insert_payment(
        platform, merchant_id, **approved, created_at=datetime(2026, 11, 3, 10, tzinfo=UTC)
    )
    return {"Authorization": f"Bearer {response.json()['api_key']}"}


async def report(http: httpx.AsyncClient, headers: dict[str, str], **params: str) -> dict[str, Any]:
    response = await http.get(
        "/v1/reports/summary",
        params={"from": "2026-11-01", "to": "2026-11-03", **params},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def by_key(body: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(g["key"], g["currency"]): g for g in body["groups"]}


async def test_days_are_counted_in_the_merchant_time_zone(
    http: httpx.AsyncClient, shop: dict[str, str]
) -> None:
    body = await report(http, shop, group_by="day")
    assert body["time_zone"] == "Europe/Istanbul"
    assert body["from"] == "2026-10-31T21:00:00+00:00"
    assert body["to"] == "2026-11-02T21:00:00+00:00"
    groups = by_key(body)
    assert set(groups) == {("2026-11-01", "TRY"), ("2026-11-01", "USD"), ("2026-11-02", "TRY")}
    first = groups[("2026-11-01", "TRY")]
    assert first["payments"] == 5
    assert first["volume"] == 1000 + 2000 + 1000 + 5000 + 1000
    assert (first["approved_count"], first["approved_volume"]) == (2, 3000)
    assert (first["declined_count"], first["pending_count"]) == (2, 1)
    assert (first["approval_rate"], first["approval_rate_bps"]) == ("0.5000", 5000)
    assert (first["fraud_declined_count"], first["fraud_decline_rate_bps"]) == (1, 2500)
    assert first["fraud_decline_rate"] == "0.2500"
    assert first["decline_reasons"] == [
        {"reason": "high risk score", "count": 1},
        {"reason": "insufficient funds", "count": 1},
    ]
    assert (first["refund_count"], first["refunded_amount"]) == (1, 500)  # the failed one is not
    assert first["average_ticket"] == 1500
    assert (first["settled_count"], first["fee_amount"], first["net_amount"]) == (1, 30, 970)
    second = groups[("2026-11-02", "TRY")]
    assert (second["payments"], second["approved_volume"], second["declined_count"]) == (2, 4000, 1)


async def test_totals_are_per_currency(http: httpx.AsyncClient, shop: dict[str, str]) -> None:
    totals = {t["currency"]: t for t in (await report(http, shop, group_by="day"))["totals"]}
    assert set(totals) == {"TRY", "USD"}
    assert totals["TRY"]["payments"] == 7 and totals["USD"]["payments"] == 1
    assert totals["TRY"]["approved_volume"] == 7000 and totals["USD"]["approved_volume"] == 300
    assert totals["TRY"]["approval_rate"] == "0.5000"  # 3 approved, 3 declined
    assert totals["TRY"]["decline_reasons"][0] == {"reason": "insufficient funds", "count": 2}


async def test_group_by_status_and_installments(
    http: httpx.AsyncClient, shop: dict[str, str]
) -> None:
    statuses = by_key(await report(http, shop, group_by="status"))
    assert statuses[("declined", "TRY")]["payments"] == 3
    assert statuses[("captured", "TRY")]["payments"] == 2
    assert statuses[("settled", "TRY")]["fee_amount"] == 30
    assert statuses[("pending", "TRY")]["approval_rate"] is None
    installments = by_key(await report(http, shop, group_by="installments"))
    assert installments[("3", "TRY")]["approved_volume"] == 2000
    currencies = by_key(await report(http, shop, group_by="currency"))
    assert set(currencies) == {("TRY", "TRY"), ("USD", "USD")}


async def test_instants_narrow_the_period(http: httpx.AsyncClient, shop: dict[str, str]) -> None:
    body = await report(
        http, shop, **{"from": "2026-11-01T22:00:00Z", "to": "2026-11-02T00:00:00Z"}
    )
    assert [(g["key"], g["payments"]) for g in body["groups"]] == [("2026-11-02", 1)]


async def test_a_period_ending_before_it_starts_is_an_empty_report(
    http: httpx.AsyncClient, shop: dict[str, str]
) -> None:
    body = await report(http, shop, **{"from": "2026-11-03", "to": "2026-11-01"})
    assert body["groups"] == [] and body["totals"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-11-01T00:00:00", "to": "2026-11-02"}, "from"),
        ({"to": "2026-11-02"}, "from"),
        ({"from": "2026-11-01", "to": "2026-11-02", "group_by": "week"}, "group_by"),
    ],
)
async def test_bad_periods_are_problem_details(
    http: httpx.AsyncClient, shop: dict[str, str], params: dict[str, str], field: str
) -> None:
    response = await http.get("/v1/reports/summary", params=params, headers=shop)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]
