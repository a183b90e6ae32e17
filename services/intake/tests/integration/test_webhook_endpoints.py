"""POST /v1/webhook-endpoints against the real intake database: only public targets are
accepted, a merchant's endpoints are capped, and the signing secret is nowhere in clear but
in the registration's own answer (not in the announcement, not in the stored replay)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from intake.service_layer.webhooks import MAX_ENDPOINTS
from sanalpos_common.crypto.sealed import SealedKeyring
from sanalpos_common.crypto.webhook_secrets import open_webhook_secret
from sanalpos_common.settings import DEV_ADMIN_TOKEN, DEV_WEBHOOK_SEALED_KEYRING

from .conftest import http_client, private_intake


class Shop:
    def __init__(self, client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
        self.client, self.pool = client, pool

    async def new_merchant(self) -> dict[str, Any]:
        created = await self.client.post(
            "/admin/merchants",
            json={"name": f"Hooks {uuid.uuid4().hex[:6]}"},
            headers={"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"},
        )
        assert created.status_code == 201, created.text
        return dict(created.json())

    async def register(
        self, merchant: dict[str, Any], url: str, key: str | None = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {merchant['api_key']}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        return await self.client.post("/v1/webhook-endpoints", json={"url": url}, headers=headers)


@pytest.fixture(scope="module")
async def shop() -> AsyncIterator[Shop]:
    async with private_intake() as platform, http_client(platform) as client:
        yield Shop(client, platform.pool)


REFUSED_URLS = [
    "http://127.0.0.1:8080/hooks",
    "http://localhost/hooks",
    "https://api.localhost/hooks",
    "http://10.1.2.3/hooks",
    "http://172.16.0.1/hooks",
    "http://192.168.1.10/hooks",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.100.100.200/latest/meta-data/",  # CGNAT range (a cloud's metadata service)
    "http://0.0.0.0/hooks",
    "http://224.0.0.1/hooks",
    "http://2130706433/hooks",  # 127.0.0.1 written as one number
    "http://0x7f.1/hooks",
    "http://metadata/computeMetadata/v1/",  # single-label internal name
    "https://db.internal/hooks",
    "https://printer.local/hooks",
]


@pytest.mark.parametrize("url", REFUSED_URLS)
async def test_non_public_targets_are_refused_naming_url(shop: Shop, url: str) -> None:
    merchant = await shop.new_merchant()
    response = await shop.register(merchant, url)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in response.json()["errors"]] == ["url"]
    count = await shop.pool.fetchval(
        "SELECT count(*) FROM webhook_endpoints WHERE merchant_id = $1", merchant["id"]
    )
    assert count == 0


async def test_public_targets_are_accepted(shop: Shop) -> None:
    merchant = await shop.new_merchant()
    for url in ("https://shop.example/hooks", "http://93.184.216.34:8443/h"):
        response = await shop.register(merchant, url)
        assert response.status_code == 201, response.text


async def test_endpoints_per_merchant_are_capped(shop: Shop) -> None:
    merchant = await shop.new_merchant()
    for n in range(MAX_ENDPOINTS):
        response = await shop.register(merchant, f"https://shop.example/hooks/{n}")
        assert response.status_code == 201, response.text
    refused = await shop.register(merchant, "https://shop.example/hooks/one-too-many")
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"].endswith("webhook-endpoint-limit")
    count = await shop.pool.fetchval(
        "SELECT count(*) FROM webhook_endpoints WHERE merchant_id = $1", merchant["id"]
    )
    assert count == MAX_ENDPOINTS


async def test_secret_is_sealed_in_announcement_and_stored_replay(shop: Shop) -> None:
    merchant = await shop.new_merchant()
    key = f"hook-{uuid.uuid4()}"
    first = await shop.register(merchant, "https://shop.example/hooks", key)
    assert first.status_code == 201, first.text
    secret, endpoint_id = first.json()["secret"], first.json()["id"]
    assert secret.startswith("whsec_")
    encoded = secret.removeprefix("whsec_")

    stored = await shop.pool.fetchval(
        "SELECT response_body::text FROM idempotency_keys WHERE merchant_id = $1 AND key = $2",
        merchant["id"],
        key,
    )
    assert stored is not None and endpoint_id in stored
    assert encoded not in stored

    announced = await shop.pool.fetchval(
        "SELECT convert_from(payload, 'UTF8') FROM outbox "
        "WHERE topic = 'webhook-endpoint.registered.v1' AND message_key = $1",
        endpoint_id,
    )
    assert announced is not None and encoded not in announced
    # Only notification's keyring opens what was announced.
    sealed = json.loads(announced)["payload"]["secret_ciphertext"]
    notification_keyring = SealedKeyring.from_json(DEV_WEBHOOK_SEALED_KEYRING)
    opened = open_webhook_secret(
        notification_keyring, sealed, merchant["id"], uuid.UUID(endpoint_id)
    )
    assert opened == secret

    replay = await shop.register(merchant, "https://shop.example/hooks", key)
    assert replay.status_code == 201, replay.text
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json() == first.json()
