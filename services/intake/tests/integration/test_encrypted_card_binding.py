"""Client-side encrypted cards (JWE) are bound to one merchant, a short life and one use,
against the real intake database: a token another merchant captured, a stale one or a reused
one is refused with 422 on `encrypted_card`; an idempotent retry still replays."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from jwcrypto import jwe, jwk

from sanalpos_common.settings import DEV_ADMIN_TOKEN

from .conftest import http_client, private_intake

CARD = {"number": "4111111111111111", "exp_month": 12, "exp_year": 2031, "cvc": "123"}


class Shop:
    def __init__(self, client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
        self.client, self.pool = client, pool
        self.key: dict[str, Any] = {}

    async def merchant(self) -> dict[str, Any]:
        created = await self.client.post(
            "/admin/merchants",
            json={"name": f"JWE {uuid.uuid4().hex[:6]}"},
            headers={"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"},
        )
        assert created.status_code == 201, created.text
        return dict(created.json())

    def seal(self, merchant_id: str | None, **claims: Any) -> str:
        header = {"aud": merchant_id, "iat": int(time.time()), "jti": uuid.uuid4().hex}
        header = {k: v for k, v in {**header, **claims}.items() if v is not None}
        protected = {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": self.key["kid"], **header}
        token = jwe.JWE(
            json.dumps(CARD).encode(), recipient=jwk.JWK(**self.key), protected=protected
        )
        return str(token.serialize(compact=True))

    async def pay(
        self, merchant: dict[str, Any], token: str, key: str | None = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {merchant['api_key']}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        body = {"amount": 1500, "currency": "TRY", "encrypted_card": token}
        return await self.client.post("/v1/payments", json=body, headers=headers)

    async def store(self, merchant: dict[str, Any], token: str) -> httpx.Response:
        return await self.client.post(
            "/v1/cards",
            json={"encrypted_card": token},
            headers={"Authorization": f"Bearer {merchant['api_key']}"},
        )

    async def payments(self, merchant: dict[str, Any]) -> int:
        count = await self.pool.fetchval(
            "SELECT count(*) FROM payments WHERE merchant_id = $1", merchant["id"]
        )
        return int(count)


@pytest.fixture(scope="module")
async def shop() -> AsyncIterator[Shop]:
    async with private_intake() as platform, http_client(platform) as client:
        shop = Shop(client, platform.pool)
        shop.key = (await client.get("/v1/encryption-keys/current")).json()
        yield shop


def refused_code(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == "encrypted_card"
    assert "4111" not in response.text
    return str(error["code"])


async def test_a_bound_token_pays_once(shop: Shop) -> None:
    merchant = await shop.merchant()
    token = shop.seal(merchant["id"])
    assert (await shop.pay(merchant, token)).status_code == 202
    assert refused_code(await shop.pay(merchant, token)) == "jwe_reused"
    assert await shop.payments(merchant) == 1


async def test_an_idempotent_retry_with_the_same_token_replays(shop: Shop) -> None:
    merchant = await shop.merchant()
    token, key = shop.seal(merchant["id"]), f"jwe-{uuid.uuid4()}"
    first = await shop.pay(merchant, token, key)
    again = await shop.pay(merchant, token, key)
    assert first.status_code == again.status_code == 202, again.text
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["id"] == first.json()["id"]
    assert refused_code(await shop.pay(merchant, token, f"jwe-{uuid.uuid4()}")) == "jwe_reused"


async def test_a_token_made_for_another_merchant_is_refused(shop: Shop) -> None:
    victim, thief = await shop.merchant(), await shop.merchant()
    token = shop.seal(victim["id"])
    assert refused_code(await shop.pay(thief, token)) == "jwe_wrong_audience"
    assert refused_code(await shop.store(thief, token)) == "jwe_wrong_audience"
    assert await shop.payments(thief) == 0
    assert (await shop.pay(victim, token)).status_code == 202  # not used up by the refusal


async def test_stale_future_and_unbound_tokens_are_refused(shop: Shop) -> None:
    merchant = await shop.merchant()
    now = int(time.time())
    assert refused_code(await shop.pay(merchant, shop.seal(merchant["id"], iat=now - 1000))) == (
        "jwe_expired"
    )
    assert refused_code(await shop.pay(merchant, shop.seal(merchant["id"], iat=now + 600))) == (
        "jwe_expired"
    )
    assert refused_code(await shop.pay(merchant, shop.seal(None))) == "jwe_unbound"
    assert await shop.payments(merchant) == 0


async def test_a_token_stores_a_card_once_and_its_use_is_purged_after_expiry(shop: Shop) -> None:
    merchant = await shop.merchant()
    jti = uuid.uuid4().hex
    token = shop.seal(merchant["id"], jti=jti)
    assert (await shop.store(merchant, token)).status_code == 201
    assert refused_code(await shop.store(merchant, token)) == "jwe_reused"
    assert refused_code(await shop.pay(merchant, token)) == "jwe_reused"
    expires = await shop.pool.fetchval(
        "SELECT expires_at FROM used_jwe WHERE merchant_id = $1 AND jti = $2", merchant["id"], jti
    )
    assert expires is not None and expires.timestamp() > time.time() + 900

    from intake.adapters.used_jwe import UsedJweRepository

    await shop.pool.execute(
        "INSERT INTO used_jwe (merchant_id, jti, expires_at) VALUES ($1, $2, now() - interval '1s')",
        merchant["id"],
        "an-expired-token-id",
    )
    assert await UsedJweRepository(shop.pool).purge() >= 1
    left = await shop.pool.fetch("SELECT jti FROM used_jwe WHERE merchant_id = $1", merchant["id"])
    assert [r["jti"] for r in left] == [jti]
