"""Reconciliation and installment payouts on the real stack (issue 13).

Reconciliation: payments made, captured, refunded and voided through intake; authorization
publishes the day's clearing file on demand; settlement matches it against its ledger: a clean
day reports zero. Then a deliberate fault on authorization's side (a cleared amount that
differs from what settlement booked) is published as the next version and found.

Installments: a merchant on the `per_installment` payout plan (set at intake) sells in 3
installments; its batch closes into 3 dated parts adding up to the net, and the payout job on
the first part's value date pays the first part only."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx

from sanalpos_common.settings import DEV_ADMIN_TOKEN
from settlement.domain.installments import add_months
from settlement.domain.value_dates import BusinessCalendar
from tests.integration.conftest import ADMIN_TOKEN, cutoff_far_from_now, new_merchant
from tests.integration.support import ServiceProcess, eventually
from tests.integration.test_lifecycle import Merchant, payment_body
from tests.integration.test_payouts import balance, closed_batch, run_payouts, shop

ADMIN = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}


async def admin_post(url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        response = await client.post(path, json=body, headers=ADMIN)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_a_clean_day_reconciles_to_zero_and_a_differing_amount_is_found(
    intake: httpx.AsyncClient,
    services: dict[str, ServiceProcess],
    databases: dict[str, asyncpg.Pool],
) -> None:
    created = await new_merchant(intake, "Recon Shop")
    merchant_id, shop_ = created["id"], Merchant(intake, created["api_key"])
    sale = await shop_.create(10_000, capture=True)
    await shop_.reaches(sale, "captured")
    refunded = await shop_.post(
        f"/v1/payments/{sale}/refunds", {"amount": 2_500, "reason": "one item returned"}
    )
    assert refunded.status_code == 202, refunded.text
    await shop_.reaches(sale, "partially_refunded", refunded_amount=2_500)
    cancelled = await shop_.create(4_000, capture=True)
    await shop_.reaches(cancelled, "captured")
    assert (await shop_.post(f"/v1/payments/{cancelled}/void")).status_code == 202
    await shop_.reaches(cancelled, "voided", pending_operation=None)
    settlement = databases["settlement"]

    async def booked() -> Any:
        return (
            await settlement.fetchval(
                "SELECT count(*) FROM ledger_transactions WHERE merchant_id = $1", merchant_id
            )
            == 4
        ) or None

    await eventually(booked, timeout_s=45)

    today = datetime.now(ZoneInfo("Europe/Istanbul")).date().isoformat()
    authorization_url = services["authorization"].url
    settlement_url = services["settlement"].url
    published = await admin_post(
        authorization_url, "/admin/clearing/run", {"date": today, "merchant_id": merchant_id}
    )
    assert [(f["version"], f["line_count"]) for f in published["files"]] == [(1, 4)]

    async def received(version: int) -> Any:
        return await settlement.fetchval(
            "SELECT 1 FROM clearing_files WHERE merchant_id = $1 AND version = $2 "
            "AND completed_at IS NOT NULL",
            merchant_id,
            version,
        )

    await eventually(lambda: received(1), timeout_s=45)
    clean = await admin_post(
        settlement_url, "/admin/recon/run", {"date": today, "merchant_id": merchant_id}
    )
    assert (clean["mismatch_count"], [r["clearing_version"] for r in clean["runs"]]) == (0, [1])

    # Authorization's record of the sale's capture says 10,001: the next file disagrees.
    await databases["authorization"].execute(
        "UPDATE clearing_operations SET amount = 10001 WHERE payment_id = $1 AND kind = 'capture'",
        uuid.UUID(sale),
    )
    await admin_post(
        authorization_url, "/admin/clearing/run", {"date": today, "merchant_id": merchant_id}
    )
    await eventually(lambda: received(2), timeout_s=45)
    found = await admin_post(
        settlement_url, "/admin/recon/run", {"date": today, "merchant_id": merchant_id}
    )
    [run] = found["runs"]
    assert [
        (m["kind"], m["source"], m["reference"], m["expected_amount"], m["actual_amount"])
        for m in run["mismatches"]
    ] == [("amount_differs", "ledger", sale, 10_001, 10_000)]


async def test_an_installment_sale_is_paid_part_by_part(
    intake: httpx.AsyncClient,
    services: dict[str, ServiceProcess],
    databases: dict[str, asyncpg.Pool],
) -> None:
    settlement = databases["settlement"]
    merchant = await shop(intake, settlement)
    changed = await intake.patch(
        f"/admin/merchants/{merchant['id']}",
        json={"payout_plan": "per_installment", "cutoff_time": cutoff_far_from_now()},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["payout_plan"] == "per_installment"

    async def plan_known() -> Any:
        return await settlement.fetchval(
            "SELECT 1 FROM merchants WHERE merchant_id = $1 AND payout_plan = 'per_installment'",
            merchant["id"],
        )

    await eventually(plan_known, timeout_s=45)
    body = {**payment_body(30_000, True), "installments": 3}
    created = await intake.post(
        "/v1/payments", json=body, headers={"Authorization": f"Bearer {merchant['api_key']}"}
    )
    assert created.status_code == 202, created.text
    await Merchant(intake, merchant["api_key"]).reaches(created.json()["id"], "captured")

    settlement_url = services["settlement"].url
    batch = await closed_batch(settlement_url, merchant["id"])
    net = batch["totals"]["net_amount"]
    parts = await settlement.fetch(
        "SELECT part, value_date, amount FROM payout_schedule WHERE batch_id = $1 ORDER BY part",
        uuid.UUID(batch["id"]),
    )
    batch_date = datetime.fromisoformat(batch["batch_date"]).date()
    calendar = BusinessCalendar("TR")
    assert [(r["part"], r["value_date"]) for r in parts] == [
        (k, calendar.add_business_days(add_months(batch_date, k), 0)) for k in (1, 2, 3)
    ]
    assert sum(r["amount"] for r in parts) == net
    assert parts[0]["amount"] - parts[1]["amount"] == net % 3

    async def balance_is(wanted: dict[str, int]) -> Any:
        try:
            return (await balance(intake, merchant)) == wanted or None
        except ValueError:  # no balance yet: intake has not heard of the closed batch
            return None

    # Intake's balance: every part pending until its own value date.
    idle = {"pending": net, "available": 0, "in_transit": 0, "paid_out": 0}
    await eventually(lambda: balance_is(idle), timeout_s=45)

    first = parts[0]["value_date"].isoformat()
    [payout] = (await run_payouts(settlement_url, merchant["id"], first))["payouts"]
    assert (payout["amount"], [x["value_date"] for x in payout["lines"]]) == (
        parts[0]["amount"],
        [first],
    )
    unpaid = await settlement.fetchval(
        "SELECT count(*) FROM payout_schedule WHERE batch_id = $1 AND payout_id IS NULL",
        uuid.UUID(batch["id"]),
    )
    assert unpaid == 2
    rest = net - parts[0]["amount"]
    moving = {"pending": rest, "available": 0, "in_transit": parts[0]["amount"], "paid_out": 0}
    await eventually(lambda: balance_is(moving), timeout_s=45)
