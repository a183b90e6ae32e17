"""Multi-currency at intake (issue 13), in-process on the real intake database: the merchant's
FX settings on its record and on merchant.updated, settlement's rates arriving as
settlement.fx-rate.v1, and a payment to convert without a fresh rate refused when the
merchant says so (and accepted otherwise)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from sanalpos_common import topics
from sanalpos_common.schemas.codec import decode, new_envelope
from sanalpos_common.schemas.events import MERCHANT_NAMESPACE, FxRateUpdated, PaymentSettled
from sanalpos_common.settings import DEV_ADMIN_TOKEN

from .conftest import deliver, http_client, insert_payment_row, outcome, running_intake

ADMIN = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
CARD = {"number": "4111111111111111", "exp_month": 12, "exp_year": 2031, "cvc": "123"}
# A pair no other test uses, so that the rates this module delivers are the only ones.
PAID_IN, SETTLED_IN = "CZK", "PLN"


@pytest.fixture(scope="module")
async def intake() -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    async with running_intake() as platform, http_client(platform) as client:
        await platform.pool.execute(
            "DELETE FROM fx_rates WHERE base IN ($1, $2) AND quote IN ($1, $2)",
            PAID_IN,
            SETTLED_IN,
        )
        yield client, platform.pool


async def _merchant(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await client.post(
        "/admin/merchants", json={"name": "FX Shop", **fields}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _pay(client: httpx.AsyncClient, api_key: str, currency: str) -> httpx.Response:
    return await client.post(
        "/v1/payments",
        json={"amount": 12_345, "currency": currency, "card": CARD},
        headers={"Authorization": f"Bearer {api_key}"},
    )


async def _rate(pool: Any, as_of: datetime, valid_for: timedelta) -> None:
    rate = FxRateUpdated(
        rate_id=uuid.uuid4(),
        base=PAID_IN,
        quote=SETTLED_IN,
        rate=Decimal("0.1712"),
        source="manual",
        as_of=as_of,
        valid_until=as_of + valid_for,
    )
    envelope = new_envelope(
        topics.FX_RATE_UPDATED, rate, correlation_id=rate.rate_id, producer="settlement"
    )
    await deliver(pool, topics.FX_RATE_UPDATED, envelope)


async def test_the_fx_settings_are_on_the_record_and_announced(
    intake: tuple[httpx.AsyncClient, Any],
) -> None:
    client, pool = intake
    created = await _merchant(
        client, currency_settlement={"USD": "in_currency", "EUR": "convert"}, fx_markup_bps=150
    )
    assert created["currency_settlement"] == {"EUR": "convert", "USD": "in_currency"}
    assert (created["fx_markup_bps"], created["fx_no_rate"]) == (150, "in_currency")
    path = f"/admin/merchants/{created['id']}"
    same = await client.patch(
        path, json={"currency_settlement": {"EUR": "convert", "USD": "in_currency"}}, headers=ADMIN
    )
    assert same.status_code == 200 and same.json()["version"] == 1  # no change, no version
    changed = await client.patch(
        path,
        json={"currency_settlement": {"GBP": "convert"}, "fx_no_rate": "refuse"},
        headers=ADMIN,
    )
    assert changed.json()["version"] == 2
    assert changed.json()["currency_settlement"] == {"GBP": "convert"}
    bad = await client.patch(path, json={"currency_settlement": {"GBP": "swap"}}, headers=ADMIN)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"].startswith("currency_settlement")
    me = await client.get("/v1/merchant", headers={"Authorization": f"Bearer {created['api_key']}"})
    assert me.json()["fx_no_rate"] == "refuse"

    rows = await pool.fetch(
        "SELECT payload FROM outbox WHERE topic = $1 AND message_key = $2 ORDER BY id",
        topics.MERCHANT_UPDATED,
        str(uuid.uuid5(MERCHANT_NAMESPACE, created["id"])),
    )
    events = [decode(topics.MERCHANT_UPDATED, bytes(r["payload"])).payload for r in rows]
    assert [(e.version, e.currency_settlement, e.fx_no_rate) for e in events] == [
        (1, {"EUR": "convert", "USD": "in_currency"}, "in_currency"),
        (2, {"GBP": "convert"}, "refuse"),
    ]
    assert events[0].fx_markup_bps == 150


async def test_without_a_fresh_rate_a_refusing_merchant_refuses_and_another_accepts(
    intake: tuple[httpx.AsyncClient, Any],
) -> None:
    client, pool = intake
    refusing = await _merchant(
        client,
        settlement_currency=SETTLED_IN,
        currency_settlement={PAID_IN: "convert"},
        fx_no_rate="refuse",
    )
    settling = await _merchant(
        client, settlement_currency=SETTLED_IN, currency_settlement={PAID_IN: "convert"}
    )
    refused = await _pay(client, refusing["api_key"], PAID_IN)
    assert refused.status_code == 422, refused.text
    body = refused.json()
    assert body["type"].endswith("fx-rate-unavailable")
    assert [e["field"] for e in body["errors"]] == ["currency"]
    written = await pool.fetchval(
        "SELECT count(*) FROM payments WHERE merchant_id = $1", refusing["id"]
    )
    assert written == 0
    # the merchant that settles in currency takes it; a currency not converted always passes
    assert (await _pay(client, settling["api_key"], PAID_IN)).status_code == 202
    assert (await _pay(client, refusing["api_key"], SETTLED_IN)).status_code == 202

    # a stale rate does not count
    await _rate(pool, datetime.now(UTC) - timedelta(days=5), timedelta(days=1))
    assert (await _pay(client, refusing["api_key"], PAID_IN)).status_code == 422
    # a fresh one does
    await _rate(pool, datetime.now(UTC) - timedelta(minutes=1), timedelta(hours=96))
    assert (await _pay(client, refusing["api_key"], PAID_IN)).status_code == 202


async def test_the_summary_reports_net_volume_after_fees_and_fx(
    intake: tuple[httpx.AsyncClient, Any],
) -> None:
    client, pool = intake
    created = await _merchant(client, currency_settlement={"EUR": "convert"}, fx_markup_bps=100)
    merchant_id, key = created["id"], {"Authorization": f"Bearer {created['api_key']}"}
    now = datetime.now(UTC)
    captured = {"authorized": True, "status": "captured", "captured_amount": 10_000}
    eur = await insert_payment_row(
        pool, merchant_id, now, currency="EUR", amount=10_000, **captured
    )
    own = await insert_payment_row(pool, merchant_id, now, amount=10_000, **captured)
    for payment_id, currency, fx in (
        (
            eur,
            "EUR",
            {
                "settlement_currency": "TRY",
                "settlement_net_amount": 467_058,
                "fx_markup_amount": 4_718,
                "fx_rate_id": uuid.uuid4(),
                "fx_rate": Decimal("47.8912"),
            },
        ),
        (own, "TRY", {}),
    ):
        settled = PaymentSettled(
            payment_id=payment_id,
            merchant_id=merchant_id,
            gross_amount=10_000,
            fee_amount=149,
            net_amount=9_851,
            currency=currency,
            ledger_transaction_id=uuid.uuid4(),
            **fx,
        )
        await deliver(pool, topics.PAYMENT_SETTLED, outcome(topics.PAYMENT_SETTLED, settled))
    day = now.date()
    response = await client.get(
        "/v1/reports/summary",
        params={"from": str(day - timedelta(days=1)), "to": str(day + timedelta(days=2))},
        headers=key,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    # per payment currency, fees as charged; paid out in TRY: both, the EUR one converted
    assert {t["currency"]: t["fee_amount"] for t in body["totals"]} == {"EUR": 149, "TRY": 149}
    assert body["net_after_fees_and_fx"] == [
        {
            "currency": "TRY",
            "settled_count": 2,
            "converted_count": 1,
            "net_amount": 467_058 + 9_851,
            "fx_markup_amount": 4_718,
        }
    ]
