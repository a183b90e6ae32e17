"""Fraud's manual review through the five real services: a `review` rule holds the payment
(authorization emits payment.action-required, intake shows requires_action); resolving it
on fraud's review API approves or declines it, and authorization follows the resolution."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.integration.canary import fresh_number
from tests.integration.conftest import ADMIN_TOKEN, new_merchant
from tests.integration.support import ServiceProcess, eventually

APPROVE_AMOUNT = 777_711
DECLINE_AMOUNT = 777_722


async def _pay(intake: httpx.AsyncClient, key: str, amount: int) -> str:
    body = {
        "amount": amount,
        "currency": "TRY",
        "capture": True,
        "order_id": f"review-{uuid.uuid4().hex[:8]}",
        "card": {"number": fresh_number("4111"), "exp_month": 12, "exp_year": 2031, "cvc": "123"},
    }
    response = await intake.post(
        "/v1/payments", json=body, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def _reaches(intake: httpx.AsyncClient, key: str, payment_id: str, status: str) -> Any:
    async def probe() -> dict[str, Any] | None:
        response = await intake.get(
            f"/v1/payments/{payment_id}", headers={"Authorization": f"Bearer {key}"}
        )
        body: dict[str, Any] = response.json()
        return body if body.get("status") == status else None

    return await eventually(probe, timeout_s=45, interval_s=0.3)


async def test_review_approve_authorizes_and_review_decline_declines(
    intake: httpx.AsyncClient, services: dict[str, ServiceProcess]
) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}", "X-Actor": "reviewer-1"}
    async with httpx.AsyncClient(
        base_url=services["fraud"].url, headers=admin, timeout=10
    ) as fraud:
        rule = {
            "name": f"review-it-{uuid.uuid4().hex[:8]}",
            "expression": f"amount in [{APPROVE_AMOUNT}, {DECLINE_AMOUNT}]",
            "action": "review",
        }
        created = await fraud.post("/v1/rules", json=rule)
        assert created.status_code == 201, created.text
        shop = (await new_merchant(intake, "Review Shop"))["api_key"]
        try:
            approved = await _pay(intake, shop, APPROVE_AMOUNT)
            declined = await _pay(intake, shop, DECLINE_AMOUNT)
            for payment_id in (approved, declined):
                await _reaches(intake, shop, payment_id, "requires_action")
            queue = {r["payment_id"] for r in (await fraud.get("/v1/reviews")).json()}
            assert {approved, declined} <= queue

            for payment_id, decision in ((approved, "approve"), (declined, "decline")):
                resolved = await fraud.post(
                    f"/v1/reviews/{payment_id}/resolve", json={"decision": decision}
                )
                assert resolved.status_code == 200, resolved.text
            again = await fraud.post(
                f"/v1/reviews/{approved}/resolve", json={"decision": "decline"}
            )
            assert again.status_code == 409

            await _reaches(intake, shop, approved, "captured")
            await _reaches(intake, shop, declined, "declined")
            explained = (await fraud.get(f"/v1/decisions/{approved}")).json()
            assert explained["review"]["status"] == "approve"
            assert explained["review"]["resolved_by"] == "reviewer-1"
            assert explained["rules_fired"] == [rule["name"]]
        finally:
            await fraud.patch(f"/v1/rules/{rule['name']}", json={"enabled": False})
