"""3-D Secure through intake's merchant and admin APIs on a private intake: the merchant's
"always 3-D Secure" setting reaches payment.initiated, and the payment view shows the next
action while the payment requires it and the authentication once decided."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from sanalpos_common import topics
from sanalpos_common.schemas.events import (
    ActionRequired,
    AuthenticationStatus,
    PaymentActionRequired,
    PaymentAuthorized,
    PaymentCaptured,
    ThreeDSAuthentication,
)
from sanalpos_common.service import Platform
from sanalpos_common.settings import DEV_ADMIN_TOKEN

from .conftest import feed, http_client, private_intake

ADMIN = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
CARD = {"number": "4000003200000004", "exp_month": 12, "exp_year": 2031, "cvc": "123"}


@pytest.fixture(scope="module")
async def intake() -> AsyncIterator[tuple[Platform, httpx.AsyncClient]]:
    async with private_intake() as platform, http_client(platform) as client:
        yield platform, client


async def initiated_three_d_secure(platform: Platform, payment_id: str) -> str:
    payload = await platform.pool.fetchval(
        "SELECT payload FROM outbox WHERE topic = $1 AND message_key = $2",
        topics.PAYMENT_INITIATED,
        payment_id,
    )
    return str(json.loads(payload)["payload"]["three_d_secure"])


async def pay(client: httpx.AsyncClient, api_key: str, **extra: Any) -> dict[str, Any]:
    created = await client.post(
        "/v1/payments",
        json={"amount": 12_500, "currency": "TRY", "card": CARD, "capture": True, **extra},
        headers={"Authorization": f"Bearer {api_key}"},
    )
    assert created.status_code == 202, created.text
    body: dict[str, Any] = created.json()
    return body


async def test_always_three_d_secure_makes_every_payment_required(
    intake: tuple[Platform, httpx.AsyncClient],
) -> None:
    platform, client = intake
    made = await client.post(
        "/admin/merchants",
        json={"name": "Always 3DS", "always_three_d_secure": True},
        headers=ADMIN,
    )
    assert made.status_code == 201, made.text
    merchant = made.json()
    assert merchant["always_three_d_secure"] is True
    payment = await pay(client, merchant["api_key"])
    assert await initiated_three_d_secure(platform, payment["id"]) == "required"
    assert payment["next_action"] is None and payment["authentication"] is None

    path = f"/admin/merchants/{merchant['id']}"
    patched = await client.patch(path, json={"always_three_d_secure": False}, headers=ADMIN)
    assert patched.status_code == 200 and patched.json()["always_three_d_secure"] is False
    assert (await client.get(path, headers=ADMIN)).json()["always_three_d_secure"] is False
    automatic = await pay(client, merchant["api_key"])
    assert await initiated_three_d_secure(platform, automatic["id"]) == "automatic"
    required = await pay(client, merchant["api_key"], three_d_secure="required")
    assert await initiated_three_d_secure(platform, required["id"]) == "required"

    refused = await client.patch(path, json={"always_three_d_secure": "yes"}, headers=ADMIN)
    assert refused.status_code == 422
    assert "always_three_d_secure" in refused.text


async def test_the_payment_shows_its_next_action_then_its_authentication(
    intake: tuple[Platform, httpx.AsyncClient],
) -> None:
    platform, client = intake
    made = await client.post("/admin/merchants", json={"name": "3DS view"}, headers=ADMIN)
    merchant = made.json()
    key = {"Authorization": f"Bearer {merchant['api_key']}"}
    payment = await pay(client, merchant["api_key"], return_url="https://shop.example/back")
    payment_id = uuid.UUID(payment["id"])
    ref = {"payment_id": payment_id, "merchant_id": merchant["id"], "amount": 12_500}
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=10)
    url = "https://acs.example/acs/challenges/ch_abc"
    await feed(
        platform.pool,
        topics.PAYMENT_ACTION_REQUIRED,
        PaymentActionRequired(
            **ref,
            currency="TRY",
            action=ActionRequired.THREE_DS,
            score=10,
            next_action_url=url,
            expires_at=expires,
        ),
    )
    view = (await client.get(f"/v1/payments/{payment_id}", headers=key)).json()
    assert view["status"] == "requires_action"
    assert view["next_action"]["type"] == "redirect_to_url"
    assert view["next_action"]["url"] == url
    assert datetime.fromisoformat(view["next_action"]["expires_at"]) == expires

    authentication = ThreeDSAuthentication(
        status=AuthenticationStatus.AUTHENTICATED,
        flow="challenge",
        eci="05",
        authentication_value="c2VjcmV0LWlzaC1jYXZ2LXZhbHVlLTEyMw==",
        liability_shift=True,
        ds_transaction_id=uuid.uuid4(),
    )
    await feed(
        platform.pool,
        topics.PAYMENT_AUTHORIZED,
        PaymentAuthorized(
            **ref,
            currency="TRY",
            auth_code="A1B2C3",
            response_code="00",
            installments=1,
            capture=True,
            authentication=authentication,
        ),
    )
    await feed(
        platform.pool,
        topics.PAYMENT_CAPTURED,
        PaymentCaptured(
            **ref, currency="TRY", installments=1, auth_code="A1B2C3", authorized_amount=12_500
        ),
    )
    response = await client.get(f"/v1/payments/{payment_id}", headers=key)
    view = response.json()
    assert view["status"] == "captured"
    assert view["next_action"] is None
    assert view["authentication"] == {
        "status": "authenticated",
        "flow": "challenge",
        "eci": "05",
        "liability_shift": True,
    }
    assert authentication.authentication_value not in response.text
