"""Idempotency-Key on every merchant POST, in-process against the real intake database:
replay, conflict, exactly-once under concurrency, in-progress answers, reclaiming a crashed
request's claim, and the purge."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from intake.domain.commands import CreatePaymentRequest
from intake.service_layer.idempotency import purge_once
from intake.service_layer.payments import request_hash
from sanalpos_common import topics
from sanalpos_common.schemas.codec import decode
from sanalpos_common.schemas.events import Shopper, ThreeDSRequest
from sanalpos_common.settings import DEV_ADMIN_TOKEN

from .conftest import authorized, feed, http_client, private_intake

CARD = {"number": "4111111111111111", "exp_month": 12, "exp_year": 2031, "cvc": "123"}


class Api:
    def __init__(self, client: httpx.AsyncClient, pool: asyncpg.Pool, auth: str, merchant: str):
        self.client, self.pool, self.auth, self.merchant = client, pool, auth, merchant

    def headers(self, key: str | None) -> dict[str, str]:
        out = {"Authorization": self.auth}
        if key is not None:
            out["Idempotency-Key"] = key
        return out

    async def post(self, path: str, body: dict[str, Any] | None, key: str | None) -> httpx.Response:
        return await self.client.post(path, json=body, headers=self.headers(key))

    async def payments_for_order(self, order_id: str) -> int:
        count = await self.pool.fetchval(
            "SELECT count(*) FROM payments WHERE merchant_id = $1 AND order_id = $2",
            self.merchant,
            order_id,
        )
        return int(count)


@pytest.fixture(scope="module")
async def api() -> AsyncIterator[Api]:
    async with private_intake() as platform, http_client(platform) as client:
        created = await client.post(
            "/admin/merchants",
            json={"name": "Idempotent Shop"},
            headers={"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"},
        )
        assert created.status_code == 201, created.text
        merchant = created.json()
        yield Api(client, platform.pool, f"Bearer {merchant['api_key']}", merchant["id"])


def payment_body(order_id: str, amount: int = 1500, capture: bool = True) -> dict[str, Any]:
    return {
        "amount": amount,
        "currency": "TRY",
        "card": CARD,
        "order_id": order_id,
        "capture": capture,
    }


async def test_same_key_same_body_replays_the_first_response(api: Api) -> None:
    key, order = f"key-{uuid.uuid4()}", f"ord-{uuid.uuid4()}"
    first = await api.post("/v1/payments", payment_body(order), key)
    again = await api.post("/v1/payments", payment_body(order), key)
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert await api.payments_for_order(order) == 1


async def test_same_key_different_body_is_refused(api: Api) -> None:
    key, order = f"key-{uuid.uuid4()}", f"ord-{uuid.uuid4()}"
    assert (await api.post("/v1/payments", payment_body(order), key)).status_code == 202
    other = await api.post("/v1/payments", payment_body(order, amount=1600), key)
    assert other.status_code == 422
    assert other.json()["type"].endswith("/idempotency-key-reused")
    # ... and on another operation
    elsewhere = await api.post("/v1/webhook-endpoints", {"url": "https://shop.example/h"}, key)
    assert elsewhere.status_code == 422
    assert await api.payments_for_order(order) == 1


async def test_fifty_concurrent_requests_with_one_key_create_one_payment(api: Api) -> None:
    key, order = f"key-{uuid.uuid4()}", f"ord-{uuid.uuid4()}"
    answers = await asyncio.gather(
        *(api.post("/v1/payments", payment_body(order), key) for _ in range(50))
    )
    kinds = Counter(
        (a.status_code, a.headers.get("Idempotent-Replayed") == "true") for a in answers
    )
    assert kinds[(202, False)] == 1, kinds
    assert set(kinds) <= {(202, False), (202, True), (409, False)}, kinds
    for answer in answers:
        if answer.status_code == 409:
            assert answer.json()["type"].endswith("/idempotency-key-in-progress")
    assert await api.payments_for_order(order) == 1
    payment_id = next(a.json()["id"] for a in answers if a.status_code == 202)
    initiated = await api.pool.fetchval(
        "SELECT count(*) FROM outbox WHERE topic = $1 AND message_key = $2",
        topics.PAYMENT_INITIATED,
        payment_id,
    )
    assert initiated == 1
    # Once the first has finished, a retry gets its response.
    retry = await api.post("/v1/payments", payment_body(order), key)
    assert (retry.status_code, retry.json()["id"]) == (202, payment_id)


async def test_a_claim_in_progress_answers_409_and_an_expired_one_is_taken_over(api: Api) -> None:
    order = f"ord-{uuid.uuid4()}"
    body = payment_body(order)
    live, crashed = f"key-{uuid.uuid4()}", f"key-{uuid.uuid4()}"
    digest = claim_digest(body)
    for key, lock_s in ((live, 60.0), (crashed, -1.0)):
        await api.pool.execute(
            "INSERT INTO idempotency_keys (merchant_id, key, endpoint, request_hash, state, "
            "claim_id, locked_until) VALUES ($1, $2, 'POST /v1/payments', $3, 'in_progress', "
            "$4, now() + make_interval(secs => $5))",
            api.merchant,
            key,
            digest,
            uuid.uuid4(),
            lock_s,
        )
    busy = await api.post("/v1/payments", body, live)
    assert busy.status_code == 409
    assert busy.json()["type"].endswith("/idempotency-key-in-progress")
    assert await api.payments_for_order(order) == 0
    taken_over = await api.post("/v1/payments", body, crashed)
    assert taken_over.status_code == 202, taken_over.text
    assert await api.payments_for_order(order) == 1
    state = await api.pool.fetchval(
        "SELECT state FROM idempotency_keys WHERE merchant_id = $1 AND key = $2",
        api.merchant,
        crashed,
    )
    assert state == "done"


def claim_digest(body: dict[str, Any]) -> str:
    """The digest intake compares for this body."""
    return request_hash(CreatePaymentRequest.model_validate(body).fingerprint_for_idempotency())


async def test_a_refused_operation_releases_its_key(api: Api) -> None:
    """A capture refused (payment still pending) stores nothing: the same key works once the
    payment is authorized, and then replays."""
    created = await api.post(
        "/v1/payments", payment_body(f"ord-{uuid.uuid4()}", capture=False), None
    )
    payment_id = created.json()["id"]
    key, url = f"key-{uuid.uuid4()}", f"/v1/payments/{payment_id}/capture"
    assert (await api.post(url, {"amount": 500}, key)).status_code == 409
    await feed(api.pool, topics.PAYMENT_AUTHORIZED, authorized(payment_id, api.merchant, 1500))
    accepted = await api.post(url, {"amount": 500}, key)
    assert accepted.status_code == 202, accepted.text
    replayed = await api.post(url, {"amount": 500}, key)
    assert replayed.status_code == 202 and replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json() == accepted.json()
    assert (await api.post(url, {"amount": 400}, key)).status_code == 422


async def test_refunds_fraud_reports_cards_and_webhook_endpoints_replay(api: Api) -> None:
    created = await api.post("/v1/payments", payment_body(f"ord-{uuid.uuid4()}"), None)
    payment_id = uuid.UUID(created.json()["id"])
    await api.pool.execute(
        "UPDATE payments SET authorized = true, captured_amount = 1500, status = 'captured' "
        "WHERE id = $1",
        payment_id,
    )
    calls: list[tuple[str, dict[str, Any]]] = [
        (f"/v1/payments/{payment_id}/refunds", {"amount": 100, "reason": "late delivery"}),
        (f"/v1/payments/{payment_id}/fraud-report", {"reason": "stolen card"}),
        ("/v1/cards", {"card": {**CARD, "cvc": None}}),
        ("/v1/webhook-endpoints", {"url": "https://shop.example/hooks"}),
    ]
    for path, body in calls:
        key = f"key-{uuid.uuid4()}"
        first = await api.post(path, body, key)
        again = await api.post(path, body, key)
        assert first.status_code in (201, 202), (path, first.text)
        assert (again.status_code, again.json()) == (first.status_code, first.json()), path
        assert again.headers["Idempotent-Replayed"] == "true", path
    refunds = await api.pool.fetchval(
        "SELECT count(*) FROM refunds WHERE payment_id = $1", payment_id
    )
    reports = await api.pool.fetchval(
        "SELECT count(*) FROM outbox WHERE topic = $1 AND message_key = $2",
        topics.FRAUD_REPORTED,
        str(payment_id),
    )
    assert (refunds, reports) == (1, 1)


async def test_a_key_longer_than_255_characters_is_refused(api: Api) -> None:
    response = await api.post("/v1/payments", payment_body("ord-long"), "k" * 256)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["Idempotency-Key"]


async def test_keys_older_than_a_day_are_purged(api: Api) -> None:
    old, fresh = f"old-{uuid.uuid4()}", f"fresh-{uuid.uuid4()}"
    for key, age_h in ((old, 25), (fresh, 23)):
        await api.pool.execute(
            "INSERT INTO idempotency_keys (merchant_id, key, request_hash, response_status, "
            "response_body, created_at) VALUES ($1, $2, 'h', 202, '{}', "
            "now() - make_interval(hours => $3))",
            api.merchant,
            key,
            age_h,
        )
    assert await purge_once(api.pool) >= 1
    left = {
        r["key"]
        for r in await api.pool.fetch(
            "SELECT key FROM idempotency_keys WHERE merchant_id = $1 AND key = ANY($2)",
            api.merchant,
            [old, fresh],
        )
    }
    assert left == {fresh}


async def test_the_shopper_side_fields_reach_payment_initiated(api: Api) -> None:
    order = f"ord-{uuid.uuid4()}"
    body = {
        **payment_body(order),
        "three_d_secure": "required",
        "return_url": "https://shop.example.com/3ds-done",
        "shopper": {"email": "ayse@example.com", "name": "Ayse", "locale": "en"},
    }
    created = await api.post("/v1/payments", body, None)
    assert created.status_code == 202, created.text
    raw = await api.pool.fetchval(
        "SELECT payload FROM outbox WHERE topic = $1 AND message_key = $2",
        topics.PAYMENT_INITIATED,
        created.json()["id"],
    )
    initiated = decode(topics.PAYMENT_INITIATED, raw).payload
    assert initiated.three_d_secure is ThreeDSRequest.REQUIRED
    assert initiated.return_url == "https://shop.example.com/3ds-done"
    assert initiated.shopper == Shopper(email="ayse@example.com", name="Ayse", locale="en")
    assert initiated.checkout_session_id is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("return_url", "javascript:alert(1)"),
        ("three_d_secure", "sometimes"),
        ("shopper", {"email": "not-an-address"}),
    ],
)
async def test_bad_shopper_side_fields_are_refused_with_their_path(
    api: Api, field: str, value: object
) -> None:
    body = {**payment_body(f"ord-{uuid.uuid4()}"), field: value}
    refused = await api.post("/v1/payments", body, None)
    assert refused.status_code == 422
    fields = [e["field"] for e in refused.json()["errors"]]
    assert fields and all(f.startswith(field) for f in fields), refused.json()
