"""The merchant's money after the batch: settlement closes the batch with a value date from the
merchant's payout plan (business days), announces it, and intake shows balance and batches."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx

from settlement.domain.value_dates import BusinessCalendar, value_date
from tests.integration.conftest import ADMIN_TOKEN, cutoff_far_from_now
from tests.integration.support import ServiceProcess, close_batches, eventually
from tests.integration.test_end_to_end import approving_card, auth, payment_body, status_reaches


async def _merchant_with_plan(intake: httpx.AsyncClient, days: int) -> dict[str, Any]:
    response = await intake.post(
        "/admin/merchants",
        json={
            "name": "Balance Shop",
            "cutoff_time": cutoff_far_from_now(),
            "payout_delay_days": days,
        },
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_closed_batch_shows_as_pending_until_its_business_day_value_date(
    intake: httpx.AsyncClient, services: dict[str, ServiceProcess]
) -> None:
    merchant = await _merchant_with_plan(intake, 2)
    key = merchant["api_key"]
    empty = await intake.get("/v1/balance", headers=auth(key))
    assert empty.status_code == 200, empty.text
    assert empty.json()["balances"] == []

    created = await intake.post(
        "/v1/payments", json=payment_body(approving_card(), 20_000), headers=auth(key)
    )
    assert created.status_code == 202, created.text  # accepted: authorized asynchronously
    await status_reaches(intake, key, created.json()["id"], {"captured"})

    async def closed_batch() -> dict[str, Any] | None:
        closed = await close_batches(services["settlement"].url, merchant["id"])
        return closed[0] if closed else None

    batch = await eventually(closed_batch, timeout_s=45)
    batch_date = date.fromisoformat(batch["batch_date"])
    expected_value_date = value_date(batch_date, 2, BusinessCalendar("TR"))
    assert batch["value_date"] == expected_value_date.isoformat()
    net = batch["totals"]["net_amount"]
    assert 0 < net < 20_000, "the fee is kept"

    async def balance_shown() -> dict[str, Any] | None:
        body = (await intake.get("/v1/balance", headers=auth(key))).json()
        return body if body["balances"] else None

    balance = await eventually(balance_shown, timeout_s=45)
    assert balance["balances"] == [
        {
            "currency": "TRY",
            "pending": net,
            "available": 0,
            "paid_out": 0,
            "in_transit": 0,
            "held": 0,
            "next_payout": {"value_date": expected_value_date.isoformat(), "amount": net},
        }
    ]

    listed = await intake.get("/v1/settlement-batches", headers=auth(key))
    assert listed.status_code == 200, listed.text
    [shown] = listed.json()["data"]
    assert (shown["id"], shown["net_amount"], shown["payment_count"]) == (batch["id"], net, 1)
    assert shown["value_date"] == expected_value_date.isoformat()

    other = await _merchant_with_plan(intake, 1)
    theirs = await intake.get("/v1/settlement-batches", headers=auth(other["api_key"]))
    assert theirs.json()["data"] == [], "another merchant sees none of it"
    bad = await intake.get("/v1/settlement-batches?limit=0", headers=auth(key))
    assert bad.status_code == 422
