"""The payment lifecycle through the five real services on real Kafka and PostgreSQL: intake
answers the merchant and sends commands, authorization executes them against the issuer
simulator, settlement books them, and intake's read model follows the outcome events.

- pre-authorization → partial capture → two partial refunds → over-refund refused (409) →
  the rest refunded;
- sale → void before the merchant's cut-off → voided (settlement keeps no sale line);
- pre-authorization never captured → expired (the whole-system environment sets a 20 s
  pre-authorization expiry; see tests/integration/support.py).
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx

from tests.integration.canary import fresh_number
from tests.integration.conftest import new_merchant
from tests.integration.support import eventually


def headers(key: str, idempotency_key: str | None = None) -> dict[str, str]:
    out = {"Authorization": f"Bearer {key}"}
    if idempotency_key:
        out["Idempotency-Key"] = idempotency_key
    return out


def payment_body(amount: int, capture: bool) -> dict[str, Any]:
    return {
        "amount": amount,
        "currency": "TRY",
        "capture": capture,
        "order_id": f"life-{uuid.uuid4().hex[:8]}",
        # A fresh approving card per payment: fraud's per-card velocity outlives a run.
        "card": {"number": fresh_number("4111"), "exp_month": 12, "exp_year": 2031, "cvc": "123"},
    }


class Merchant:
    def __init__(self, intake: httpx.AsyncClient, key: str) -> None:
        self.intake, self.key = intake, key

    async def create(self, amount: int, capture: bool) -> str:
        response = await self.intake.post(
            "/v1/payments", json=payment_body(amount, capture), headers=headers(self.key)
        )
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    async def read(self, payment_id: str) -> dict[str, Any]:
        response = await self.intake.get(f"/v1/payments/{payment_id}", headers=headers(self.key))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def reaches(
        self, payment_id: str, status: str, timeout_s: float = 45, **fields: Any
    ) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            payment = await self.read(payment_id)
            ok = payment["status"] == status and all(payment[k] == v for k, v in fields.items())
            return payment if ok else None

        return await eventually(probe, timeout_s=timeout_s, interval_s=0.3)

    async def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return await self.intake.post(
            path, json=body, headers=headers(self.key, f"life-{uuid.uuid4()}")
        )


async def a_merchant(intake: httpx.AsyncClient) -> Merchant:
    created = await new_merchant(intake, "Lifecycle Store")
    return Merchant(intake, created["api_key"])


async def test_preauth_partial_capture_two_refunds_and_an_over_refund(
    intake: httpx.AsyncClient, databases: dict[str, asyncpg.Pool]
) -> None:
    shop = await a_merchant(intake)
    payment_id = await shop.create(10_000, capture=False)
    await shop.reaches(payment_id, "authorized")

    captured = await shop.post(f"/v1/payments/{payment_id}/capture", {"amount": 7_000})
    assert captured.status_code == 202, captured.text
    await shop.reaches(payment_id, "captured", captured_amount=7_000)

    refunds = f"/v1/payments/{payment_id}/refunds"
    first = await shop.post(refunds, {"amount": 2_000, "reason": "one item returned"})
    assert first.status_code == 202, first.text
    await shop.reaches(payment_id, "partially_refunded", refunded_amount=2_000)
    second = await shop.post(refunds, {"amount": 3_000, "reason": "two more returned"})
    assert second.status_code == 202, second.text
    await shop.reaches(payment_id, "partially_refunded", refunded_amount=5_000)

    over = await shop.post(refunds, {"amount": 2_001, "reason": "too much"})
    assert over.status_code == 409, over.text
    assert over.json()["type"].endswith("/refund-exceeds-captured")
    assert over.json()["available_amount"] == 2_000

    rest = await shop.post(refunds, {"amount": 2_000, "reason": "the rest"})
    assert rest.status_code == 202, rest.text
    payment = await shop.reaches(payment_id, "refunded", refunded_amount=7_000)
    assert [(r["amount"], r["status"]) for r in payment["refunds"]] == [
        (2_000, "succeeded"),
        (3_000, "succeeded"),
        (2_000, "succeeded"),
    ]
    types = [e["type"] for e in payment["events"]]
    assert types.count("payment.refunded") == 3
    assert {"payment.authorized", "command.capture-payment", "payment.captured"} <= set(types)
    listed = await intake.get(refunds, headers=headers(shop.key))
    assert [r["id"] for r in listed.json()["data"]] == [r["id"] for r in payment["refunds"]]

    # Nothing more to refund or capture; the state is named.
    again = await shop.post(refunds, {"amount": 1, "reason": "one more"})
    assert (again.status_code, again.json()["current_state"]) == (409, "refunded")
    recapture = await shop.post(f"/v1/payments/{payment_id}/capture")
    assert (recapture.status_code, recapture.json()["current_state"]) == (409, "refunded")

    # The acquirer side agrees: 7,000 captured of the 10,000 hold, all of it refunded.
    refunded_total = await databases["authorization"].fetchval(
        "SELECT COALESCE(SUM(amount), 0) FROM refunds WHERE payment_id = $1",
        uuid.UUID(payment_id),
    )
    assert refunded_total == 7_000


async def test_sale_voided_before_the_cut_off(intake: httpx.AsyncClient) -> None:
    shop = await a_merchant(intake)
    payment_id = await shop.create(4_200, capture=True)
    await shop.reaches(payment_id, "captured", captured_amount=4_200)

    voided = await shop.post(f"/v1/payments/{payment_id}/void")
    assert voided.status_code == 202, voided.text
    assert voided.json()["pending_operation"] == "void"
    payment = await shop.reaches(payment_id, "voided", pending_operation=None)
    void_events = [e for e in payment["events"] if e["type"] == "payment.voided"]
    assert [e["details"]["after_capture"] for e in void_events] == [True]

    refund = await shop.post(
        f"/v1/payments/{payment_id}/refunds", {"amount": 1, "reason": "already voided"}
    )
    assert (refund.status_code, refund.json()["current_state"]) == (409, "voided")


async def test_preauth_never_captured_expires(intake: httpx.AsyncClient) -> None:
    shop = await a_merchant(intake)
    payment_id = await shop.create(3_300, capture=False)
    await shop.reaches(payment_id, "authorized")
    payment = await shop.reaches(payment_id, "expired", timeout_s=90)
    assert "payment.expired" in {e["type"] for e in payment["events"]}

    late = await shop.post(f"/v1/payments/{payment_id}/capture")
    assert (late.status_code, late.json()["current_state"]) == (409, "expired")
