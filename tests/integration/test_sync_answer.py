"""`Prefer: wait=N` on POST /v1/payments across the whole system: the answer carries the
final outcome when it arrives in time, and is the usual 202 when the outcome is held back
(the authorization service is stopped with SIGSTOP, then resumed)."""

from __future__ import annotations

import signal
import uuid
from typing import Any

import httpx
import pytest

from tests.integration.canary import fresh_number
from tests.integration.conftest import new_merchant
from tests.integration.support import ServiceProcess, eventually


def payment(card: str, capture: bool = True) -> dict[str, Any]:
    return {
        "amount": 4_200,
        "currency": "TRY",
        "capture": capture,
        "order_id": f"sync-{uuid.uuid4().hex[:8]}",
        "card": {"number": card, "exp_month": 12, "exp_year": 2031, "cvc": "123"},
    }


@pytest.fixture(scope="module")
async def shop(intake: httpx.AsyncClient) -> dict[str, str]:
    """A fresh merchant, and one payment through the whole pipeline first, so the timed
    requests below do not pay for the services' first-message warm-up."""
    created = await new_merchant(intake, "Sync Shop")
    headers = {"Authorization": f"Bearer {created['api_key']}"}
    response = await intake.post(
        "/v1/payments", json=payment(fresh_number("4111")), headers=headers
    )
    assert response.status_code == 202, response.text
    payment_id = response.json()["id"]

    async def decided() -> bool:
        current = await intake.get(f"/v1/payments/{payment_id}", headers=headers)
        return current.json()["status"] != "pending"

    await eventually(decided, timeout_s=60)
    return headers


async def test_an_approving_card_answers_captured(
    intake: httpx.AsyncClient, shop: dict[str, str]
) -> None:
    response = await intake.post(
        "/v1/payments",
        json=payment(fresh_number("4111")),
        headers={**shop, "Prefer": "wait=5"},
    )
    assert response.status_code == 201, response.text
    assert response.headers["Preference-Applied"] == "wait=5"
    body = response.json()
    assert body["status"] == "captured"
    assert body["auth_code"]


async def test_a_pre_authorization_answers_authorized(
    intake: httpx.AsyncClient, shop: dict[str, str]
) -> None:
    response = await intake.post(
        "/v1/payments",
        json=payment(fresh_number("5555"), capture=False),
        headers={**shop, "Prefer": "wait=5"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "authorized"


async def test_a_declining_card_answers_declined(
    intake: httpx.AsyncClient, shop: dict[str, str]
) -> None:
    response = await intake.post(
        "/v1/payments",
        json=payment(fresh_number("40000002")),  # the simulator's "do not honour" range
        headers={**shop, "Prefer": "wait=5"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "declined"
    assert body["response_code"] == "05"


async def test_a_held_back_outcome_gets_202_and_arrives_later(
    intake: httpx.AsyncClient, shop: dict[str, str], services: dict[str, ServiceProcess]
) -> None:
    authorization = services["authorization"].process
    authorization.send_signal(signal.SIGSTOP)
    try:
        response = await intake.post(
            "/v1/payments",
            json=payment(fresh_number("4111")),
            headers={**shop, "Prefer": "wait=2"},
        )
    finally:
        authorization.send_signal(signal.SIGCONT)
    assert response.status_code == 202, response.text
    assert response.headers["Preference-Applied"] == "wait=2"
    assert response.json()["status"] == "pending"
    payment_id = response.json()["id"]

    async def captured() -> bool:
        current = await intake.get(f"/v1/payments/{payment_id}", headers=shop)
        return current.json()["status"] == "captured"

    await eventually(captured, timeout_s=60)
