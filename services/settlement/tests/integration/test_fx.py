"""Multi-currency on the running settlement service (real Kafka and PostgreSQL): rates set
through the admin API or uploaded as TCMB/ECB files, a EUR sale for a TRY merchant converted
at the rate of its capture (a later rate does not move it), refunds and voids of converted
payments, and a payment without a fresh rate settled in its own currency."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sanalpos_common import topics
from sanalpos_common.schemas.codec import decode
from sanalpos_common.schemas.events import (
    MerchantUpdated,
    PaymentCaptured,
    PaymentRefunded,
    PaymentVoided,
)
from sanalpos_common.testing import wait_for
from settlement.adapters.rate_providers import SAMPLE_FILES
from settlement.domain.fx import RateSource

from . import test_service
from .test_service import ADMIN, Service

service = test_service.service  # the running service, its own instance for this module


async def _merchant(service: Service, **fx: Any) -> str:
    merchant_id = f"mer_{uuid.uuid4().hex[:10]}"
    profile = MerchantUpdated(
        merchant_id=merchant_id,
        name="FX Shop",
        settlement_currency="TRY",
        time_zone="Europe/Istanbul",
        cutoff_time=time(23, 59),
        fee_plan="volume",  # 1.49 %
        version=1,
        **fx,
    )
    await service.publish(topics.MERCHANT_UPDATED, profile, merchant_id)
    await wait_for(
        lambda: service.pool.fetchval(
            "SELECT 1 FROM merchants WHERE merchant_id = $1", merchant_id
        ),
        timeout=30,
    )
    return merchant_id


async def _set_rate(service: Service, base: str, quote: str, rate: str, **extra: Any) -> Any:
    response = await service.http.post(
        "/admin/fx/rates", json={"base": base, "quote": quote, "rate": rate, **extra}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    return response.json()


async def _capture(service: Service, merchant_id: str, amount: int, currency: str) -> uuid.UUID:
    payment_id = uuid.uuid4()
    captured = PaymentCaptured(
        payment_id=payment_id,
        merchant_id=merchant_id,
        amount=amount,
        currency=currency,
        installments=1,
        auth_code="654321",
    )
    await service.publish(topics.PAYMENT_CAPTURED, captured, str(payment_id))
    await wait_for(
        lambda: service.pool.fetchval(
            "SELECT 1 FROM settlement_payments WHERE payment_id = $1", payment_id
        ),
        timeout=30,
    )
    return payment_id


async def _balances(service: Service, merchant_id: str) -> dict[tuple[str, str], int]:
    """Credit minus debit per account and currency over the merchant's transactions."""
    rows = await service.pool.fetch(
        "SELECT e.account, e.currency, sum(CASE WHEN e.direction = 'credit' THEN e.amount "
        "ELSE -e.amount END) AS balance FROM ledger_entries e JOIN ledger_transactions t "
        "ON t.id = e.transaction_id WHERE t.merchant_id = $1 GROUP BY e.account, e.currency",
        merchant_id,
    )
    return {(r["account"], r["currency"].strip()): int(r["balance"]) for r in rows}


def _assert_balanced_per_currency(balances: dict[tuple[str, str], int]) -> None:
    per_currency: dict[str, int] = {}
    for (_, currency), balance in balances.items():
        per_currency[currency] = per_currency.get(currency, 0) + balance
    assert per_currency and set(per_currency.values()) == {0}, per_currency


async def _close(service: Service, merchant_id: str) -> list[dict[str, Any]]:
    response = await service.http.post(
        "/admin/batches/close", json={"merchant_id": merchant_id}, headers=ADMIN
    )
    assert response.status_code == 200, response.text
    closed: list[dict[str, Any]] = response.json()["closed"]
    return closed


async def test_a_eur_sale_for_a_try_merchant_converts_at_the_rate_of_its_capture(
    service: Service,
) -> None:
    merchant_id = await _merchant(
        service, currency_settlement={"EUR": "convert"}, fx_markup_bps=100
    )
    earlier = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    at_capture = await _set_rate(service, "EUR", "TRY", "47.8912", as_of=earlier)
    payment_id = await _capture(service, merchant_id, 10_000, "EUR")  # 100.00 EUR

    fixed = (await service.http.get(f"/admin/fx/payments/{payment_id}", headers=ADMIN)).json()
    # card fee 1.49 % in EUR: 149; net 98.51 EUR * 47.8912 = 4717.762... TRY -> 4717.76
    assert fixed["status"] == "converted"
    assert (fixed["amount"], fixed["converted_amount"]) == (9_851, 471_776)
    assert (fixed["rate_id"], fixed["rate"], fixed["rate_source"]) == (
        at_capture["id"],
        "47.8912",
        "manual",
    )
    assert fixed["markup_amount"] == 4_718  # 1 % of 4717.76 TRY, half up

    # a new rate after the capture does not move the payment
    await _set_rate(service, "EUR", "TRY", "50.1234")
    [batch] = await _close(service, merchant_id)
    assert batch["currency"] == "TRY"
    assert batch["totals"] == {
        "gross_amount": 471_776,
        "fee_amount": 4_718,
        "refund_amount": 0,
        "reversal_amount": 0,
        "net_amount": 471_776 - 4_718,
    }
    [settled] = await service.pool.fetch(
        "SELECT payload FROM outbox WHERE topic = $1 AND message_key = $2",
        topics.PAYMENT_SETTLED,
        str(payment_id),
    )
    payload = decode(topics.PAYMENT_SETTLED, bytes(settled["payload"])).payload
    assert (payload.currency, payload.gross_amount, payload.fee_amount) == ("EUR", 10_000, 149)
    assert (payload.settlement_currency, payload.settlement_net_amount) == ("TRY", 467_058)
    assert (payload.fx_markup_amount, str(payload.fx_rate)) == (4_718, "47.8912")
    balances = await _balances(service, merchant_id)
    payable = f"merchant:{merchant_id}:payable"
    assert balances[(payable, "TRY")] == 467_058
    assert balances[(payable, "EUR")] == 0  # all of it moved into TRY
    assert balances[("fx:clearing", "EUR")] == 9_851
    assert balances[("fx:clearing", "TRY")] == -471_776
    assert balances[("platform:fx_markup", "TRY")] == 4_718
    assert balances[("platform:fee_revenue", "EUR")] == 149
    _assert_balanced_per_currency(balances)
    kinds = await service.pool.fetch(
        "SELECT kind FROM ledger_transactions WHERE payment_id = $1 ORDER BY kind", payment_id
    )
    assert [r["kind"] for r in kinds] == ["capture", "fx_conversion", "fx_markup"]

    # a refund of it goes at the capture's rate too, into the TRY batches
    refund = PaymentRefunded(
        refund_id=uuid.uuid4(),
        payment_id=payment_id,
        merchant_id=merchant_id,
        amount=5_000,
        currency="EUR",
        reason="half returned",
    )
    await service.publish(topics.PAYMENT_REFUNDED, refund, str(payment_id))

    async def refunded() -> bool:
        kinds = await service.pool.fetchval(
            "SELECT count(*) FROM ledger_transactions WHERE payment_id = $1 AND kind = 'refund'",
            payment_id,
        )
        return bool(kinds == 1)

    await wait_for(refunded, timeout=30)
    [refund_batch] = await _close(service, merchant_id)
    assert refund_batch["currency"] == "TRY"
    assert refund_batch["totals"]["refund_amount"] == 239_456  # 50.00 EUR * 47.8912
    assert refund_batch["totals"]["net_amount"] == -239_456
    balances = await _balances(service, merchant_id)
    assert balances[(payable, "TRY")] == 467_058 - 239_456
    assert balances[(payable, "EUR")] == 0
    _assert_balanced_per_currency(balances)


async def test_a_converted_sale_voided_before_the_cutoff_leaves_nothing(service: Service) -> None:
    merchant_id = await _merchant(service, currency_settlement={"USD": "convert"}, fx_markup_bps=50)
    await _set_rate(service, "USD", "TRY", "41.2345")
    payment_id = await _capture(service, merchant_id, 2_500, "USD")
    voided = PaymentVoided(
        payment_id=payment_id,
        merchant_id=merchant_id,
        amount=2_500,
        currency="USD",
        after_capture=True,
    )
    await service.publish(topics.PAYMENT_VOIDED, voided, str(payment_id))
    await wait_for(
        lambda: service.pool.fetchval(
            "SELECT 1 FROM settlement_payments WHERE payment_id = $1 AND status = 'voided'",
            payment_id,
        ),
        timeout=30,
    )
    [batch] = await _close(service, merchant_id)
    assert batch["currency"] == "TRY"
    totals = batch["totals"]
    assert totals["net_amount"] == 0 and totals["fee_amount"] == 0
    assert totals["gross_amount"] == totals["reversal_amount"] > 0
    balances = await _balances(service, merchant_id)
    assert {k: v for k, v in balances.items() if v} == {}
    _assert_balanced_per_currency({**balances, ("x", "USD"): 0})


async def test_without_a_fresh_rate_the_sale_settles_in_its_own_currency(
    service: Service,
) -> None:
    merchant_id = await _merchant(service, currency_settlement={"GBP": "convert"})
    stale_as_of = (datetime.now(UTC) - timedelta(days=10)).isoformat()
    await _set_rate(service, "GBP", "TRY", "54.6120", as_of=stale_as_of, valid_for_s=86_400)
    payment_id = await _capture(service, merchant_id, 7_000, "GBP")

    fixed = (await service.http.get(f"/admin/fx/payments/{payment_id}", headers=ADMIN)).json()
    assert fixed["status"] == "no_rate" and fixed["rate_id"] is None
    [batch] = await _close(service, merchant_id)
    assert batch["currency"] == "GBP"
    assert batch["totals"]["gross_amount"] == 7_000
    kinds = await service.pool.fetch(
        "SELECT kind FROM ledger_transactions WHERE payment_id = $1", payment_id
    )
    assert [r["kind"] for r in kinds] == ["capture"]
    _assert_balanced_per_currency(await _balances(service, merchant_id))


async def test_rate_files_are_loaded_once_and_bad_ones_refused(service: Service) -> None:
    raw = SAMPLE_FILES[RateSource.TCMB].read_bytes()
    first = await service.http.post(
        "/admin/fx/rate-files/tcmb", content=raw, headers={**ADMIN, "Content-Type": "text/xml"}
    )
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["rates_in_file"] == 5  # USD EUR GBP JPY KWD (XDR is not payable)
    assert {(r["base"], r["quote"], r["rate"]) for r in body["added"]} >= {
        ("EUR", "TRY", "47.8912"),
        ("JPY", "TRY", "0.264315"),
    }
    again = await service.http.post("/admin/fx/rate-files/tcmb", content=raw, headers=ADMIN)
    assert again.json()["added"] == []
    ecb = await service.http.post(
        "/admin/fx/rate-files/ecb",
        content=SAMPLE_FILES[RateSource.ECB].read_bytes(),
        headers=ADMIN,
    )
    assert ecb.status_code == 200 and ecb.json()["rates_in_file"] == 5
    bad = await service.http.post("/admin/fx/rate-files/ecb", content=b"<x/>", headers=ADMIN)
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    listed = await service.http.get(
        "/admin/fx/rates", params={"at": "2026-12-02T13:00:00Z"}, headers=ADMIN
    )
    held = {(r["base"], r["quote"], r["source"]): r for r in listed.json()}
    assert held[("EUR", "TRY", "tcmb")]["fresh"] is True
    float_rate = await service.http.post(
        "/admin/fx/rates", json={"base": "EUR", "quote": "TRY", "rate": 47.5}, headers=ADMIN
    )
    assert float_rate.status_code == 422
