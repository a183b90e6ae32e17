"""`Prefer: wait` across replicas: two intake instances on one real PostgreSQL (and Kafka for
their start-up). A request waits on instance A; the outcome is applied by instance B, as if
B's consumer had taken it from Kafka; PostgreSQL's NOTIFY carries it to A."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from intake.adapters.outcome_listener import APPLICATION_NAME, OutcomeListener
from intake.bootstrap import bootstrap
from intake.service_layer.lifecycle import OUTCOME_HANDLERS
from sanalpos_common import topics
from sanalpos_common.db import unit_of_work
from sanalpos_common.schemas.events import PaymentDeclined
from sanalpos_common.service import Platform
from sanalpos_common.settings import DEV_ADMIN_TOKEN

from .conftest import authorized, outcome


class Replica:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.listener: OutcomeListener = platform.runtime.loops["outcome-listener"].__self__  # type: ignore[attr-defined]
        self.task = asyncio.create_task(self.listener.run())
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=platform.runtime.app),
            base_url="http://replica",
            timeout=30,
        )

    async def close(self) -> None:
        self.listener.stop()
        await self.task
        await self.http.aclose()
        for close in reversed(self.platform.runtime.closers):
            await close()


async def until(probe: Any, timeout_s: float = 20) -> Any:
    for _ in range(int(timeout_s / 0.05)):
        value = await probe()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met")


@pytest.fixture(scope="module")
async def replicas() -> AsyncIterator[tuple[Replica, Replica]]:
    a, b = Replica(await bootstrap()), Replica(await bootstrap())

    async def both_listening() -> bool:
        return a.listener.waiters.listening and b.listener.waiters.listening

    await until(both_listening)
    yield a, b
    await a.close()
    await b.close()


@pytest.fixture(scope="module")
async def api_key(replicas: tuple[Replica, Replica]) -> str:
    response = await replicas[0].http.post(
        "/admin/merchants",
        json={"name": "Waiting Shop"},
        headers={"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["api_key"])


def payment_body(order_id: str, capture: bool = False) -> dict[str, Any]:
    return {
        "amount": 1000,
        "currency": "TRY",
        "capture": capture,
        "order_id": order_id,
        "card": {"number": "5555555555554444", "exp_month": 12, "exp_year": 2031, "cvc": "123"},
    }


async def payment_id_of(replica: Replica, order_id: str) -> uuid.UUID:
    async def probe() -> uuid.UUID | None:
        found: uuid.UUID | None = await replica.platform.pool.fetchval(
            "SELECT id FROM payments WHERE order_id = $1", order_id
        )
        return found

    found: uuid.UUID = await until(probe)
    return found


async def consume_on(replica: Replica, topic: str, payload: Any) -> None:
    """What the replica's consumer does with an outcome event, in its own transaction."""
    async with unit_of_work(replica.platform.pool) as uow:
        await OUTCOME_HANDLERS(uow, topic, outcome(topic, payload))


async def merchant_of(replica: Replica, payment_id: uuid.UUID) -> str:
    merchant: str = await replica.platform.pool.fetchval(
        "SELECT merchant_id FROM payments WHERE id = $1", payment_id
    )
    return merchant


async def test_an_outcome_consumed_on_one_replica_answers_a_request_waiting_on_another(
    replicas: tuple[Replica, Replica], api_key: str
) -> None:
    a, b = replicas
    order_id = f"wait-{uuid.uuid4().hex[:10]}"
    headers = {
        "Authorization": f"Bearer {api_key}",
        "Prefer": "wait=10",
        "Idempotency-Key": order_id,
    }
    waiting = asyncio.create_task(
        a.http.post("/v1/payments", json=payment_body(order_id), headers=headers)
    )
    payment_id = await payment_id_of(a, order_id)

    async def a_is_waiting() -> bool:
        return len(a.listener.waiters) == 1

    await until(a_is_waiting)
    assert not waiting.done()
    await consume_on(
        b, topics.PAYMENT_AUTHORIZED, authorized(payment_id, await merchant_of(a, payment_id))
    )

    response = await waiting
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "authorized"
    assert response.json()["auth_code"] == "A1B2C3"
    assert response.headers["Preference-Applied"] == "wait=10"
    assert len(a.listener.waiters) == 0

    replay = await b.http.post("/v1/payments", json=payment_body(order_id), headers=headers)
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == response.json()


async def test_a_decline_answers_a_waiting_sale(
    replicas: tuple[Replica, Replica], api_key: str
) -> None:
    a, b = replicas
    order_id = f"wait-{uuid.uuid4().hex[:10]}"
    headers = {"Authorization": f"Bearer {api_key}", "Prefer": "wait=10"}
    waiting = asyncio.create_task(
        b.http.post("/v1/payments", json=payment_body(order_id, capture=True), headers=headers)
    )
    payment_id = await payment_id_of(b, order_id)
    declined = PaymentDeclined(
        payment_id=payment_id,
        merchant_id=await merchant_of(b, payment_id),
        amount=1000,
        currency="TRY",
        response_code="05",
        reason="do not honour",
        declined_by="issuer",
    )
    await consume_on(a, topics.PAYMENT_DECLINED, declined)
    response = await waiting
    assert response.status_code == 201
    assert response.json()["status"] == "declined"


async def test_without_an_outcome_the_wait_ends_in_202(
    replicas: tuple[Replica, Replica], api_key: str
) -> None:
    a, _ = replicas
    response = await a.http.post(
        "/v1/payments",
        json=payment_body(f"wait-{uuid.uuid4().hex[:10]}"),
        headers={"Authorization": f"Bearer {api_key}", "Prefer": "wait=1"},
    )
    assert response.status_code == 202
    assert response.json()["status"] == "pending"
    assert response.headers["Preference-Applied"] == "wait=1"
    assert len(a.listener.waiters) == 0


async def test_without_prefer_nothing_waits(
    replicas: tuple[Replica, Replica], api_key: str
) -> None:
    a, _ = replicas
    response = await a.http.post(
        "/v1/payments",
        json=payment_body(f"wait-{uuid.uuid4().hex[:10]}"),
        headers={"Authorization": f"Bearer {api_key}"},
    )
    assert response.status_code == 202
    assert "Preference-Applied" not in response.headers


async def test_the_listener_reconnects_after_its_connection_is_killed(
    replicas: tuple[Replica, Replica], api_key: str
) -> None:
    a, b = replicas
    before = a.listener.connections
    killed = await b.platform.pool.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
        APPLICATION_NAME,
    )
    assert killed >= 2  # both replicas' listeners

    async def reconnected() -> bool:
        return a.listener.connections > before and a.listener.waiters.listening

    await until(reconnected)
    order_id = f"wait-{uuid.uuid4().hex[:10]}"
    waiting = asyncio.create_task(
        a.http.post(
            "/v1/payments",
            json=payment_body(order_id),
            headers={"Authorization": f"Bearer {api_key}", "Prefer": "wait=10"},
        )
    )
    payment_id = await payment_id_of(a, order_id)
    await consume_on(
        b, topics.PAYMENT_AUTHORIZED, authorized(payment_id, await merchant_of(a, payment_id))
    )
    response = await waiting
    assert response.status_code == 201
    assert response.json()["status"] == "authorized"
