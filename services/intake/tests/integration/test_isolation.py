"""Isolation between merchants, built from the OpenAPI document: for every /v1 operation with a
path parameter, merchant B calling it with merchant A's resource id gets 404 (never 403, never
A's data) and A's resource is left as it was. A guard fails when an operation is neither in the
matrix nor exempted with a reason, so a new endpoint cannot escape it.

In-process against the real intake database; the outcome events authorization would send are
fed to the read model directly."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from pypdf import PdfReader

from intake.entrypoints.http.app import build_app
from sanalpos_common import topics
from sanalpos_common.schemas.codec import new_envelope
from sanalpos_common.schemas.events import (
    BatchClosed,
    DisputeStatus,
    DisputeUpdated,
    LedgerDaySummarized,
    PayoutLine,
    PayoutStatus,
    PayoutUpdated,
)
from sanalpos_common.settings import DEV_ADMIN_TOKEN

from .conftest import authorized, captured, deliver, feed, http_client, running_intake

DOCUMENT = build_app().openapi()
SCHEMAS: dict[str, Any] = DOCUMENT["components"]["schemas"]
CARD = {"number": "4111111111111111", "exp_month": 12, "exp_year": 2031, "cvc": "123"}
ADMIN = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
PAYOUT_IBAN = "TR950006100000000000039595"

# Path parameters of merchant-owned resources, filled with merchant A's resources.
OWNED_PARAMETERS = frozenset(
    {"payment_id", "token", "refund_id", "session_id", "account_id", "payout_id", "dispute_id"}
)
# Operations whose path parameter names no merchant's resource, and why.
EXEMPT: dict[str, str] = {
    "GET /v1/bins/{bin}": "BIN reference data shared by every merchant; the answer carries the "
    "caller's own installment terms (checked in test_bin_lookup_shows_the_callers_own_terms)",
    "GET /v1/statements/{month}": "a month, not a resource: each merchant's statement of it is "
    "built from its own ledger days (checked in test_statements_are_the_callers_own)",
}
# Collections of merchant-owned resources (no path parameter), with the query each needs: B
# must not see A's resources there.
COLLECTIONS: dict[str, dict[str, str]] = {
    "GET /v1/payments": {},
    "GET /v1/cards": {},
    "GET /v1/payments/export": {},
    "GET /v1/reports/summary": {
        "from": (date.today() - timedelta(days=30)).isoformat(),
        "to": (date.today() + timedelta(days=2)).isoformat(),
        "group_by": "status",
    },
    "GET /v1/balance": {},
    "GET /v1/settlement-batches": {},
    "GET /v1/checkout/sessions": {},
    "GET /v1/payout-accounts": {},
    "GET /v1/payouts": {},
    "GET /v1/payouts.csv": {},
    "GET /v1/disputes": {},
}
NOT_COLLECTIONS: dict[str, str] = {
    "GET /v1/merchant": "the caller's own record",
    "GET /v1/encryption-keys/current": "public key, no merchant data",
    "GET /v1/checkout/signing-keys": "public keys, no merchant data",
}


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path, item in DOCUMENT["paths"].items():
        if path.startswith("/v1/"):
            for method, operation in item.items():
                found.append((method.upper(), path, operation))
    return found


def path_parameters(path: str) -> list[str]:
    return re.findall(r"{(\w+)}", path)


def sample(schema: dict[str, Any]) -> Any:
    """A small valid value from a JSON schema: its example, else its default, else the least
    value of its type."""
    if "$ref" in schema:
        return sample(SCHEMAS[schema["$ref"].rsplit("/", 1)[-1]])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"]
            return sample(options[0])
    if schema.get("examples"):
        return schema["examples"][0]
    if "example" in schema:
        return schema["example"]
    if "default" in schema:
        return schema["default"]
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: sample(props[name]) for name in schema.get("required", [])}
    if kind == "integer":
        return max(schema.get("minimum", 1), schema.get("exclusiveMinimum", 0) + 1)
    if kind == "string":
        return "x" * max(1, schema.get("minLength", 1))
    if kind == "boolean":
        return False
    if kind == "array":
        return []
    return None


def request_body(operation: dict[str, Any]) -> Any:
    content = operation.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema")
    return None if schema is None else sample(schema)


@dataclass
class World:
    client: httpx.AsyncClient
    pool: asyncpg.Pool
    a: dict[str, str]
    b: dict[str, str]
    resources: dict[str, str]


async def new_merchant(client: httpx.AsyncClient, **fields: Any) -> dict[str, str]:
    created = await client.post("/admin/merchants", json=fields, headers=ADMIN)
    assert created.status_code == 201, created.text
    body = created.json()
    return {"Authorization": f"Bearer {body['api_key']}", "id": body["id"]}


def auth(merchant: dict[str, str]) -> dict[str, str]:
    return {"Authorization": merchant["Authorization"]}


async def captured_sale(client: httpx.AsyncClient, pool: asyncpg.Pool, a: dict[str, str]) -> str:
    created = await client.post(
        "/v1/payments",
        json={"amount": 5000, "currency": "TRY", "card": CARD, "capture": True},
        headers=auth(a),
    )
    assert created.status_code == 202, created.text
    payment_id = created.json()["id"]
    sale = authorized(payment_id, a["id"], amount=5000, capture=True)
    await feed(pool, topics.PAYMENT_AUTHORIZED, sale)
    await feed(pool, topics.PAYMENT_CAPTURED, captured(payment_id, a["id"], 5000, 5000))
    return str(payment_id)


async def a_resources(
    client: httpx.AsyncClient, pool: asyncpg.Pool, a: dict[str, str]
) -> dict[str, str]:
    payment_id = await captured_sale(client, pool, a)
    refund = await client.post(
        f"/v1/payments/{payment_id}/refunds",
        json={"amount": 1000, "reason": "returned goods"},
        headers=auth(a),
    )
    assert refund.status_code in {201, 202}, refund.text
    card = await client.post("/v1/cards", json={"card": CARD}, headers=auth(a))
    assert card.status_code == 201, card.text
    session = await client.post(
        "/v1/checkout/sessions",
        json={
            "amount": 5000,
            "currency": "TRY",
            "order_id": "ORD-A",
            "success_url": "https://a.example/ok",
            "failure_url": "https://a.example/no",
        },
        headers=auth(a),
    )
    assert session.status_code == 201, session.text
    account = await client.post(
        "/v1/payout-accounts",
        json={"iban": PAYOUT_IBAN, "holder_name": "Shop A Ltd", "currency": "TRY"},
        headers=auth(a),
    )
    assert account.status_code == 201, account.text
    await ledger_day(pool, a)
    return {
        "payment_id": payment_id,
        "session_id": session.json()["id"],
        "refund_id": refund.json()["id"],
        "token": card.json()["id"],
        "batch_id": await closed_batch(pool, a),
        "account_id": account.json()["id"],
        "payout_id": await paid_payout(pool, a, account.json()["id"]),
        "dispute_id": await open_dispute(pool, a, payment_id),
    }


async def ledger_day(pool: asyncpg.Pool, a: dict[str, str]) -> None:
    """A's posting day today as settlement announces it (it has no id to look for)."""
    today = date.today()
    day = LedgerDaySummarized(
        merchant_id=a["id"],
        currency="TRY",
        day=today,
        time_zone="Europe/Istanbul",
        opening_balance=0,
        sales=5_000,
        refunds=0,
        fees=-90,
        fx=0,
        disputes=0,
        payouts=0,
        other=0,
        closing_balance=4_910,
        capture_count=1,
        reversal_count=0,
        refund_count=0,
        payout_count=0,
        version=1,
        computed_at=datetime.now(UTC),
    )
    envelope = new_envelope(topics.LEDGER_DAY, day, correlation_id=None, producer="settlement")
    await deliver(pool, topics.LEDGER_DAY, envelope)


async def open_dispute(pool: asyncpg.Pool, a: dict[str, str], payment_id: str) -> str:
    """A dispute on A's payment, as settlement announces it when the issuer raises it."""
    now = datetime.now(UTC)
    dispute = DisputeUpdated(
        dispute_id=uuid.uuid4(),
        payment_id=uuid.UUID(payment_id),
        merchant_id=a["id"],
        amount=4_000,
        currency="TRY",
        reason_code="13.1",
        reason="merchandise not received",
        status=DisputeStatus.NEEDS_RESPONSE,
        respond_by=now + timedelta(days=7),
        fee=15_000,
        held=4_000,
        created_at=now,
        updated_at=now,
        version=1,
    )
    envelope = new_envelope(
        topics.DISPUTE_UPDATED, dispute, correlation_id=dispute.payment_id, producer="settlement"
    )
    await deliver(pool, topics.DISPUTE_UPDATED, envelope)
    return str(dispute.dispute_id)


async def paid_payout(pool: asyncpg.Pool, a: dict[str, str], account_id: str) -> str:
    """A's payout (of an earlier batch) as settlement announces it once the bank paid it."""
    now = datetime.now(UTC)
    payout = PayoutUpdated(
        payout_id=uuid.uuid4(),
        merchant_id=a["id"],
        currency="TRY",
        amount=3_000,
        status=PayoutStatus.PAID,
        value_date=date.today(),
        account_id=uuid.UUID(account_id),
        iban_last4=PAYOUT_IBAN[-4:],
        lines=(
            PayoutLine(
                batch_id=uuid.uuid4(),
                batch_date=date.today() - timedelta(days=2),
                value_date=date.today(),
                amount=3_000,
            ),
        ),
        created_at=now,
        updated_at=now,
        version=2,
    )
    envelope = new_envelope(
        topics.PAYOUT_UPDATED, payout, correlation_id=payout.payout_id, producer="settlement"
    )
    await deliver(pool, topics.PAYOUT_UPDATED, envelope)
    return str(payout.payout_id)


async def closed_batch(pool: asyncpg.Pool, a: dict[str, str]) -> str:
    """A's end-of-day batch as settlement announces it: paid out the day after tomorrow."""
    batch = BatchClosed(
        batch_id=uuid.uuid4(),
        merchant_id=a["id"],
        currency="TRY",
        batch_date=date.today(),
        value_date=date.today() + timedelta(days=2),
        gross_amount=5000,
        fee_amount=90,
        refund_amount=0,
        reversal_amount=0,
        net_amount=4910,
        payment_count=1,
        refund_count=0,
        reversal_count=0,
        closed_at=datetime.now(UTC),
    )
    envelope = new_envelope(
        topics.BATCH_CLOSED, batch, correlation_id=batch.batch_id, producer="settlement"
    )
    await deliver(pool, topics.BATCH_CLOSED, envelope)
    return str(batch.batch_id)


@pytest.fixture(scope="module")
async def world() -> AsyncIterator[World]:
    async with running_intake() as platform, http_client(platform) as client:
        a = await new_merchant(client, name="Shop A", fee_plan="volume", max_installments=3)
        b = await new_merchant(client, name="Shop B")
        resources = await a_resources(client, platform.pool, a)
        yield World(client, platform.pool, a, b, resources)


def matrix() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for method, path, operation in operations()
        if path_parameters(path) and f"{method} {path}" not in EXEMPT
    ]


def test_every_operation_is_in_the_matrix_or_exempt_with_a_reason() -> None:
    """A new /v1 operation must name owned resources the matrix knows how to fill."""
    unknown = [
        f"{method} {path}: {name}"
        for method, path, _ in matrix()
        for name in path_parameters(path)
        if name not in OWNED_PARAMETERS
    ]
    assert unknown == [], "add a filler to OWNED_PARAMETERS/a_resources, or exempt it"
    listed = {f"{m} {p}" for m, p, _ in operations() if not path_parameters(p)}
    assert listed == set(COLLECTIONS) | set(NOT_COLLECTIONS) | {
        "POST /v1/payments",
        "POST /v1/cards",
        "POST /v1/webhook-endpoints",
        "POST /v1/checkout/sessions",
        "POST /v1/payout-accounts",
    }, "classify the new collection endpoint in COLLECTIONS or NOT_COLLECTIONS"
    assert set(EXEMPT) <= {f"{m} {p}" for m, p, _ in operations()}
    assert len(matrix()) >= 8


def fill(path: str, resources: dict[str, str]) -> str:
    return re.sub(r"{(\w+)}", lambda m: resources[m.group(1)], path)


async def test_another_merchants_ids_are_not_found(world: World) -> None:
    before = await world.client.get(
        f"/v1/payments/{world.resources['payment_id']}", headers=auth(world.a)
    )
    assert before.status_code == 200
    outcomes = {}
    for method, path, operation in matrix():
        response = await world.client.request(
            method,
            fill(path, world.resources),
            json=request_body(operation),
            headers=auth(world.b),
        )
        outcomes[f"{method} {path}"] = response.status_code
        if response.status_code == 404:
            text = response.text
            assert world.a["id"] not in text and "4111" not in text, (method, path, text)
    assert {op: code for op, code in outcomes.items() if code != 404} == {}

    # A's resources are untouched by B's attempts: same payment, card still there.
    after = await world.client.get(
        f"/v1/payments/{world.resources['payment_id']}", headers=auth(world.a)
    )
    unchanged = ("status", "captured_amount", "refunded_amount")
    assert {k: after.json().get(k) for k in unchanged} == {
        k: before.json().get(k) for k in unchanged
    }
    card = await world.client.get(f"/v1/cards/{world.resources['token']}", headers=auth(world.a))
    assert card.status_code == 200


async def test_the_matrix_ids_are_real_for_their_owner(world: World) -> None:
    """The control: A reading the same ids gets them (so B's 404s are about ownership)."""
    for method, path, _ in matrix():
        if method == "GET":
            response = await world.client.get(fill(path, world.resources), headers=auth(world.a))
            assert response.status_code == 200, (path, response.text)


async def test_collections_never_show_another_merchants_resources(world: World) -> None:
    for operation, query in COLLECTIONS.items():
        path = operation.split(" ", 1)[1]
        seen_by_a = await world.client.get(path, params=query, headers=auth(world.a))
        seen_by_b = await world.client.get(path, params=query, headers=auth(world.b))
        assert seen_by_a.status_code == seen_by_b.status_code == 200, (path, seen_by_b.text)
        for value in world.resources.values():
            assert value not in seen_by_b.text, (path, value)
    a_text = (await world.client.get("/v1/payments", headers=auth(world.a))).text
    assert world.resources["payment_id"] in a_text
    report = COLLECTIONS["GET /v1/reports/summary"]
    a_report = await world.client.get("/v1/reports/summary", params=report, headers=auth(world.a))
    b_report = await world.client.get("/v1/reports/summary", params=report, headers=auth(world.b))
    assert [t["payments"] for t in a_report.json()["totals"]] == [1]
    assert sum(t["payments"] for t in b_report.json()["totals"]) == 0


async def test_balance_and_batches_are_the_callers_own(world: World) -> None:
    """A's closed batch counts in A's balance and list only, even with A's batch as cursor."""
    a_balance = (await world.client.get("/v1/balance", headers=auth(world.a))).json()
    b_balance = (await world.client.get("/v1/balance", headers=auth(world.b))).json()
    assert [(x["currency"], x["pending"]) for x in a_balance["balances"]] == [("TRY", 4910)]
    assert b_balance["balances"] == []
    a_batches = (await world.client.get("/v1/settlement-batches", headers=auth(world.a))).json()
    assert [x["id"] for x in a_batches["data"]] == [world.resources["batch_id"]]
    b_page = await world.client.get(
        "/v1/settlement-batches",
        params={"cursor": world.resources["batch_id"]},
        headers=auth(world.b),
    )
    assert b_page.status_code == 200, b_page.text
    assert b_page.json()["data"] == []


async def test_payout_accounts_and_payouts_are_the_callers_own(world: World) -> None:
    a_balance = (await world.client.get("/v1/balance", headers=auth(world.a))).json()
    assert [(x["currency"], x["paid_out"]) for x in a_balance["balances"]] == [("TRY", 3_000)]
    a_payouts = (await world.client.get("/v1/payouts", headers=auth(world.a))).json()
    assert [p["id"] for p in a_payouts["data"]] == [world.resources["payout_id"]]
    b_payouts = await world.client.get(
        "/v1/payouts", params={"cursor": world.resources["payout_id"]}, headers=auth(world.b)
    )
    assert b_payouts.status_code == 200 and b_payouts.json()["data"] == []
    b_accounts = (await world.client.get("/v1/payout-accounts", headers=auth(world.b))).json()
    assert b_accounts["data"] == []
    a_account = await world.client.get(
        f"/v1/payout-accounts/{world.resources['account_id']}", headers=auth(world.a)
    )
    assert a_account.json()["is_default"] is True, "B's attempts changed nothing"


async def test_statements_are_the_callers_own(world: World) -> None:
    month = date.today().strftime("%Y-%m")
    a_view = (await world.client.get(f"/v1/statements/{month}", headers=auth(world.a))).json()
    b_view = (await world.client.get(f"/v1/statements/{month}", headers=auth(world.b))).json()
    assert [(c["currency"], c["closing_balance"]) for c in a_view["currencies"]] == [("TRY", 4_910)]
    assert b_view["currencies"] == []
    b_pdf = await world.client.get(f"/v1/statements/{month}?format=pdf", headers=auth(world.b))
    assert b_pdf.status_code == 200
    text = PdfReader(io.BytesIO(b_pdf.content)).pages[0].extract_text()
    assert world.b["id"] in text and world.a["id"] not in text and "No postings" in text


async def test_bin_lookup_shows_the_callers_own_terms(world: World) -> None:
    a = (await world.client.get("/v1/bins/41111111", headers=auth(world.a))).json()
    b = (await world.client.get("/v1/bins/41111111", headers=auth(world.b))).json()
    assert (a["fee_plan"], [o["count"] for o in a["installments"]]) == ("volume", [1, 2, 3])
    assert (b["fee_plan"], len(b["installments"])) == ("standard", 12)


async def test_own_record_is_the_callers(world: World) -> None:
    me = await world.client.get("/v1/merchant", headers=auth(world.b))
    assert me.status_code == 200 and me.json()["id"] == world.b["id"]
