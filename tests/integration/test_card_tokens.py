"""Stored cards (tokens) through the real system: tokenize, list, pay with a token (customer-
and merchant-initiated), save a card while paying, delete (the ciphertext is destroyed), and
tokens that belong to one merchant only."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import asyncpg
import httpx

from tests.integration.canary import fresh_number, grouped
from tests.integration.conftest import new_merchant
from tests.integration.support import ServiceProcess, statuses_with_batches_closing
from tests.integration.test_end_to_end import auth, payment_body

CLEAR = fresh_number("400005")
CARD = {"number": grouped(CLEAR, " "), "exp_month": 11, "exp_year": 2032, "cvc": "741"}


async def stored_card(intake: httpx.AsyncClient, key: str, **card: Any) -> dict[str, Any]:
    response = await intake.post("/v1/cards", json={"card": {**CARD, **card}}, headers=auth(key))
    assert response.status_code == 201, response.text
    return response.json()


def token_payment(token: str, **fields: Any) -> dict[str, Any]:
    body = payment_body(CLEAR, **fields)
    del body["card"]
    return {**body, "card_token": token}


async def test_tokenize_read_list_and_pay_merchant_and_customer_initiated(
    intake: httpx.AsyncClient,
    services: dict[str, ServiceProcess],
    merchant: dict[str, Any],
    databases: dict[str, asyncpg.Pool],
) -> None:
    key = merchant["api_key"]
    card = await stored_card(intake, key)
    token = card["id"]
    assert token.startswith("tok_") and card["object"] == "card"
    assert card["masked_number"] == f"400005******{CLEAR[-4:]}" and card["last4"] == CLEAR[-4:]
    assert card["bin"] == "400005" and card["brand"] == "visa"
    assert (card["exp_month"], card["exp_year"]) == (11, 2032)
    assert "cvc" not in card
    # The code must not stand alone; the random token id may hold the digits by chance.
    assert not re.search(
        r"(?<![0-9A-Za-z])741(?![0-9A-Za-z])", json.dumps({**card, "fingerprint": ""})
    )

    read = await intake.get(f"/v1/cards/{token}", headers=auth(key))
    assert read.status_code == 200 and read.json() == card

    merchant_initiated = await intake.post(
        "/v1/payments", json=token_payment(token, initiated_by="merchant"), headers=auth(key)
    )
    assert merchant_initiated.status_code == 202, merchant_initiated.text
    paid = merchant_initiated.json()
    assert paid["card_token"] == token and paid["initiated_by"] == "merchant"
    assert (
        paid["card"]["last4"] == CLEAR[-4:] and paid["card"]["fingerprint"] == card["fingerprint"]
    )

    customer_initiated = await intake.post(
        "/v1/payments",
        json=token_payment(token, cvc="741", capture=False),
        headers=auth(key),
    )
    assert customer_initiated.status_code == 202, customer_initiated.text

    reached = await statuses_with_batches_closing(
        intake,
        services["settlement"].url,
        merchant,
        {paid["id"]: {"settled"}, customer_initiated.json()["id"]: {"authorized"}},
    )
    assert reached[paid["id"]]["status"] == "settled", reached
    assert reached[customer_initiated.json()["id"]]["status"] == "authorized", reached

    # On the wire the token's own ciphertext travels, marked as token-scoped; the security
    # code (customer-initiated only) is encrypted and bound to the payment.
    events = {
        row["message_key"]: json.loads(row["payload"])["payload"]["card"]
        for row in await databases["intake"].fetch(
            "SELECT message_key, payload FROM outbox WHERE topic = 'payment.initiated.v1' "
            "AND message_key = ANY($1::text[])",
            [paid["id"], customer_initiated.json()["id"]],
        )
    }
    stored = await databases["intake"].fetchval(
        "SELECT pan_ciphertext FROM card_tokens WHERE token = $1", token
    )
    for payment_id, has_cvc in ((paid["id"], False), (customer_initiated.json()["id"], True)):
        wire = events[payment_id]
        assert wire["aad_scope"] == "token" and wire["token_id"] == token
        assert wire["pan_ciphertext"] == stored
        assert (wire["cvc_ciphertext"] is not None) is has_cvc

    listing = await intake.get("/v1/cards", headers=auth(key))
    assert listing.status_code == 200
    assert token in [c["id"] for c in listing.json()["data"]]


async def test_save_card_while_paying_then_reuse_the_token(
    intake: httpx.AsyncClient, services: dict[str, ServiceProcess], merchant: dict[str, Any]
) -> None:
    key = merchant["api_key"]
    mastercard = fresh_number("555555")
    first = await intake.post(
        "/v1/payments",
        json=payment_body(mastercard, save_card=True),
        headers={**auth(key), "Idempotency-Key": f"save-{uuid.uuid4()}"},
    )
    assert first.status_code == 202, first.text
    token = first.json()["card_token"]
    assert token and token.startswith("tok_")
    card = (await intake.get(f"/v1/cards/{token}", headers=auth(key))).json()
    assert card["masked_number"] == f"555555******{mastercard[-4:]}"
    assert card["brand"] == "mastercard"

    again = await intake.post(
        "/v1/payments", json=token_payment(token, initiated_by="merchant"), headers=auth(key)
    )
    assert again.status_code == 202, again.text
    reached = await statuses_with_batches_closing(
        intake,
        services["settlement"].url,
        merchant,
        {first.json()["id"]: {"settled"}, again.json()["id"]: {"settled"}},
    )
    for payment in reached.values():
        assert payment["status"] == "settled" and payment["card_token"] == token, payment


async def test_list_pages_with_a_cursor(intake: httpx.AsyncClient) -> None:
    shop = await new_merchant(intake, "Card Pages Shop")
    key = shop["api_key"]
    made = [(await stored_card(intake, key))["id"] for _ in range(3)]
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await intake.get("/v1/cards", params=params, headers=auth(key))).json()
        seen += [c["id"] for c in page["data"]]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert seen == list(reversed(made))
    bad = await intake.get("/v1/cards", params={"cursor": "nonsense"}, headers=auth(key))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor"


async def test_tokens_belong_to_one_merchant(
    intake: httpx.AsyncClient, merchant: dict[str, Any]
) -> None:
    token = (await stored_card(intake, merchant["api_key"]))["id"]
    other = (await new_merchant(intake, "Token Thief"))["api_key"]
    assert (await intake.get(f"/v1/cards/{token}", headers=auth(other))).status_code == 404
    assert token not in (await intake.get("/v1/cards", headers=auth(other))).text
    paying = await intake.post(
        "/v1/payments", json=token_payment(token, initiated_by="merchant"), headers=auth(other)
    )
    assert paying.status_code == 404, paying.text
    assert paying.headers["content-type"].startswith("application/problem+json")
    assert (await intake.delete(f"/v1/cards/{token}", headers=auth(other))).status_code == 404
    assert (
        await intake.get(f"/v1/cards/{token}", headers=auth(merchant["api_key"]))
    ).status_code == 200
    assert (await intake.get(f"/v1/cards/{token}")).status_code == 401


async def test_delete_destroys_the_ciphertext(
    intake: httpx.AsyncClient, merchant: dict[str, Any], databases: dict[str, asyncpg.Pool]
) -> None:
    key = merchant["api_key"]
    token = (await stored_card(intake, key))["id"]
    assert await databases["intake"].fetchval(
        "SELECT pan_ciphertext IS NOT NULL FROM card_tokens WHERE token = $1", token
    )
    deleted = await intake.delete(f"/v1/cards/{token}", headers=auth(key))
    assert deleted.status_code == 204
    row = await databases["intake"].fetchrow(
        "SELECT pan_ciphertext, deleted_at FROM card_tokens WHERE token = $1", token
    )
    assert row["pan_ciphertext"] is None and row["deleted_at"] is not None
    assert (await intake.get(f"/v1/cards/{token}", headers=auth(key))).status_code == 404
    assert (await intake.delete(f"/v1/cards/{token}", headers=auth(key))).status_code == 404
    assert token not in (await intake.get("/v1/cards", headers=auth(key))).text
    paying = await intake.post(
        "/v1/payments", json=token_payment(token, initiated_by="merchant"), headers=auth(key)
    )
    assert paying.status_code == 404


async def test_invalid_combinations_are_problem_details(
    intake: httpx.AsyncClient, merchant: dict[str, Any], databases: dict[str, asyncpg.Pool]
) -> None:
    key = merchant["api_key"]
    token = (await stored_card(intake, key))["id"]
    outbox_before = await databases["intake"].fetchval("SELECT count(*) FROM outbox")
    cases = [
        ({**payment_body(CLEAR), "card_token": token}, "<body>"),
        (token_payment(token, initiated_by="merchant", cvc="741"), "cvc"),
        (token_payment(token, save_card=True), "save_card"),
        (payment_body(CLEAR, initiated_by="merchant"), "initiated_by"),
        (token_payment("tok_"), "card_token"),
    ]
    for body, field in cases:
        response = await intake.post("/v1/payments", json=body, headers=auth(key))
        assert response.status_code == 422, (field, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert field in [e["field"] for e in response.json()["errors"]], response.text
        assert CLEAR not in response.text and "741" not in response.text
    expired = await intake.post(
        "/v1/cards", json={"card": {**CARD, "exp_month": 1, "exp_year": 2021}}, headers=auth(key)
    )
    assert expired.status_code == 422
    assert [e["field"] for e in expired.json()["errors"]] == ["card.exp_year"]
    assert await databases["intake"].fetchval("SELECT count(*) FROM outbox") == outbox_before
