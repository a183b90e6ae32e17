"""GET /v1/balance and GET /v1/settlement-batches against the real intake database, fed
settlement.batch-closed.v1 as intake's consumer applies it (inbox included)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from intake.bootstrap import CONSUMER
from intake.service_layer.consumed import CONSUMER_HANDLERS
from sanalpos_common import topics
from sanalpos_common.messaging.idempotent import idempotent
from sanalpos_common.schemas.codec import new_envelope
from sanalpos_common.schemas.events import BatchClosed
from sanalpos_common.service import Platform
from sanalpos_common.settings import DEV_ADMIN_TOKEN

TODAY = datetime.now(UTC).date()  # the merchants below are in UTC


async def new_merchant(http: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    response = await http.post(
        "/admin/merchants",
        json={"name": "Balance Shop", "time_zone": "UTC"},
        headers={"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return body["id"], {"Authorization": f"Bearer {body['api_key']}"}


def batch(merchant_id: str, batch_date: date, value_date: date, net: int, **kw: Any) -> BatchClosed:
    fields: dict[str, Any] = {
        "batch_id": uuid.uuid4(),
        "merchant_id": merchant_id,
        "currency": "TRY",
        "batch_date": batch_date,
        "value_date": value_date,
        "gross_amount": max(net, 0) + 100,
        "fee_amount": 100,
        "refund_amount": max(-net, 0),
        "reversal_amount": 0,
        "net_amount": net,
        "payment_count": 1,
        "refund_count": 0,
        "reversal_count": 0,
        "closed_at": datetime.combine(batch_date, datetime.min.time(), UTC),
        **kw,
    }
    return BatchClosed(**fields)


async def announce(platform: Platform, event: BatchClosed) -> None:
    """As intake's consumer applies it: a fresh message id per call (a re-publication)."""
    handle = idempotent(platform.pool, CONSUMER, CONSUMER_HANDLERS, producer=CONSUMER)
    envelope = new_envelope(
        topics.BATCH_CLOSED, event, correlation_id=event.batch_id, producer="settlement"
    )
    await handle(topics.BATCH_CLOSED, envelope)


async def test_balance_splits_pending_and_available_per_currency_counting_a_batch_once(
    platform: Platform, http: httpx.AsyncClient
) -> None:
    merchant_id, headers = await new_merchant(http)
    day = timedelta(days=1)
    paid = batch(merchant_id, TODAY - 3 * day, TODAY - day, 4_000)
    due_today = batch(merchant_id, TODAY - day, TODAY, 1_500)
    ahead = batch(merchant_id, TODAY, TODAY + 2 * day, 2_500)
    later = batch(merchant_id, TODAY, TODAY + 5 * day, -700)
    usd = batch(merchant_id, TODAY, TODAY + day, 900, currency="USD")
    for event in (paid, due_today, ahead, later, usd, ahead):  # `ahead` re-published
        await announce(platform, event)

    response = await http.get("/v1/balance", headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "object": "balance",
        "as_of": TODAY.isoformat(),
        "balances": [
            {
                "currency": "TRY",
                "pending": 2_500 - 700,
                "available": 4_000 + 1_500,
                "paid_out": 0,
                "in_transit": 0,
                "held": 0,
                "next_payout": {"value_date": (TODAY + 2 * day).isoformat(), "amount": 2_500},
            },
            {
                "currency": "USD",
                "pending": 900,
                "available": 0,
                "paid_out": 0,
                "in_transit": 0,
                "held": 0,
                "next_payout": {"value_date": (TODAY + day).isoformat(), "amount": 900},
            },
        ],
    }


async def test_batches_page_newest_first_and_bad_parameters_are_problems(
    platform: Platform, http: httpx.AsyncClient
) -> None:
    merchant_id, headers = await new_merchant(http)
    events = [
        batch(merchant_id, TODAY - timedelta(days=n), TODAY + timedelta(days=1), 1_000 * n)
        for n in (3, 1, 2)
    ]
    for event in events:
        await announce(platform, event)
    newest_first = sorted(events, key=lambda e: e.batch_date, reverse=True)

    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await http.get("/v1/settlement-batches", params=params, headers=headers)
        assert page.status_code == 200, page.text
        body = page.json()
        seen += body["data"]
        cursor = body["next_cursor"]
        assert body["has_more"] is (cursor is not None)
        if cursor is None:
            break
    assert [s["id"] for s in seen] == [str(e.batch_id) for e in newest_first]
    first = seen[0]
    assert first == {
        "id": str(newest_first[0].batch_id),
        "object": "settlement_batch",
        "currency": "TRY",
        "batch_date": (TODAY - timedelta(days=1)).isoformat(),
        "value_date": (TODAY + timedelta(days=1)).isoformat(),
        "gross_amount": 1_100,
        "fee_amount": 100,
        "refund_amount": 0,
        "reversal_amount": 0,
        "net_amount": 1_000,
        "payment_count": 1,
        "refund_count": 0,
        "reversal_count": 0,
        "closed_at": newest_first[0].closed_at.isoformat(),
    }

    for query, field in (({"limit": 0}, "limit"), ({"cursor": "nope"}, "cursor")):
        bad = await http.get("/v1/settlement-batches", params=query, headers=headers)
        assert bad.status_code == 422, bad.text
        assert bad.headers["content-type"].startswith("application/problem+json")
        assert [e["field"] for e in bad.json()["errors"]] == [field]
    unauthenticated = await http.get("/v1/balance")
    assert unauthenticated.status_code == 401
