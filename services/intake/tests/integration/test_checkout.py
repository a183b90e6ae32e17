"""Checkout sessions and the hosted payment page against the real intake database, in
process: the merchant API (validation, idempotency, scoping), the page's HTML and headers,
the card bound to its session (a merchant-bound or tampered or replayed JWE is refused), CSRF,
a double submit paying once, the attempt limit, and the signed trip back to the shop."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from jwcrypto import jwe, jwk

from intake.domain.checkout import signed_text
from intake.entrypoints.http.checkout_page import messages
from sanalpos_common import topics
from sanalpos_common.schemas.events import PaymentDeclined
from sanalpos_common.service import Platform
from sanalpos_common.settings import DEV_ADMIN_TOKEN

from .conftest import authorized, feed, http_client, private_intake

CARD = {"number": "4111111111111111", "exp_month": 12, "exp_year": 2031, "cvc": "123"}
ADMIN = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
SESSION = {
    "amount": 125000,
    "currency": "TRY",
    "order_id": "ORD-42",
    "basket": [
        {"name": "Tutunamayanlar", "quantity": 1, "unit_amount": 75000},
        {"name": "Bookmark", "quantity": 2, "unit_amount": 25000},
    ],
    "installments": [3, 6],
    "success_url": "https://shop.example/paid?order=42",
    "failure_url": "https://shop.example/failed",
}


class World:
    def __init__(self, platform: Platform, client: httpx.AsyncClient) -> None:
        self.platform, self.client = platform, client
        self.pool = platform.pool
        self.key: dict[str, Any] = {}

    async def merchant(self, **fields: Any) -> dict[str, Any]:
        created = await self.client.post(
            "/admin/merchants", json={"name": "Moda Kitap", **fields}, headers=ADMIN
        )
        assert created.status_code == 201, created.text
        body = dict(created.json())
        body["auth"] = {"Authorization": f"Bearer {body['api_key']}"}
        return body

    async def session(self, merchant: dict[str, Any], **fields: Any) -> dict[str, Any]:
        created = await self.client.post(
            "/v1/checkout/sessions", json={**SESSION, **fields}, headers=merchant["auth"]
        )
        assert created.status_code == 201, created.text
        return dict(created.json())

    def seal(self, aud: str, card: dict[str, Any] | None = None, **claims: Any) -> str:
        protected = {
            "alg": "RSA-OAEP-256",
            "enc": "A256GCM",
            "kid": self.key["kid"],
            "aud": aud,
            "iat": int(time.time()),
            "jti": uuid.uuid4().hex,
            **claims,
        }
        token = jwe.JWE(
            json.dumps(card or CARD).encode(), recipient=jwk.JWK(**self.key), protected=protected
        )
        return str(token.serialize(compact=True))

    async def open_page(self, session_id: str, **params: str) -> httpx.Response:
        return await self.client.get(f"/checkout/{session_id}", params=params)

    async def csrf(self, session_id: str) -> str:
        page = await self.open_page(session_id)
        assert page.status_code == 200, page.text
        self.client.cookies.clear()  # each request below says which cookie it carries
        return str(page.cookies["cs_csrf"])

    async def submit(
        self, session_id: str, token: str, installments: int = 1, csrf: str | None = None
    ) -> httpx.Response:
        csrf = csrf or await self.csrf(session_id)
        return await self.client.post(
            f"/checkout/{session_id}/pay",
            json={"encrypted_card": token, "installments": installments},
            headers={"X-CSRF-Token": csrf, "Cookie": f"cs_csrf={csrf}"},
        )

    async def payments_of(self, session_id: str) -> list[Any]:
        return list(
            await self.pool.fetch(
                "SELECT * FROM payments WHERE checkout_session_id = $1 ORDER BY created_at",
                session_id,
            )
        )


@pytest.fixture(scope="module")
async def world() -> AsyncIterator[World]:
    async with private_intake() as platform, http_client(platform) as client:
        found = World(platform, client)
        found.key = (await client.get("/v1/encryption-keys/current")).json()
        yield found


async def decline(world: World, payment_id: Any, merchant_id: str, code: str = "51") -> None:
    await feed(
        world.pool,
        topics.PAYMENT_DECLINED,
        PaymentDeclined(
            payment_id=payment_id,
            merchant_id=merchant_id,
            amount=125000,
            currency="TRY",
            response_code=code,
            reason="insufficient funds",
            declined_by="issuer",
        ),
    )


async def test_a_session_is_created_read_listed_and_idempotent(world: World) -> None:
    shop = await world.merchant(name="Kadikoy Kitap")
    key = {"Idempotency-Key": f"cs-{uuid.uuid4().hex}"}
    first = await world.client.post(
        "/v1/checkout/sessions", json=SESSION, headers={**shop["auth"], **key}
    )
    again = await world.client.post(
        "/v1/checkout/sessions", json=SESSION, headers={**shop["auth"], **key}
    )
    assert first.status_code == again.status_code == 201, first.text
    assert again.headers["Idempotent-Replayed"] == "true"
    body = first.json()
    assert again.json()["id"] == body["id"] and body["id"].startswith("cs_")
    assert body["url"] == f"http://127.0.0.1:18000/checkout/{body['id']}"
    assert (body["status"], body["locale"], body["installments"]) == ("open", "tr", [1, 3, 6])
    assert body["attempts_left"] == 3 and body["payment"] is None
    read = await world.client.get(f"/v1/checkout/sessions/{body['id']}", headers=shop["auth"])
    assert read.status_code == 200 and read.json()["id"] == body["id"]
    other = await world.merchant(name="Other")
    hidden = await world.client.get(f"/v1/checkout/sessions/{body['id']}", headers=other["auth"])
    assert hidden.status_code == 404
    second = await world.session(shop)
    page1 = await world.client.get(
        "/v1/checkout/sessions", params={"limit": 1}, headers=shop["auth"]
    )
    assert [s["id"] for s in page1.json()["data"]] == [second["id"]]
    page2 = await world.client.get(
        "/v1/checkout/sessions",
        params={"limit": 1, "cursor": page1.json()["next_cursor"]},
        headers=shop["auth"],
    )
    assert [s["id"] for s in page2.json()["data"]] == [body["id"]]
    none = await world.client.get("/v1/checkout/sessions", headers=other["auth"])
    assert none.json()["data"] == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"basket": [{"name": "Book", "quantity": 1, "unit_amount": 100}]}, "basket"),
        ({"success_url": "javascript:alert(1)"}, "success_url"),
        ({"installments": [1, 13]}, "installments.1"),
        ({"expires_in_s": 10}, "expires_in_s"),
        ({"locale": "de"}, "locale"),
    ],
)
async def test_bad_sessions_are_refused_naming_the_field(
    world: World, change: dict[str, Any], field: str
) -> None:
    shop = await world.merchant()
    refused = await world.client.post(
        "/v1/checkout/sessions", json={**SESSION, **change}, headers=shop["auth"]
    )
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == [field]


async def test_the_merchant_default_locale_applies(world: World) -> None:
    shop = await world.merchant()
    updated = await world.client.patch(
        f"/admin/merchants/{shop['id']}",
        json={"checkout_locale": "en", "checkout_frame_ancestors": ["https://shop.example"]},
        headers=ADMIN,
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["checkout_frame_ancestors"] == ["https://shop.example"]
    session = await world.session(shop)
    assert session["locale"] == "en"
    page = await world.open_page(session["id"])
    assert '<html lang="en">' in page.text and "TRY 1,250.00" in page.text
    csp = page.headers["Content-Security-Policy"]
    assert "frame-ancestors https://shop.example" in csp
    bad = await world.client.patch(
        f"/admin/merchants/{shop['id']}",
        json={"checkout_frame_ancestors": ["https://shop.example/path"]},
        headers=ADMIN,
    )
    assert bad.status_code == 422


async def test_the_page_in_turkish_with_its_headers(world: World) -> None:
    shop = await world.merchant(name="Moda <Kitap> & Co")
    session = await world.session(shop)
    page = await world.open_page(session["id"])
    assert page.status_code == 200
    html = page.text
    assert "Moda &lt;Kitap&gt; &amp; Co" in html and "<Kitap>" not in html  # escaped
    assert "1.250,00 TL" in html and "750,00 TL" in html and "Tutunamayanlar" in html
    for autocomplete in ("cc-name", "cc-number", "cc-exp", "cc-csc"):
        assert f'autocomplete="{autocomplete}"' in html
    assert 'aria-describedby="cc-number-brand cc-number-error"' in html
    assert "<script>" not in html and "style=" not in html  # nothing inline
    headers = page.headers
    assert headers["Content-Security-Policy"].startswith("default-src 'none'; script-src 'self';")
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert f"Path=/checkout/{session['id']}" in cookie
    english = await world.open_page(session["id"], lang="en")
    assert "TRY 1,250.00" in english.text and "Card number" in english.text


async def test_unknown_and_expired_sessions_get_a_clear_page(world: World) -> None:
    unknown = await world.open_page("cs_" + "x" * 32)
    assert unknown.status_code == 404 and messages("tr")["not_found_title"] in unknown.text
    garbage = await world.client.get("/checkout/not-a-session")
    assert garbage.status_code == 404 and "text/html" in garbage.headers["content-type"]
    shop = await world.merchant()
    session = await world.session(shop)
    await world.pool.execute(
        "UPDATE checkout_sessions SET expires_at = now() - interval '1 second' WHERE id = $1",
        session["id"],
    )
    expired = await world.open_page(session["id"], lang="en")
    assert expired.status_code == 410 and "This payment page has expired" in expired.text
    assert "Traceback" not in expired.text
    read = await world.client.get(f"/v1/checkout/sessions/{session['id']}", headers=shop["auth"])
    assert read.json()["status"] == "expired"
    late = await world.submit(session["id"], world.seal(session["id"]), csrf="x" * 10)
    assert late.status_code == 403  # wrong CSRF token first
    csrf = await world.pool.fetchval(
        "SELECT csrf_token FROM checkout_sessions WHERE id = $1", session["id"]
    )
    late = await world.submit(session["id"], world.seal(session["id"]), csrf=csrf)
    assert late.status_code == 410, late.text


async def test_installments_come_from_the_bin_and_the_session(world: World) -> None:
    shop = await world.merchant(max_installments=3)
    session = await world.session(shop)
    credit = await world.client.get(
        f"/checkout/{session['id']}/installments", params={"bin": "41111111"}
    )
    assert credit.status_code == 200, credit.text
    rows = credit.json()["installments"]
    assert [r["count"] for r in rows] == [1, 3]  # the merchant caps 6 away
    assert rows[1]["monthly_text"] == "416,66 TL" and rows[1]["total_text"] == "1.250,00 TL"
    bad = await world.client.get(f"/checkout/{session['id']}/installments", params={"bin": "41"})
    assert bad.status_code == 422


async def test_a_submit_pays_once_with_the_sessions_terms(world: World) -> None:
    shop = await world.merchant()
    session = await world.session(shop, capture=False, shopper={"email": "a@example.com"})
    csrf = await world.csrf(session["id"])
    first, second = await asyncio.gather(
        world.submit(session["id"], world.seal(session["id"]), 3, csrf),
        world.submit(session["id"], world.seal(session["id"]), 3, csrf),
    )
    assert {first.status_code, second.status_code} == {202, 200}, (first.text, second.text)
    assert first.json()["payment_id"] == second.json()["payment_id"]
    (payment,) = await world.payments_of(session["id"])
    assert (payment["amount"], payment["installments"], payment["capture"]) == (125000, 3, False)
    assert payment["card_last4"] == "1111"
    outbox = await world.pool.fetchval(
        "SELECT convert_from(payload, 'UTF8') FROM outbox WHERE topic LIKE 'payment.initiated%' "
        "ORDER BY id DESC LIMIT 1"
    )
    assert session["id"] in outbox and f"/checkout/{session['id']}/return" in outbox
    assert "4111111111111111" not in outbox
    status = await world.client.get(f"/checkout/{session['id']}/status")
    assert status.json()["status"] == "pending"
    waiting = await world.client.get(f"/checkout/{session['id']}/return", follow_redirects=False)
    assert (
        waiting.status_code == 303 and waiting.headers["location"] == f"/checkout/{session['id']}"
    )
    # Sent back by the challenge page before the outcome: the page is told to wait for it.
    challenged = await world.client.get(
        f"/checkout/{session['id']}/return",
        params={"payment_id": str(payment["id"])},
        follow_redirects=False,
    )
    assert challenged.headers["location"] == f"/checkout/{session['id']}?challenged=1"
    assert (await world.open_page(session["id"], challenged="1")).status_code == 200

    await feed(world.pool, topics.PAYMENT_AUTHORIZED, authorized(payment["id"], shop["id"], 125000))
    # ... even once the outcome is in (the page's script then moves on to the shop): a
    # redirect chain from the challenge form to the shop would break the ACS page's CSP.
    onwards = await world.client.get(
        f"/checkout/{session['id']}/return",
        params={"payment_id": str(payment["id"])},
        follow_redirects=False,
    )
    assert onwards.headers["location"] == f"/checkout/{session['id']}?challenged=1"
    status = await world.client.get(f"/checkout/{session['id']}/status")
    assert status.json() == {"status": "succeeded", "attempts_left": 3, "final": True}
    read = await world.client.get(f"/v1/checkout/sessions/{session['id']}", headers=shop["auth"])
    assert read.json()["status"] == "completed"
    assert read.json()["payment"]["id"] == str(payment["id"])
    back = await world.client.get(f"/checkout/{session['id']}/return", follow_redirects=False)
    assert back.status_code == 303
    location = urlsplit(back.headers["location"])
    assert (location.netloc, location.path) == ("shop.example", "/paid")
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["order"] == "42" and query["status"] == "succeeded"
    assert query["payment_id"] == str(payment["id"])
    assert verify(world, shop["id"], query)
    forged = {**query, "status": "succeeded", "payment_id": str(uuid.uuid4())}
    assert not verify(world, shop["id"], forged)
    paid_again = await world.submit(session["id"], world.seal(session["id"]), 1, csrf)
    assert paid_again.status_code == 409


def verify(world: World, merchant_id: str, query: dict[str, str]) -> bool:
    """What a shop does (docs/checkout.md), with the published key."""
    keys = world.platform.runtime.app.state.container.checkout.require_signer().public_jwk()
    assert keys["kid"] == query["key_id"]
    public = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(keys["x"] + "="))
    text = signed_text(
        merchant_id,
        query["session_id"],
        query["payment_id"],
        query["status"],
        int(query["timestamp"]),
        query["key_id"],
    )
    signature = base64.urlsafe_b64decode(query["signature"] + "=" * (-len(query["signature"]) % 4))
    try:
        public.verify(signature, text)
    except Exception:
        return False
    return True


async def test_the_jwe_is_bound_to_its_session(world: World) -> None:
    shop = await world.merchant()
    session = await world.session(shop)
    other = await world.session(shop)
    csrf = await world.csrf(session["id"])
    for token, code in (
        (world.seal(shop["id"]), "jwe_wrong_audience"),  # a merchant-API token
        (world.seal(other["id"]), "jwe_wrong_audience"),  # another session's
        (world.seal(session["id"], iat=int(time.time()) - 3600), "jwe_expired"),
    ):
        refused = await world.submit(session["id"], token, 1, csrf)
        assert refused.status_code == 422, refused.text
        assert [e["code"] for e in refused.json()["errors"]] == [code]
    good = world.seal(session["id"])
    header, key, iv, ciphertext, tag = good.split(".")
    flipped = ("A" if ciphertext[0] != "A" else "B") + ciphertext[1:]
    tampered = await world.submit(session["id"], ".".join([header, key, iv, flipped, tag]), 1, csrf)
    assert tampered.status_code == 422
    assert tampered.json()["errors"][0]["code"] == "jwe_invalid"
    # The page's token does not pay through the merchant API either.
    api = await world.client.post(
        "/v1/payments",
        json={"amount": 1500, "currency": "TRY", "encrypted_card": good},
        headers=shop["auth"],
    )
    assert api.status_code == 422
    assert api.json()["errors"][0]["code"] == "jwe_wrong_audience"
    assert await world.payments_of(session["id"]) == []

    paid = await world.submit(session["id"], good, 1, csrf)
    assert paid.status_code == 202, paid.text
    (payment,) = await world.payments_of(session["id"])
    await decline(world, payment["id"], shop["id"])
    replayed = await world.submit(session["id"], good, 1, csrf)
    assert replayed.status_code == 422
    assert replayed.json()["errors"][0]["code"] == "jwe_reused"
    assert len(await world.payments_of(session["id"])) == 1


async def test_csrf_token_is_needed_in_header_and_cookie(world: World) -> None:
    shop = await world.merchant()
    session = await world.session(shop)
    csrf = await world.csrf(session["id"])
    url = f"/checkout/{session['id']}/pay"
    body = {"encrypted_card": world.seal(session["id"]), "installments": 1}
    no_cookie = await world.client.post(url, json=body, headers={"X-CSRF-Token": csrf})
    no_header = await world.client.post(url, json=body, headers={"Cookie": f"cs_csrf={csrf}"})
    assert no_cookie.status_code == no_header.status_code == 403
    assert await world.payments_of(session["id"]) == []


async def test_declined_attempts_are_limited(world: World) -> None:
    shop = await world.merchant()
    session = await world.session(shop)
    csrf = await world.csrf(session["id"])
    for attempt in range(3):
        paid = await world.submit(session["id"], world.seal(session["id"]), 1, csrf)
        assert paid.status_code == 202, (attempt, paid.text)
        await decline(world, uuid.UUID(paid.json()["payment_id"]), shop["id"])
        status = (await world.client.get(f"/checkout/{session['id']}/status")).json()
        assert status["status"] == "declined" and status["reason"] == "insufficient_funds"
        assert status["attempts_left"] == 2 - attempt
        if attempt == 0:  # giving up after a decline goes to failure_url as declined
            gave_up = await world.client.get(
                f"/checkout/{session['id']}/return?cancel=true", follow_redirects=False
            )
            assert gave_up.status_code == 303, gave_up.text
            assert urlsplit(gave_up.headers["location"]).path == "/failed"
    assert status["final"] is True
    refused = await world.submit(session["id"], world.seal(session["id"]), 1, csrf)
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("checkout-attempts-exhausted")
    back = await world.client.get(f"/checkout/{session['id']}/return", follow_redirects=False)
    location = urlsplit(back.headers["location"])
    assert location.path == "/failed"
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["status"] == "declined" and verify(world, shop["id"], query)


async def test_a_shopper_may_cancel_back_to_the_shop(world: World) -> None:
    shop = await world.merchant()
    session = await world.session(shop)
    back = await world.client.get(
        f"/checkout/{session['id']}/return", params={"cancel": "true"}, follow_redirects=False
    )
    assert back.status_code == 303
    query = {
        k: v[0]
        for k, v in parse_qs(
            urlsplit(back.headers["location"]).query, keep_blank_values=True
        ).items()
    }
    assert query["status"] == "canceled" and query["payment_id"] == ""
    assert verify(world, shop["id"], query)


async def test_bin_lookups_and_submits_are_limited_per_session(world: World) -> None:
    shop = await world.merchant()
    session = await world.session(shop)
    url = f"/checkout/{session['id']}/installments"
    answers = [
        (await world.client.get(url, params={"bin": f"4111{i:04d}"})).status_code for i in range(25)
    ]
    assert answers[:20] == [200] * 20 and set(answers[20:]) == {429}
    limited = await world.client.get(url, params={"bin": "41111111"})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    other = await world.session(shop)  # another session has its own budget
    fine = await world.client.get(
        f"/checkout/{other['id']}/installments", params={"bin": "41111111"}
    )
    assert fine.status_code == 200


async def test_a_framed_page_over_https_gets_a_partitioned_cross_site_cookie() -> None:
    async with (
        private_intake(public_base_url="https://pay.sanalpos.example") as platform,
        http_client(platform) as client,
    ):
        world = World(platform, client)
        framed = await world.merchant()
        updated = await client.patch(
            f"/admin/merchants/{framed['id']}",
            json={"checkout_frame_ancestors": ["https://shop.example"]},
            headers=ADMIN,
        )
        assert updated.status_code == 200, updated.text
        plain = await world.merchant()
        framed_cookie = (await world.open_page((await world.session(framed))["id"])).headers[
            "set-cookie"
        ]
        plain_cookie = (await world.open_page((await world.session(plain))["id"])).headers[
            "set-cookie"
        ]
    for part in ("SameSite=none", "Secure", "Partitioned", "HttpOnly"):
        assert part in framed_cookie, framed_cookie
    assert "SameSite=strict" in plain_cookie and "Partitioned" not in plain_cookie
    assert "Secure" in plain_cookie
