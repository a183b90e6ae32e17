"""Client-side encryption end to end: the published JWK, a card encrypted to it with an
independent JOSE library (jwcrypto, as a browser's Web Crypto would), paid and stored; tampered
or invalid payloads are refused with named fields and nothing is emitted."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import asyncpg
import httpx
from jwcrypto import jwe, jwk

from tests.integration.canary import fresh_number
from tests.integration.conftest import new_merchant
from tests.integration.support import ServiceProcess, statuses_with_batches_closing
from tests.integration.test_end_to_end import auth, payment_body

CARD = {"number": fresh_number("400005"), "exp_month": 10, "exp_year": 2033, "cvc": "802"}


async def public_key(intake: httpx.AsyncClient) -> dict[str, Any]:
    response = await intake.get("/v1/encryption-keys/current")  # public: no API key
    assert response.status_code == 200, response.text
    return response.json()


def seal(key: dict[str, Any], payload: Any, aud: str, **header: Any) -> str:
    """As a merchant's checkout does: the token is bound to the merchant (`aud`), to when it
    was made (`iat`) and made unique (`jti`), in its protected header."""
    binding = {"aud": aud, "iat": int(time.time()), "jti": uuid.uuid4().hex}
    protected = {"alg": key["alg"], "enc": key["enc"], "kid": key["kid"], **binding, **header}
    token = jwe.JWE(json.dumps(payload).encode(), recipient=jwk.JWK(**key), protected=protected)
    return str(token.serialize(compact=True))


def encrypted_payment(jwe_compact: str, **fields: Any) -> dict[str, Any]:
    body = payment_body(CARD["number"], **fields)
    del body["card"]
    return {**body, "encrypted_card": jwe_compact}


async def test_the_published_key_is_a_public_rsa_oaep_jwk(intake: httpx.AsyncClient) -> None:
    key = await public_key(intake)
    assert key["kty"] == "RSA" and key["use"] == "enc"
    assert key["alg"] == "RSA-OAEP-256" and key["enc"] == "A256GCM" and key["kid"]
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)
    assert jwk.JWK(**key).thumbprint() == key["kid"]  # RFC 7638 thumbprint
    assert await public_key(intake) == key


async def test_encrypted_card_pays_end_to_end_and_can_be_stored(
    intake: httpx.AsyncClient, services: dict[str, ServiceProcess], merchant: dict[str, Any]
) -> None:
    key_doc = await public_key(intake)
    api_key = merchant["api_key"]
    response = await intake.post(
        "/v1/payments",
        json=encrypted_payment(seal(key_doc, CARD, merchant["id"])),
        headers=auth(api_key),
    )
    assert response.status_code == 202, response.text
    payment = response.json()
    assert payment["card"]["last4"] == CARD["number"][-4:] and payment["card"]["exp_year"] == 2033
    saved = await intake.post(
        "/v1/cards",
        json={
            "encrypted_card": seal(
                key_doc, {k: v for k, v in CARD.items() if k != "cvc"}, merchant["id"]
            )
        },
        headers=auth(api_key),
    )
    assert saved.status_code == 201, saved.text
    assert saved.json()["masked_number"] == f"400005******{CARD['number'][-4:]}"

    and_saved = await intake.post(
        "/v1/payments",
        json=encrypted_payment(seal(key_doc, CARD, merchant["id"]), save_card=True, capture=False),
        headers=auth(api_key),
    )
    assert and_saved.status_code == 202, and_saved.text
    assert and_saved.json()["card_token"].startswith("tok_")
    reached = await statuses_with_batches_closing(
        intake,
        services["settlement"].url,
        merchant,
        {payment["id"]: {"settled"}, and_saved.json()["id"]: {"authorized"}},
    )
    settled, authorized = reached[payment["id"]], reached[and_saved.json()["id"]]
    assert settled["status"] == "settled", settled
    assert settled["response_code"] == "00"
    assert authorized["status"] == "authorized", authorized


async def test_tampered_or_invalid_encrypted_cards_are_refused(
    intake: httpx.AsyncClient, merchant: dict[str, Any], databases: dict[str, asyncpg.Pool]
) -> None:
    key_doc = await public_key(intake)
    api_key = merchant["api_key"]
    outbox_before = await databases["intake"].fetchval("SELECT count(*) FROM outbox")

    parts = seal(key_doc, CARD, merchant["id"]).split(".")
    middle = len(parts[3]) // 2
    parts[3] = (
        parts[3][:middle] + ("A" if parts[3][middle] != "A" else "B") + parts[3][middle + 1 :]
    )
    tampered = ".".join(parts)
    bad_digit = str((int(CARD["number"][-1]) + 1) % 10)
    cases = [
        (tampered, "encrypted_card"),
        (seal(key_doc, CARD, merchant["id"], alg="RSA-OAEP"), "encrypted_card"),
        (
            seal(key_doc, {**CARD, "number": CARD["number"][:-1] + bad_digit}, merchant["id"]),
            "encrypted_card.number",
        ),
        (
            seal(key_doc, {**CARD, "exp_month": 1, "exp_year": 2021}, merchant["id"]),
            "encrypted_card.exp_year",
        ),
        (seal(key_doc, {**CARD, "cvc": "8"}, merchant["id"]), "encrypted_card.cvc"),
        (
            seal(key_doc, {k: v for k, v in CARD.items() if k != "cvc"}, merchant["id"]),
            "encrypted_card.cvc",
        ),
        (seal(key_doc, {**CARD, "extra": 1}, merchant["id"]), "encrypted_card.extra"),
    ]
    for value, field in cases:
        response = await intake.post(
            "/v1/payments", json=encrypted_payment(value), headers=auth(api_key)
        )
        assert response.status_code == 422, (field, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert [e["field"] for e in response.json()["errors"]] == [field], response.text
        assert CARD["number"][:12] not in response.text and "802" not in response.text

    both = encrypted_payment(seal(key_doc, CARD, merchant["id"]))
    both["card"] = payment_body(CARD["number"])["card"]
    response = await intake.post("/v1/payments", json=both, headers=auth(api_key))
    assert response.status_code == 422
    tampered_card = await intake.post(
        "/v1/cards", json={"encrypted_card": tampered}, headers=auth(api_key)
    )
    assert tampered_card.status_code == 422
    assert await databases["intake"].fetchval("SELECT count(*) FROM outbox") == outbox_before


async def test_a_captured_token_cannot_be_replayed_by_anyone(
    intake: httpx.AsyncClient, merchant: dict[str, Any]
) -> None:
    """Bound to its merchant and used once: another merchant holding a copy is refused, and
    so is the merchant itself sending it a second time."""
    key_doc = await public_key(intake)
    token = seal(key_doc, CARD, merchant["id"])
    other = await new_merchant(intake, "Token thief")
    stolen = await intake.post(
        "/v1/payments", json=encrypted_payment(token), headers=auth(other["api_key"])
    )
    assert stolen.status_code == 422, stolen.text
    assert [e["code"] for e in stolen.json()["errors"]] == ["jwe_wrong_audience"]
    first = await intake.post(
        "/v1/payments", json=encrypted_payment(token), headers=auth(merchant["api_key"])
    )
    assert first.status_code == 202, first.text
    again = await intake.post(
        "/v1/payments", json=encrypted_payment(token), headers=auth(merchant["api_key"])
    )
    assert again.status_code == 422, again.text
    assert [e["code"] for e in again.json()["errors"]] == ["jwe_reused"]
