"""How many statements intake sends Postgres for one sale: each is a round trip and a process
wake-up on both sides, the largest part of a payment's CPU (issue 9). The bounds are what
the code reaches today; a change that adds statements back to the hot path fails here.

Counted with asyncpg's query logger on every connection of intake's pool (BEGIN and COMMIT
are statements too); the payment goes through the HTTP API, its outcomes through the same
idempotent wrapper the consumer uses."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from intake.service_layer.consumed import CONSUMER_HANDLERS
from sanalpos_common import topics
from sanalpos_common.messaging.idempotent import idempotent
from sanalpos_common.settings import DEV_ADMIN_TOKEN
from sanalpos_common.testing import StatementLog

from .conftest import authorized, captured, http_client, outcome, private_intake

CARD = {"number": "4111111111111111", "exp_month": 12, "exp_year": 2031, "cvc": "123"}
CREATE_AT_MOST = 7
OUTCOME_AT_MOST = 5


@pytest.fixture
async def counted(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Any, StatementLog]]:
    statements = StatementLog()
    create_pool = asyncpg.create_pool

    def counting_pool(*args: Any, **kwargs: Any) -> Any:
        return create_pool(*args, **{**kwargs, "init": statements.attach})

    monkeypatch.setattr(asyncpg, "create_pool", counting_pool)
    async with private_intake() as platform:
        monkeypatch.undo()
        yield platform, statements


async def test_a_sale_costs_a_bounded_number_of_statements(
    counted: tuple[Any, StatementLog],
) -> None:
    platform, statements = counted
    async with http_client(platform) as client:
        created = await client.post(
            "/admin/merchants",
            json={"name": "Counted Shop"},
            headers={"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"},
        )
        assert created.status_code == 201, created.text
        merchant = created.json()
        auth = {"Authorization": f"Bearer {merchant['api_key']}"}

        async def sale() -> str:
            response = await client.post(
                "/v1/payments",
                json={"amount": 1000, "currency": "TRY", "card": CARD, "capture": True},
                headers={**auth, "Idempotency-Key": f"k-{uuid.uuid4()}"},
            )
            assert response.status_code == 202, response.text
            return str(response.json()["id"])

        consumer = idempotent(platform.pool, "intake-counted", CONSUMER_HANDLERS, "intake")

        async def outcomes(payment_id: str) -> tuple[list[str], list[str]]:
            await consumer(
                topics.PAYMENT_AUTHORIZED,
                outcome(
                    topics.PAYMENT_AUTHORIZED, authorized(payment_id, merchant["id"], 1000, True)
                ),
            )
            on_authorized = await statements.take()
            await consumer(
                topics.PAYMENT_CAPTURED,
                outcome(topics.PAYMENT_CAPTURED, captured(payment_id, merchant["id"], 1000)),
            )
            return on_authorized, await statements.take()

        # Warm-up: the API key is cached after its first use, and asyncpg reads a type's
        # codec once per connection.
        for _ in range(3):
            await outcomes(await sale())
        await statements.take()
        payment_id = await sale()
        create = await statements.take()
        on_authorized, on_captured = await outcomes(payment_id)

        shown = await client.get(f"/v1/payments/{payment_id}", headers=auth)
    assert shown.json()["status"] == "captured"
    timeline = [event["type"] for event in shown.json()["events"]]
    assert timeline[:1] == ["payment.initiated"] and {
        "payment.authorized",
        "payment.captured",
    } <= set(timeline)
    assert len(create) <= CREATE_AT_MOST, create
    assert len(on_authorized) <= OUTCOME_AT_MOST, on_authorized
    assert len(on_captured) <= OUTCOME_AT_MOST, on_captured
    assert any("BEGIN" in q for q in on_captured), "the query logger sees transaction control"
