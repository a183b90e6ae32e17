"""Capture, void, refunds, fraud reports and the read model, in-process against the real
intake database (the outcome events authorization would send are fed to `OUTCOME_HANDLERS`;
the commands intake sends are read back from its outbox)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from sanalpos_common import topics
from sanalpos_common.schemas.codec import decode
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import (
    PaymentOperation,
    PaymentOperationFailed,
    PaymentRefunded,
    PaymentSettled,
)
from sanalpos_common.settings import DEV_ADMIN_TOKEN

from .conftest import authorized, captured, deliver, feed, http_client, outcome, private_intake

CARD = {"number": "4111111111111111", "exp_month": 12, "exp_year": 2031, "cvc": "123"}
CONTEXT = {"customer_ip": "203.0.113.9", "device_id": "dev-lifecycle"}


class Intake:
    def __init__(self, client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
        self.client, self.pool = client, pool

    async def merchant(self) -> dict[str, str]:
        created = await self.client.post(
            "/admin/merchants",
            json={"name": "Lifecycle Shop"},
            headers={"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"},
        )
        assert created.status_code == 201, created.text
        body = created.json()
        return {"Authorization": f"Bearer {body['api_key']}", "merchant_id": body["id"]}

    async def payment(self, auth: dict[str, str], amount: int = 1000, capture: bool = False) -> str:
        response = await self.client.post(
            "/v1/payments",
            json={
                "amount": amount,
                "currency": "TRY",
                "card": CARD,
                "capture": capture,
                "context": CONTEXT,
            },
            headers=headers(auth),
        )
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    async def feed(self, topic: str, payload: Any) -> Envelope[Any]:
        return await feed(self.pool, topic, payload)

    async def deliver(self, topic: str, envelope: Envelope[Any]) -> None:
        await deliver(self.pool, topic, envelope)

    async def commands(self, topic: str, payment_id: str) -> list[Any]:
        rows = await self.pool.fetch(
            "SELECT payload FROM outbox WHERE topic = $1 AND message_key = $2 ORDER BY id",
            topic,
            payment_id,
        )
        return [decode(topic, bytes(r["payload"])).payload for r in rows]

    async def get(self, auth: dict[str, str], payment_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/v1/payments/{payment_id}", headers=headers(auth))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def headers(auth: dict[str, str], key: str | None = None) -> dict[str, str]:
    out = {"Authorization": auth["Authorization"]}
    if key is not None:
        out["Idempotency-Key"] = key
    return out


@pytest.fixture(scope="module")
async def intake() -> AsyncIterator[Intake]:
    async with private_intake() as platform, http_client(platform) as client:
        yield Intake(client, platform.pool)


def refunded(payment_id: str, merchant_id: str, refund_id: str, amount: int) -> PaymentRefunded:
    return PaymentRefunded(
        refund_id=uuid.UUID(refund_id),
        payment_id=uuid.UUID(payment_id),
        merchant_id=merchant_id,
        amount=amount,
        currency="TRY",
        reason="returned",
    )


async def captured_preauth(intake: Intake, auth: dict[str, str], amount: int) -> str:
    """A pre-authorization of 1000, captured for `amount` (through the API and its events)."""
    payment_id = await intake.payment(auth)
    merchant = auth["merchant_id"]
    await intake.feed(topics.PAYMENT_AUTHORIZED, authorized(payment_id, merchant, 1000, False))
    response = await intake.client.post(
        f"/v1/payments/{payment_id}/capture", json={"amount": amount}, headers=headers(auth)
    )
    assert response.status_code == 202, response.text
    await intake.feed(topics.PAYMENT_CAPTURED, captured(payment_id, merchant, amount))
    return payment_id


async def test_capture_part_of_a_preauth_emits_one_command(intake: Intake) -> None:
    auth = await intake.merchant()
    payment_id = await intake.payment(auth)
    url = f"/v1/payments/{payment_id}/capture"

    early = await intake.client.post(url, json={"amount": 700}, headers=headers(auth))
    assert early.status_code == 409
    assert early.json()["current_state"] == "pending"
    assert early.json()["type"].endswith("/payment-state-conflict")

    await intake.feed(
        topics.PAYMENT_AUTHORIZED, authorized(payment_id, auth["merchant_id"], 1000, False)
    )
    too_much = await intake.client.post(url, json={"amount": 1001}, headers=headers(auth))
    assert too_much.status_code == 422
    assert [e["field"] for e in too_much.json()["errors"]] == ["amount"]

    accepted = await intake.client.post(url, json={"amount": 700}, headers=headers(auth))
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["status"] == "authorized"
    assert accepted.json()["pending_operation"] == "capture"
    again = await intake.client.post(url, json={"amount": 700}, headers=headers(auth))
    assert again.status_code == 409 and "in progress" in again.json()["detail"]

    [command] = await intake.commands(topics.CAPTURE_PAYMENT, payment_id)
    assert (command.amount, command.currency, command.merchant_id) == (
        700,
        "TRY",
        auth["merchant_id"],
    )
    await intake.feed(topics.PAYMENT_CAPTURED, captured(payment_id, auth["merchant_id"], 700))
    view = await intake.get(auth, payment_id)
    assert (view["status"], view["captured_amount"], view["pending_operation"]) == (
        "captured",
        700,
        None,
    )
    types = [e["type"] for e in view["events"]]
    assert {"payment.initiated", "command.capture-payment", "payment.captured"} <= set(types)


async def test_a_failed_capture_lets_the_merchant_try_again(intake: Intake) -> None:
    auth = await intake.merchant()
    payment_id = await intake.payment(auth)
    merchant = auth["merchant_id"]
    await intake.feed(topics.PAYMENT_AUTHORIZED, authorized(payment_id, merchant, 1000, False))
    url = f"/v1/payments/{payment_id}/capture"
    assert (await intake.client.post(url, headers=headers(auth))).status_code == 202
    failed = PaymentOperationFailed(
        payment_id=uuid.UUID(payment_id),
        merchant_id=merchant,
        operation=PaymentOperation.CAPTURE,
        amount=1000,
        reason="issuer unavailable",
    )
    await intake.feed(topics.PAYMENT_OPERATION_FAILED, failed)
    assert (await intake.get(auth, payment_id))["pending_operation"] is None
    assert (await intake.client.post(url, headers=headers(auth))).status_code == 202
    amounts = [c.amount for c in await intake.commands(topics.CAPTURE_PAYMENT, payment_id)]
    assert amounts == [1000, 1000]  # no amount = the whole authorization


async def test_partial_refunds_up_to_the_captured_amount(intake: Intake) -> None:
    auth = await intake.merchant()
    payment_id = await captured_preauth(intake, auth, 700)
    url = f"/v1/payments/{payment_id}/refunds"
    first = await intake.client.post(
        url, json={"amount": 200, "reason": "one item back"}, headers=headers(auth)
    )
    assert first.status_code == 202, first.text
    assert first.json()["status"] == "pending"
    second = await intake.client.post(
        url, json={"amount": 500, "reason": "the rest"}, headers=headers(auth)
    )
    assert second.status_code == 202
    over = await intake.client.post(url, json={"amount": 1, "reason": "x"}, headers=headers(auth))
    assert over.status_code == 409
    assert over.json()["type"].endswith("/refund-exceeds-captured")
    assert over.json()["available_amount"] == 0

    # Authorization refuses the second: its amount is free again.
    failed = PaymentOperationFailed(
        payment_id=uuid.UUID(payment_id),
        merchant_id=auth["merchant_id"],
        operation=PaymentOperation.REFUND,
        refund_id=uuid.UUID(second.json()["id"]),
        amount=500,
        reason="issuer unavailable",
    )
    await intake.feed(topics.PAYMENT_OPERATION_FAILED, failed)
    await intake.feed(
        topics.PAYMENT_REFUNDED,
        refunded(payment_id, auth["merchant_id"], first.json()["id"], 200),
    )
    listed = (await intake.client.get(url, headers=headers(auth))).json()["data"]
    assert [(r["amount"], r["status"]) for r in listed] == [(200, "succeeded"), (500, "failed")]
    location = first.headers["Location"]
    one = await intake.client.get(location, headers=headers(auth))
    assert (one.status_code, one.json()["status"]) == (200, "succeeded")
    view = await intake.get(auth, payment_id)
    assert (view["status"], view["refunded_amount"]) == ("partially_refunded", 200)

    third = await intake.client.post(
        url, json={"amount": 500, "reason": "retry"}, headers=headers(auth)
    )
    assert third.status_code == 202
    await intake.feed(
        topics.PAYMENT_REFUNDED, refunded(payment_id, auth["merchant_id"], third.json()["id"], 500)
    )
    view = await intake.get(auth, payment_id)
    assert (view["status"], view["refunded_amount"]) == ("refunded", 700)
    assert len(view["refunds"]) == 3
    commands = await intake.commands(topics.REFUND_PAYMENT, payment_id)
    assert [c.amount for c in commands] == [200, 500, 500]


async def test_concurrent_refunds_cannot_over_refund(intake: Intake) -> None:
    auth = await intake.merchant()
    payment_id = await captured_preauth(intake, auth, 700)
    url = f"/v1/payments/{payment_id}/refunds"
    answers = await asyncio.gather(
        *(
            intake.client.post(url, json={"amount": 100, "reason": "r"}, headers=headers(auth))
            for _ in range(12)
        )
    )
    assert sorted(a.status_code for a in answers) == [202] * 7 + [409] * 5
    total = await intake.pool.fetchval(
        "SELECT SUM(amount) FROM refunds WHERE payment_id = $1", uuid.UUID(payment_id)
    )
    assert total == 700


async def test_void_before_and_after_the_cut_off(intake: Intake) -> None:
    auth = await intake.merchant()
    merchant = auth["merchant_id"]
    sale = await intake.payment(auth, capture=True)
    await intake.feed(topics.PAYMENT_AUTHORIZED, authorized(sale, merchant, 1000, True))
    await intake.feed(topics.PAYMENT_CAPTURED, captured(sale, merchant, 1000))
    voided = await intake.client.post(f"/v1/payments/{sale}/void", headers=headers(auth))
    assert voided.status_code == 202, voided.text
    assert voided.json()["pending_operation"] == "void"
    [command] = await intake.commands(topics.VOID_PAYMENT, sale)
    assert command.merchant_id == merchant

    late = await intake.payment(auth, capture=True)
    await intake.feed(topics.PAYMENT_AUTHORIZED, authorized(late, merchant, 1000, True))
    await intake.feed(topics.PAYMENT_CAPTURED, captured(late, merchant, 1000))
    # Captured yesterday: its batch has closed.
    await intake.pool.execute(
        "UPDATE payments SET captured_at = $2 WHERE id = $1",
        uuid.UUID(late),
        datetime.now(UTC) - timedelta(days=1, hours=1),
    )
    refused = await intake.client.post(f"/v1/payments/{late}/void", headers=headers(auth))
    assert refused.status_code == 409
    assert refused.json()["current_state"] == "captured"
    assert "refund" in refused.json()["detail"]
    assert await intake.commands(topics.VOID_PAYMENT, late) == []


async def test_void_follows_the_merchants_own_time_zone_and_cut_off(intake: Intake) -> None:
    """Cut-off one hour from now (Istanbul time): a capture an hour ago may be voided; with the
    cut-off an hour ago, a capture two hours ago may not (its batch closed)."""
    auth = await intake.merchant()
    now = datetime.now(UTC)
    istanbul = ZoneInfo("Europe/Istanbul")

    async def void_after(captured_ago: timedelta, cutoff_from_now: timedelta) -> int:
        sale = await intake.payment(auth, capture=True)
        await intake.feed(
            topics.PAYMENT_AUTHORIZED, authorized(sale, auth["merchant_id"], 1000, True)
        )
        await intake.feed(topics.PAYMENT_CAPTURED, captured(sale, auth["merchant_id"], 1000))
        cutoff = (now + cutoff_from_now).astimezone(istanbul).time().replace(microsecond=0)
        await intake.pool.execute(
            "UPDATE merchants SET time_zone = 'Europe/Istanbul', cutoff_time = $2 WHERE id = $1",
            auth["merchant_id"],
            cutoff,
        )
        await intake.pool.execute(
            "UPDATE payments SET captured_at = $2 WHERE id = $1",
            uuid.UUID(sale),
            now - captured_ago,
        )
        response = await intake.client.post(f"/v1/payments/{sale}/void", headers=headers(auth))
        return response.status_code

    assert await void_after(timedelta(hours=1), timedelta(hours=1)) == 202
    assert await void_after(timedelta(hours=2), -timedelta(hours=1)) == 409


async def test_fraud_report_carries_card_and_context(intake: Intake) -> None:
    auth = await intake.merchant()
    payment_id = await intake.payment(auth)
    response = await intake.client.post(
        f"/v1/payments/{payment_id}/fraud-report",
        json={"reason": "cardholder denies it"},
        headers=headers(auth),
    )
    assert response.status_code == 202, response.text
    [event] = await intake.commands(topics.FRAUD_REPORTED, payment_id)
    view = await intake.get(auth, payment_id)
    assert event.source == "merchant"
    assert (event.card_fingerprint, event.card_bin) == (
        view["card"]["fingerprint"],
        view["card"]["bin"],
    )
    assert event.context is not None and str(event.context.customer_ip) == "203.0.113.9"


async def test_another_merchants_payment_is_not_found(intake: Intake) -> None:
    owner, other = await intake.merchant(), await intake.merchant()
    payment_id = await captured_preauth(intake, owner, 500)
    refund = await intake.client.post(
        f"/v1/payments/{payment_id}/refunds",
        json={"amount": 100, "reason": "r"},
        headers=headers(owner),
    )
    refund_id = refund.json()["id"]
    calls = [
        ("POST", "capture", {"amount": 1}),
        ("POST", "void", None),
        ("POST", "refunds", {"amount": 1, "reason": "x"}),
        ("GET", "refunds", None),
        ("GET", f"refunds/{refund_id}", None),
        ("POST", "fraud-report", {"reason": "x"}),
    ]
    for method, action, body in calls:
        response = await intake.client.request(
            method, f"/v1/payments/{payment_id}/{action}", json=body, headers=headers(other)
        )
        assert response.status_code == 404, (action, response.text)
        assert response.json()["type"].endswith("/not-found")
    unknown = uuid.uuid4()
    missing = await intake.client.post(f"/v1/payments/{unknown}/void", headers=headers(owner))
    assert missing.status_code == 404


async def test_read_model_under_disorder_with_duplicates(intake: Intake) -> None:
    """Events of a pre-auth's whole life delivered newest first, each twice (the same
    message, then a producer retry of it), leave the right status and a clean timeline."""
    auth = await intake.merchant()
    merchant = auth["merchant_id"]
    payment_id = await intake.payment(auth)
    pid = uuid.UUID(payment_id)
    r1, r2 = str(uuid.uuid4()), str(uuid.uuid4())
    settled = PaymentSettled(
        payment_id=pid,
        merchant_id=merchant,
        gross_amount=700,
        fee_amount=14,
        net_amount=686,
        currency="TRY",
        ledger_transaction_id=uuid.uuid4(),
    )
    events = [
        (topics.PAYMENT_AUTHORIZED, authorized(payment_id, merchant, 1000, False)),
        (topics.PAYMENT_CAPTURED, captured(payment_id, merchant, 700)),
        (topics.PAYMENT_SETTLED, settled),
        (topics.PAYMENT_REFUNDED, refunded(payment_id, merchant, r1, 200)),
        (topics.PAYMENT_REFUNDED, refunded(payment_id, merchant, r2, 300)),
    ]
    envelopes = [(t, outcome(t, p)) for t, p in events]
    statuses = []
    for topic, envelope in reversed(envelopes):
        await intake.deliver(topic, envelope)
        await intake.deliver(topic, envelope)
        statuses.append((await intake.get(auth, payment_id))["status"])
    assert statuses == ["partially_refunded"] * 5
    for topic, envelope in envelopes:  # and once more, in order
        await intake.deliver(topic, envelope)
    view = await intake.get(auth, payment_id)
    assert view["status"] == "partially_refunded"
    assert (view["captured_amount"], view["refunded_amount"]) == (700, 500)
    outcome_types = [e["type"] for e in view["events"] if e["type"] != "payment.initiated"]
    assert sorted(outcome_types) == sorted(
        ["payment.authorized", "payment.captured", "payment.settled"] + ["payment.refunded"] * 2
    )
    row = await intake.pool.fetchrow("SELECT * FROM payments WHERE id = $1", pid)
    assert row is not None
    assert (row["authorized"], row["settled"], row["fee_amount"]) == (True, True, 14)


async def test_risk_context_is_kept_with_the_payment(intake: Intake) -> None:
    auth = await intake.merchant()
    payment_id = await intake.payment(auth)
    stored = await intake.pool.fetchval(
        "SELECT risk_context FROM payments WHERE id = $1", uuid.UUID(payment_id)
    )
    assert json.loads(stored) == CONTEXT
