"""The whole flow on real Kafka and PostgreSQL: intake → fraud → authorization →
settlement → notification, with the five services running as separate processes."""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from sanalpos_common.crypto.card import luhn_check_digit
from tests.integration.canary import fresh_number
from tests.integration.conftest import DEMO_KEY, new_merchant
from tests.integration.support import (
    ServiceProcess,
    WebhookReceiver,
    eventually,
    pg_dump,
    settles_when_its_batch_closes,
)


def approving_card() -> str:
    """A fresh approving number per payment: fraud's per-card velocity outlives a test run."""
    return fresh_number("4111")


def payment_body(card: str, amount: int = 12_500, **overrides: Any) -> dict[str, Any]:
    body = {
        "amount": amount,
        "currency": "TRY",
        "capture": True,
        "installments": 1,
        "order_id": f"order-{uuid.uuid4().hex[:8]}",
        "card": {"number": card, "exp_month": 12, "exp_year": 2031, "cvc": "123"},
    }
    body.update(overrides)
    return body


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def status_reaches(
    intake: httpx.AsyncClient, key: str, payment_id: str, wanted: set[str]
) -> dict[str, Any]:
    last: list[str | None] = [None]

    async def probe() -> dict[str, Any] | None:
        response = await intake.get(f"/v1/payments/{payment_id}", headers=auth(key))
        payment = response.json()
        last[0] = payment.get("status")
        return payment if payment.get("status") in wanted else None

    try:
        return await eventually(probe, timeout_s=45)
    except AssertionError as timed_out:
        raise AssertionError(f"{payment_id} stuck in {last[0]}, wanted {wanted}") from timed_out


async def test_approved_sale_is_captured_settled_in_balance_and_webhooked(
    intake: httpx.AsyncClient,
    services: dict[str, ServiceProcess],
    merchant: dict[str, Any],
    webhooks: WebhookReceiver,
    databases: dict[str, asyncpg.Pool],
) -> None:
    context = {
        "customer_ip": "203.0.113.7",
        "merchant_category_code": "5411",
        "billing_country": "TR",
    }
    response = await intake.post(
        "/v1/payments",
        json=payment_body(approving_card(), context=context),
        headers=auth(merchant["api_key"]),
    )
    assert response.status_code == 202, response.text
    payment_id = response.json()["id"]
    assert response.json()["status"] == "pending"

    payment = await settles_when_its_batch_closes(intake, services, merchant, payment_id)
    assert payment["auth_code"] and payment["response_code"] == "00"
    assert payment["fee_amount"] + payment["net_amount"] == 12_500
    assert {e["type"] for e in payment["events"]} >= {
        "payment.initiated",
        "payment.authorized",
        "payment.captured",
        "payment.settled",
    }

    entries = await databases["settlement"].fetch(
        "SELECT e.direction, e.amount, e.currency FROM ledger_entries e "
        "JOIN ledger_transactions t ON t.id = e.transaction_id WHERE t.payment_id = $1",
        uuid.UUID(payment_id),
    )
    assert entries, "no ledger entries for the payment"
    debits = sum(e["amount"] for e in entries if e["direction"] == "debit")
    credits = sum(e["amount"] for e in entries if e["direction"] == "credit")
    assert debits == credits == 12_500

    hooks = await eventually(
        lambda: _async(
            webhooks.for_payment(payment_id) if len(webhooks.for_payment(payment_id)) >= 3 else None
        ),
        timeout_s=30,
    )
    verifier = Webhook(merchant["webhook_secret"])
    data_by_type = {}
    for hook, body in hooks:
        verifier.verify(hook.body, hook.headers)  # raises on a bad signature
        data_by_type[body["type"]] = body["data"]
    # The public events of a sale: authorized and captured at once, captured, settled.
    assert set(data_by_type) >= {"payment.succeeded", "payment.captured", "payment.settled"}
    assert data_by_type["payment.succeeded"]["auth_code"] == payment["auth_code"]
    assert data_by_type["payment.captured"]["amount"] == 12_500
    assert data_by_type["payment.settled"]["net_amount"] == payment["net_amount"]
    tampered = hooks[0][0]
    with pytest.raises(WebhookVerificationError):
        verifier.verify(tampered.body + b" ", tampered.headers)


async def _async(value: Any) -> Any:
    return value


async def test_insufficient_funds_is_declined_with_code_and_no_ledger_entry(
    intake: httpx.AsyncClient, merchant: dict[str, Any], databases: dict[str, asyncpg.Pool]
) -> None:
    # Over the simulator's 10.00 limit for this range, and small: a large amount at night is
    # what fraud's model sends to review, which would keep the issuer from answering.
    response = await intake.post(
        "/v1/payments",
        json=payment_body(fresh_number("40000099"), amount=2_500),
        headers=auth(merchant["api_key"]),
    )
    assert response.status_code == 202, response.text
    payment_id = response.json()["id"]
    payment = await status_reaches(
        intake, merchant["api_key"], payment_id, {"declined", "captured", "settled"}
    )
    assert payment["status"] == "declined"
    assert payment["response_code"] == "51"
    assert payment["decline_reason"] == "insufficient funds"
    ledger_rows = await databases["settlement"].fetchval(
        "SELECT count(*) FROM ledger_transactions WHERE payment_id = $1", uuid.UUID(payment_id)
    )
    assert ledger_rows == 0


async def test_expired_card_is_refused_at_intake_and_nothing_is_emitted(
    intake: httpx.AsyncClient, merchant: dict[str, Any], databases: dict[str, asyncpg.Pool]
) -> None:
    outbox_before = await databases["intake"].fetchval("SELECT count(*) FROM outbox")
    card = approving_card()
    body = payment_body(card)
    body["card"] = {**body["card"], "exp_month": 1, "exp_year": 2021}
    response = await intake.post("/v1/payments", json=body, headers=auth(merchant["api_key"]))
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 422
    assert [e["field"] for e in problem["errors"]] == ["card.exp_year"]
    assert card not in response.text
    assert await databases["intake"].fetchval("SELECT count(*) FROM outbox") == outbox_before
    assert (
        await databases["intake"].fetchval(
            "SELECT count(*) FROM payments WHERE order_id = $1", body["order_id"]
        )
        == 0
    )


async def test_merchant_cannot_read_another_merchants_payment(
    intake: httpx.AsyncClient, merchant: dict[str, Any]
) -> None:
    response = await intake.post(
        "/v1/payments", json=payment_body(approving_card()), headers=auth(merchant["api_key"])
    )
    payment_id = response.json()["id"]
    other = await new_merchant(intake, "Another Shop")
    foreign = await intake.get(f"/v1/payments/{payment_id}", headers=auth(other["api_key"]))
    assert foreign.status_code == 404
    assert payment_id not in foreign.text or foreign.json()["status"] == 404
    demo = await intake.get(f"/v1/payments/{payment_id}", headers=auth(DEMO_KEY))
    assert demo.status_code == 404
    own = await intake.get(f"/v1/payments/{payment_id}", headers=auth(merchant["api_key"]))
    assert own.status_code == 200
    unauthenticated = await intake.get(f"/v1/payments/{payment_id}")
    assert unauthenticated.status_code == 401


async def test_no_database_holds_card_number_or_security_code_in_clear(
    intake: httpx.AsyncClient,
    services: dict[str, ServiceProcess],
    merchant: dict[str, Any],
    endpoints: dict[str, str],
) -> None:
    # Fresh every run: a fixed number would trip fraud's per-card velocity across runs.
    partial = "40000566" + f"{uuid.uuid4().int % 10**7:07d}"
    canary_card = partial + luhn_check_digit(partial)
    canary_cvc = "9317"
    body = payment_body(canary_card)
    body["card"]["cvc"] = canary_cvc
    response = await intake.post("/v1/payments", json=body, headers=auth(merchant["api_key"]))
    assert response.status_code == 202
    payment_id = response.json()["id"]
    await settles_when_its_batch_closes(intake, services, merchant, payment_id)

    forms = {
        canary_card,
        " ".join(canary_card[i : i + 4] for i in range(0, 16, 4)),
        base64.b64encode(canary_card.encode()).decode(),
    }
    for service in ("intake", "fraud", "authorization", "settlement", "notification"):
        dump = pg_dump(endpoints[f"{service.upper()}_DATABASE_URL"])
        assert payment_id in dump, (
            f"the {service} dump does not hold the payment: scan proves nothing"
        )
        for form in forms:
            assert form not in dump, f"card number found in clear in the {service} database"
        standalone_cvc = re.compile(rf"(?<![0-9A-Za-z]){canary_cvc}(?![0-9A-Za-z])")
        for line in dump.splitlines():
            if payment_id in line:
                # Four digits occur by chance inside hex digests and ciphertexts; a code
                # standing on its own next to its payment is what would be a leak.
                assert not standalone_cvc.search(line), (
                    f"security code next to its payment in {service}"
                )
