"""Scale out: a second replica of every service runs beside the first, on the same broker and
databases and in the same consumer groups (intake as two worker processes on one port).
Payments sent to both intakes are each processed exactly once, and the replicas really
share the work.

Webhooks are at-least-once (docs/webhooks.md): a delivery whose answer came too late is sent
again with the same event id and `webhook-id`, and receivers drop the repeat. So "once" for
webhooks means one event per payment and type, however many deliveries carried it; a second
event (a new id) would be the failure. Counting raw deliveries made this test fail in full
runs, where the box is loaded and the receiver slow.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from tests.integration.conftest import new_merchant
from tests.integration.support import (
    MailSink,
    ServiceProcess,
    WebhookReceiver,
    eventually,
    start_services,
    stop_services,
    wait_ready,
)
from tests.integration.support import run_log_dir as log_dir_of_the_run
from tests.integration.test_end_to_end import approving_card, auth, payment_body

WAVE = 20
MAX_WAVES = 8
# A sale's public webhooks: payment.succeeded and payment.captured (settled comes later).
SALE_WEBHOOKS = ("payment.succeeded", "payment.captured")


@pytest.fixture(scope="module")
def replicas(
    services: dict[str, ServiceProcess],
    endpoints: dict[str, str],
    mail: MailSink,
    monkeypatch_module: Any,
) -> Iterator[dict[str, ServiceProcess]]:
    monkeypatch_module.setenv("INTAKE_WORKERS", "2")
    second = start_services({**endpoints, **mail.settings()}, log_dir_of_the_run() / "replicas")
    try:
        wait_ready(second)
        yield second
    finally:
        stop_services(second)


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
async def second_intake(replicas: dict[str, ServiceProcess]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=replicas["intake"].url, timeout=10) as client:
        yield client


async def test_every_payment_is_processed_exactly_once_across_replicas(
    intake: httpx.AsyncClient,
    second_intake: httpx.AsyncClient,
    replicas: dict[str, ServiceProcess],
    merchant: dict[str, Any],
    webhooks: WebhookReceiver,
    databases: dict[str, asyncpg.Pool],
) -> None:
    # Its own merchant with exactly one endpoint (other tests add endpoints to the shared one).
    assert webhooks.server is not None  # started by the `merchant` fixture
    own = await new_merchant(intake, "Replica Shop")
    key = own["api_key"]
    hooks_url = f"http://127.0.0.1:{webhooks.server.server_address[1]}/replicas"
    registered = await intake.post(
        "/v1/webhook-endpoints", json={"url": hooks_url}, headers=auth(key)
    )
    assert registered.status_code == 201, registered.text

    async def endpoint_known() -> bool:
        return await databases["notification"].fetchval(
            "SELECT count(*) = 1 FROM webhook_endpoints WHERE merchant_id = $1", own["id"]
        )

    await eventually(endpoint_known, timeout_s=30)

    async def pay(client: httpx.AsyncClient) -> str:
        response = await client.post(
            "/v1/payments", json=payment_body(approving_card()), headers=auth(key)
        )
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    # Payments go in waves until every second replica has done some of the work: a replica
    # that has just joined gets its partitions only once its group has rebalanced.
    clients = [intake, second_intake]
    ids: list[str] = []
    for _ in range(MAX_WAVES):
        ids += await asyncio.gather(*(pay(clients[i % 2]) for i in range(WAVE)))
        if not await _second_replicas_idle(replicas):
            break
        await asyncio.sleep(3)
    sent = len(ids)

    async def all_captured() -> bool:
        rows = await databases["intake"].fetch(
            "SELECT status FROM payments WHERE id = ANY($1::uuid[])", ids
        )
        return len(rows) == sent and all(r["status"] == "captured" for r in rows)

    await eventually(all_captured, timeout_s=90)

    authorizations = await databases["authorization"].fetch(
        "SELECT payment_id, count(*) AS n FROM authorizations "
        "WHERE payment_id = ANY($1::uuid[]) GROUP BY payment_id",
        ids,
    )
    assert len(authorizations) == sent and {r["n"] for r in authorizations} == {1}

    async def ledger_complete() -> list[Any] | None:
        rows = await databases["settlement"].fetch(
            "SELECT payment_id, kind, count(*) AS n FROM ledger_transactions "
            "WHERE payment_id = ANY($1::uuid[]) GROUP BY payment_id, kind",
            ids,
        )
        return rows if len({r["payment_id"] for r in rows}) == sent else None

    ledger = await eventually(ledger_complete, timeout_s=60)
    assert {r["n"] for r in ledger} == {1}, "a ledger transaction was written twice"

    async def webhooks_delivered() -> bool:
        return all(len(webhooks.for_payment(p)) >= len(SALE_WEBHOOKS) for p in ids)

    await eventually(webhooks_delivered, timeout_s=60)
    await asyncio.sleep(2)  # a second event would arrive right behind
    deliveries = 0
    for payment_id in ids:
        received = webhooks.for_payment(payment_id)
        deliveries += len(received)
        events: dict[str, set[str]] = {}
        for hook, body in received:
            events.setdefault(body["type"], set()).add(body["id"])
            assert hook.headers["webhook-id"], "every delivery names its message"
        assert all(len(events.get(kind, ())) == 1 for kind in SALE_WEBHOOKS), (payment_id, events)
        ids_per_delivery = Counter(hook.headers["webhook-id"] for hook, _ in received)
        assert len(ids_per_delivery) == sum(len(v) for v in events.values()), (
            "a repeat carries the same webhook-id as the first delivery"
        )
    print(f"\n{deliveries} webhook deliveries for {sent * len(SALE_WEBHOOKS)} events")

    fraud_decisions = await databases["fraud"].fetchval(
        "SELECT count(*) FROM fraud_decisions WHERE payment_id = ANY($1::uuid[])", ids
    )
    assert fraud_decisions == sent

    # The second replicas did part of the work (each consumer group split its partitions).
    async def shared() -> bool:
        return not await _second_replicas_idle(replicas)

    try:
        await eventually(shared, timeout_s=30)
    except AssertionError:
        idle = await _second_replicas_idle(replicas)
        raise AssertionError(f"idle second replicas: {idle}") from None
    assert len(_children(replicas["intake"].process.pid)) == 2, "intake runs two workers"


async def _second_replicas_idle(replicas: dict[str, ServiceProcess]) -> list[str]:
    idle = [
        name
        for name in ("authorization", "settlement", "notification")
        if await _processed(replicas[name].url) <= 0
    ]
    if await _processed(replicas["fraud"].url, "sanalpos_fraud_decisions_total{") <= 0:
        idle.append("fraud")
    return idle


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(child) for child in f.read().split()]


async def _processed(url: str, series: str = "sanalpos_messages_processed_total{") -> float:
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"{url}/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(series)
    )
