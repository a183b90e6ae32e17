"""The merchant admin API, API keys, their cache and rate limits, in-process against the real
intake database (MerchantUpdated is read back from the outbox)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import time
from typing import Any

import asyncpg
import httpx
import pytest

from intake.adapters.merchants import MerchantRepository
from intake.config import DEMO_MERCHANT_ID
from intake.service_layer.merchants import ensure_merchant
from sanalpos_common import topics
from sanalpos_common.schemas.codec import decode
from sanalpos_common.schemas.events import MERCHANT_NAMESPACE
from sanalpos_common.settings import DEV_ADMIN_TOKEN

from .conftest import http_client, running_intake

ADMIN = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}


@dataclass
class Intake:
    client: httpx.AsyncClient
    pool: asyncpg.Pool

    async def admin(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return await self.client.request(method, path, json=body, headers=ADMIN)

    async def merchant(self, **fields: Any) -> dict[str, Any]:
        response = await self.admin("POST", "/admin/merchants", {"name": "Shop", **fields})
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def me(self, api_key: str) -> httpx.Response:
        return await self.client.get("/v1/merchant", headers=bearer(api_key))

    async def announcements(self, merchant_id: str) -> list[Any]:
        rows = await self.pool.fetch(
            "SELECT payload FROM outbox WHERE topic = $1 AND message_key = $2 ORDER BY id",
            topics.MERCHANT_UPDATED,
            str(uuid.uuid5(MERCHANT_NAMESPACE, merchant_id)),
        )
        return [decode(topics.MERCHANT_UPDATED, bytes(r["payload"])).payload for r in rows]


def bearer(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


@pytest.fixture(scope="module")
async def intake() -> AsyncIterator[Intake]:
    async with running_intake() as platform, http_client(platform) as client:
        yield Intake(client, platform.pool)


async def test_create_shows_the_key_once_and_announces_the_merchant(intake: Intake) -> None:
    merchant_id = f"mer_{uuid.uuid4().hex[:12]}"
    created = await intake.merchant(
        id=merchant_id,
        name="Moda Kitap Evi",
        time_zone="Europe/Berlin",
        cutoff_time="18:30",
        fee_plan="volume",
        max_installments=6,
    )
    assert created["api_key"].startswith("sk_test_")
    assert created["key"]["prefix"] == created["api_key"][:12]
    assert (created["cutoff_time"], created["version"], created["max_installments"]) == (
        "18:30",
        1,
        6,
    )
    me = await intake.me(created["api_key"])
    assert me.status_code == 200 and me.json()["id"] == merchant_id

    [event] = await intake.announcements(merchant_id)
    assert (event.time_zone, event.cutoff_time, event.fee_plan, event.version) == (
        "Europe/Berlin",
        time(18, 30),
        "volume",
        1,
    )
    read = await intake.admin("GET", f"/admin/merchants/{merchant_id}")
    assert read.status_code == 200 and "api_key" not in read.json()

    again = await intake.admin("POST", "/admin/merchants", {"name": "Dup", "id": merchant_id})
    assert again.status_code == 409


async def test_update_makes_a_new_version_and_announces_it(intake: Intake) -> None:
    created = await intake.merchant()
    path = f"/admin/merchants/{created['id']}"
    updated = await intake.admin("PATCH", path, {"cutoff_time": "17:00", "fee_plan": "volume"})
    assert updated.status_code == 200, updated.text
    assert (updated.json()["version"], updated.json()["cutoff_time"]) == (2, "17:00")
    unchanged = await intake.admin("PATCH", path, {"cutoff_time": "17:00"})
    assert unchanged.json()["version"] == 2
    events = await intake.announcements(created["id"])
    assert [(e.version, e.cutoff_time) for e in events] == [(1, time(23, 59)), (2, time(17, 0))]


async def test_payout_plan_is_kept_and_announced_to_settlement(intake: Intake) -> None:
    created = await intake.merchant(payout_delay_days=0)
    assert created["payout_delay_days"] == 0
    path = f"/admin/merchants/{created['id']}"
    updated = await intake.admin("PATCH", path, {"payout_delay_days": 3})
    assert updated.status_code == 200, updated.text
    assert (updated.json()["payout_delay_days"], updated.json()["version"]) == (3, 2)
    events = await intake.announcements(created["id"])
    assert [e.payout_delay_days for e in events] == [0, 3]
    default = await intake.merchant()
    assert default["payout_delay_days"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"time_zone": "Europe/Atlantis"}, "time_zone"),
        ({"fee_plan": "platinum"}, "fee_plan"),
        ({"cutoff_time": "24:00"}, "cutoff_time"),
        ({"max_installments": 13}, "max_installments"),
        ({"payout_delay_days": 31}, "payout_delay_days"),
        ({"payout_delay_days": -1}, "payout_delay_days"),
        ({"version": 99}, "version"),
        ({"id": "mer_other"}, "id"),
    ],
)
async def test_bad_updates_are_named(intake: Intake, body: dict[str, Any], field: str) -> None:
    created = await intake.merchant()
    response = await intake.admin("PATCH", f"/admin/merchants/{created['id']}", body)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert len(await intake.announcements(created["id"])) == 1


@pytest.mark.parametrize("extra", [{"status": "active"}, {"merchant_id": "mer_x"}, {"version": 3}])
async def test_create_rejects_mass_assignment(intake: Intake, extra: dict[str, Any]) -> None:
    response = await intake.admin("POST", "/admin/merchants", {"name": "Shop", **extra})
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert (error["field"], error["code"]) == (next(iter(extra)), "extra_forbidden")


async def test_admin_api_needs_the_admin_credential(intake: Intake) -> None:
    created = await intake.merchant()
    for headers in ({}, bearer(created["api_key"]), bearer("wrong-token")):
        response = await intake.client.get("/admin/merchants", headers=headers)
        assert response.status_code == 401


async def test_list_pages_through_merchants(intake: Intake) -> None:
    for _ in range(3):
        await intake.merchant()
    first = (await intake.admin("GET", "/admin/merchants?limit=2")).json()
    assert len(first["data"]) == 2 and first["has_more"]
    second = (
        await intake.admin("GET", f"/admin/merchants?limit=2&cursor={first['next_cursor']}")
    ).json()
    assert second["data"][0]["id"] > first["data"][-1]["id"]


async def test_keys_are_listed_by_prefix_only(intake: Intake) -> None:
    created = await intake.merchant()
    path = f"/admin/merchants/{created['id']}/keys"
    live = await intake.admin("POST", path, {"mode": "live"})
    assert live.status_code == 201 and live.json()["api_key"].startswith("sk_live_")
    listed = await intake.admin("GET", path)
    keys = listed.json()["data"]
    assert {k["mode"] for k in keys} == {"test", "live"}
    assert created["api_key"] not in listed.text and live.json()["api_key"] not in listed.text
    hashes = await intake.pool.fetch(
        "SELECT key_hash FROM api_keys WHERE merchant_id = $1", created["id"]
    )
    assert all(r["key_hash"] not in listed.text for r in hashes)
    assert all("api_key" not in k and "key_hash" not in k for k in keys)


async def test_revoke_stops_the_key_at_once(intake: Intake) -> None:
    created = await intake.merchant()
    key = created["api_key"]
    assert (await intake.me(key)).status_code == 200  # now cached
    revoked = await intake.admin(
        "POST", f"/admin/merchants/{created['id']}/keys/{created['key']['id']}/revoke"
    )
    assert revoked.status_code == 200 and revoked.json()["active"] is False
    assert (await intake.me(key)).status_code == 401


async def test_rotate_issues_a_new_key_and_retires_the_old(intake: Intake) -> None:
    created = await intake.merchant()
    old = created["api_key"]
    base = f"/admin/merchants/{created['id']}/keys/{created['key']['id']}"
    rotated = await intake.admin("POST", f"{base}/rotate", {"grace_period_s": 0})
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["key"]["api_key"]
    assert new != old and rotated.json()["previous"]["active"] is False
    assert (await intake.me(new)).status_code == 200
    assert (await intake.me(old)).status_code == 401
    again = await intake.admin("POST", f"{base}/rotate", {})
    assert again.status_code == 404


async def test_rotate_with_grace_keeps_the_old_key_working_until_then(intake: Intake) -> None:
    created = await intake.merchant()
    base = f"/admin/merchants/{created['id']}/keys/{created['key']['id']}"
    rotated = await intake.admin("POST", f"{base}/rotate", {"grace_period_s": 3600})
    previous = rotated.json()["previous"]
    assert previous["active"] is True and previous["revoked_at"] is not None
    assert (await intake.me(created["api_key"])).status_code == 200
    assert (await intake.me(rotated.json()["key"]["api_key"])).status_code == 200


async def test_keys_of_another_merchant_are_not_found(intake: Intake) -> None:
    a, b = await intake.merchant(), await intake.merchant()
    response = await intake.admin(
        "POST", f"/admin/merchants/{b['id']}/keys/{a['key']['id']}/revoke"
    )
    assert response.status_code == 404
    assert (await intake.me(a["api_key"])).status_code == 200


async def test_over_the_key_limit_is_429_with_retry_after(intake: Intake) -> None:
    created = await intake.merchant(rate_limit={"per_second": 0.01, "burst": 2})
    limited = created["api_key"]
    other = await intake.admin(
        "POST",
        f"/admin/merchants/{created['id']}/keys",
        {"rate_limit": {"per_second": 0.01, "burst": 2}},
    )
    statuses = [(await intake.me(limited)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    refused = await intake.me(limited)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("/rate-limited")
    retry_after = refused.headers["Retry-After"]
    assert retry_after.isdigit() and 1 <= int(retry_after) <= 100  # a token per 100 s
    # Another key, even of the same merchant, has its own bucket.
    assert (await intake.me(other.json()["api_key"])).status_code == 200


async def test_key_cache_honours_revocations_from_elsewhere_within_its_ttl(
    intake: Intake,
) -> None:
    """A revocation by another process (the CLI, another replica) is seen once the cached
    entry expires; the clock is the repository's own, moved by hand."""
    created = await intake.merchant()
    now = [1000.0]
    repository = MerchantRepository(intake.pool, cache_ttl_s=5.0, clock=lambda: now[0])
    assert await repository.merchant_for_key(created["api_key"]) == created["id"]
    await intake.pool.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE merchant_id = $1", created["id"]
    )
    now[0] += 4.9
    assert await repository.merchant_for_key(created["api_key"]) == created["id"]
    now[0] += 0.2
    assert await repository.merchant_for_key(created["api_key"]) is None


async def test_seeded_merchant_is_announced_once(intake: Intake) -> None:
    """How the development demo merchant is seeded at every start-up."""
    merchant_id = f"mer_seed_{uuid.uuid4().hex[:8]}"
    key = f"sk_test_seed_{uuid.uuid4().hex}"
    assert await ensure_merchant(intake.pool, merchant_id, "Seeded", key)
    assert not await ensure_merchant(intake.pool, merchant_id, "Seeded", key)
    assert [e.version for e in await intake.announcements(merchant_id)] == [1]
    assert (await intake.me(key)).status_code == 200
    demo = await intake.announcements(DEMO_MERCHANT_ID)
    assert len(demo) <= 1


PAYMENT = {
    "amount": 1000,
    "currency": "TRY",
    "card": {"number": "4111111111111111", "exp_month": 12, "exp_year": 2031, "cvc": "123"},
}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/payments", {**PAYMENT, "status": "captured"}, "status"),
        ("/v1/payments", {**PAYMENT, "merchant_id": "mer_someone_else"}, "merchant_id"),
        ("/v1/payments", {**PAYMENT, "fee_amount": 0}, "fee_amount"),
        ("/v1/cards", {"card": PAYMENT["card"], "merchant_id": "mer_x"}, "merchant_id"),
        ("/v1/webhook-endpoints", {"url": "https://x.test/h", "secret": "whsec_x"}, "secret"),
    ],
)
async def test_merchant_requests_reject_mass_assignment(
    intake: Intake, path: str, body: dict[str, Any], field: str
) -> None:
    created = await intake.merchant()
    response = await intake.client.post(path, json=body, headers=bearer(created["api_key"]))
    assert response.status_code == 422, response.text
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [
        (field, "extra_forbidden")
    ]
    written = await intake.pool.fetchval(
        "SELECT count(*) FROM payments WHERE merchant_id = $1", created["id"]
    )
    assert written == 0


async def test_record_lists_webhook_endpoints_without_secrets(intake: Intake) -> None:
    created = await intake.merchant()
    registered = await intake.client.post(
        "/v1/webhook-endpoints",
        json={"url": "https://shop.example/hooks"},
        headers=bearer(created["api_key"]),
    )
    assert registered.status_code == 201, registered.text
    for response in (
        await intake.me(created["api_key"]),
        await intake.admin("GET", f"/admin/merchants/{created['id']}"),
    ):
        [endpoint] = response.json()["webhook_endpoints"]
        assert (endpoint["id"], endpoint["url"]) == (
            registered.json()["id"],
            "https://shop.example/hooks",
        )
        assert registered.json()["secret"] not in response.text
