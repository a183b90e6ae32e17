"""Multi-currency on the real stack: a TRY merchant that converts EUR sells 100.00 EUR through
intake; the payment is captured and converted at the rate settlement held at its capture; a
rate set afterwards does not move it; its TRY batch pays the converted net less the markup.
A merchant that refuses payments it cannot convert is refused at intake while no fresh rate
exists. The ledger stays balanced in every currency."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import httpx

from sanalpos_common.settings import DEV_ADMIN_TOKEN
from settlement.domain.fx import convert, markup
from tests.integration.conftest import ADMIN_TOKEN, cutoff_far_from_now
from tests.integration.support import ServiceProcess, eventually
from tests.integration.test_end_to_end import approving_card, auth, payment_body, status_reaches
from tests.integration.test_payouts import assert_ledger_balanced, closed_batch

ADMIN = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}


async def fx_shop(intake: httpx.AsyncClient, settlement: asyncpg.Pool, **fx: Any) -> dict[str, Any]:
    response = await intake.post(
        "/admin/merchants",
        json={"name": "FX Shop", "cutoff_time": cutoff_far_from_now(), **fx},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert response.status_code == 201, response.text
    merchant: dict[str, Any] = response.json()

    async def known() -> Any:
        return await settlement.fetchval(
            "SELECT 1 FROM merchants WHERE merchant_id = $1 AND currency_settlement <> '{}'",
            merchant["id"],
        )

    await eventually(known, timeout_s=45)
    return merchant


async def set_rate(settlement_url: str, base: str, quote: str, rate: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=settlement_url, timeout=10) as client:
        response = await client.post(
            "/admin/fx/rates",
            json={
                "base": base,
                "quote": quote,
                "rate": rate,
                "as_of": (datetime.now(UTC) - timedelta(seconds=5)).isoformat(),
            },
            headers=ADMIN,
        )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_eur_sale_for_a_try_merchant_converts_at_its_capture_rate(
    intake: httpx.AsyncClient,
    services: dict[str, ServiceProcess],
    databases: dict[str, asyncpg.Pool],
) -> None:
    settlement_url = services["settlement"].url
    rate = await set_rate(settlement_url, "EUR", "TRY", "47.8912")

    async def intake_knows() -> Any:
        return await databases["intake"].fetchval(
            "SELECT 1 FROM fx_rates WHERE rate_id = $1", uuid.UUID(rate["id"])
        )

    await eventually(intake_knows, timeout_s=45)
    merchant = await fx_shop(
        intake,
        databases["settlement"],
        currency_settlement={"EUR": "convert"},
        fx_markup_bps=100,
        fx_no_rate="refuse",
    )
    created = await intake.post(
        "/v1/payments",
        json=payment_body(approving_card(), 10_000, currency="EUR"),
        headers=auth(merchant["api_key"]),
    )
    assert created.status_code == 202, created.text
    payment_id = created.json()["id"]
    await status_reaches(intake, merchant["api_key"], payment_id, {"captured"})

    async def fixed() -> dict[str, Any] | None:
        async with httpx.AsyncClient(base_url=settlement_url, timeout=10) as client:
            response = await client.get(f"/admin/fx/payments/{payment_id}", headers=ADMIN)
        return response.json() if response.status_code == 200 else None

    conversion = await eventually(fixed, timeout_s=45)
    await set_rate(settlement_url, "EUR", "TRY", "52.0000")  # after the capture: no effect
    assert conversion["status"] == "converted"
    assert (conversion["rate_id"], conversion["rate"]) == (rate["id"], "47.8912")
    converted = convert(conversion["amount"], "EUR", "TRY", Decimal("47.8912"))
    assert conversion["converted_amount"] == converted
    assert conversion["markup_amount"] == markup(converted, 100)

    batch = await closed_batch(settlement_url, merchant["id"])
    assert batch["currency"] == "TRY"
    assert batch["totals"]["gross_amount"] == converted
    assert batch["totals"]["net_amount"] == converted - markup(converted, 100)
    await assert_ledger_balanced(databases["settlement"])


async def test_a_refusing_merchant_is_refused_without_a_fresh_rate(
    intake: httpx.AsyncClient,
    services: dict[str, ServiceProcess],
    databases: dict[str, asyncpg.Pool],
) -> None:
    # no rate involving CHF is ever set on this stack
    merchant = await fx_shop(
        intake, databases["settlement"], currency_settlement={"CHF": "convert"}, fx_no_rate="refuse"
    )
    refused = await intake.post(
        "/v1/payments",
        json=payment_body(approving_card(), 5_000, currency="CHF"),
        headers=auth(merchant["api_key"]),
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["type"].endswith("fx-rate-unavailable")
