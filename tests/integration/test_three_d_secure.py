"""3-D Secure through the five real services (docs/3d-secure.md): a payment that needs it
goes to requires_action with the ACS challenge URL, the shopper answers on authorization's
ACS page (a real HTTP client: GET the page, POST the code with its CSRF token), is sent back
to the return URL, and the payment ends authorized and captured with its authentication, or
declined by authentication. Frictionless cards need no challenge; fraud's `3ds` rule action
now leads to a challenge instead of a manual review."""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx

from tests.integration.canary import fresh_number
from tests.integration.conftest import ADMIN_TOKEN, new_merchant
from tests.integration.support import ServiceProcess, WebhookReceiver, eventually

RETURN_URL = "https://shop.example/checkout/3ds-done"
CHALLENGE = "40000032"
CHALLENGE_FAILS = "40000033"
FRICTIONLESS = "40000031"
STEP_UP_AMOUNT = 733_301


def payment(card: str, amount: int = 12_500, **extra: Any) -> dict[str, Any]:
    return {
        "amount": amount,
        "currency": "TRY",
        "capture": True,
        "order_id": f"3ds-{uuid.uuid4().hex[:8]}",
        "card": {"number": card, "exp_month": 12, "exp_year": 2031, "cvc": "123"},
        "return_url": RETURN_URL,
        **extra,
    }


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def pay(intake: httpx.AsyncClient, key: str, body: dict[str, Any]) -> str:
    response = await intake.post("/v1/payments", json=body, headers=auth(key))
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def reaches(
    intake: httpx.AsyncClient,
    key: str,
    payment_id: str,
    status: str,
    *,
    authenticated: bool = False,
) -> Any:
    """The payment once at `status` (and, with `authenticated`, once its authentication is
    recorded too: a sale's capture may be applied before its authorization, another topic)."""
    seen: list[str | None] = [None]

    async def probe() -> dict[str, Any] | None:
        body: dict[str, Any] = (
            await intake.get(f"/v1/payments/{payment_id}", headers=auth(key))
        ).json()
        seen[0] = body.get("status")
        if authenticated and body.get("authentication") is None:
            return None
        return body if seen[0] == status else None

    try:
        return await eventually(probe, timeout_s=45, interval_s=0.3)
    except AssertionError as stuck:
        raise AssertionError(f"{payment_id} stuck in {seen[0]}, wanted {status}") from stuck


def page_form(page: httpx.Response) -> tuple[str, str]:
    """The CSRF token and the development one-time code on the ACS page."""
    assert page.status_code == 200, page.text
    assert page.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    code = re.search(r'id="dev-code">[^<]*?(\d{6})<', page.text)
    assert token is not None and code is not None, page.text
    return token.group(1), code.group(1)


async def answer_challenge(url: str, *, code: str | None = None, times: int = 1) -> httpx.Response:
    """Open the challenge page and post the code (the shown one unless `code` is given)."""
    async with httpx.AsyncClient(timeout=10) as browser:
        token, shown = page_form(await browser.get(url, params={"lang": "en"}))
        posted = None
        for _ in range(times):
            posted = await browser.post(
                url, data={"csrf_token": token, "code": code or shown, "action": "submit"}
            )
        assert posted is not None
        return posted


async def test_a_required_challenge_passed_with_the_code_is_captured_with_liability_shift(
    intake: httpx.AsyncClient,
    services: dict[str, ServiceProcess],
    merchant: dict[str, Any],
    webhooks: WebhookReceiver,
) -> None:
    key = merchant["api_key"]
    payment_id = await pay(intake, key, payment(fresh_number(CHALLENGE), three_d_secure="required"))
    waiting = await reaches(intake, key, payment_id, "requires_action")
    next_action = waiting["next_action"]
    assert next_action["type"] == "redirect_to_url"
    assert next_action["url"].startswith(f"{services['authorization'].url}/acs/challenges/")
    assert next_action["expires_at"]
    assert waiting["authentication"] is None

    posted = await answer_challenge(next_action["url"], times=2)  # a double post
    assert posted.status_code == 303
    back = urlsplit(posted.headers["location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == RETURN_URL
    assert parse_qs(back.query) == {"payment_id": [payment_id]}

    done = await reaches(intake, key, payment_id, "captured", authenticated=True)
    assert done["next_action"] is None
    assert done["authentication"] == {
        "status": "authenticated",
        "flow": "challenge",
        "eci": "05",
        "liability_shift": True,
    }
    assert done["response_code"] == "00" and done["auth_code"]

    async def webhooked() -> dict[str, Any] | None:
        found = {b["type"]: b["data"] for _, b in webhooks.for_payment(payment_id)}
        wanted = {"payment.requires_action", "payment.succeeded"}
        return found if wanted <= set(found) else None

    hooks = await eventually(webhooked, timeout_s=30)
    assert hooks["payment.requires_action"]["next_action"] == "three_d_secure"
    assert hooks["payment.requires_action"]["next_action_url"] == next_action["url"]
    assert hooks["payment.succeeded"]["authentication"]["eci"] == "05"
    assert hooks["payment.succeeded"]["authentication"]["liability_shift"] is True

    # The double post authorized once.
    settled = (await intake.get(f"/v1/payments/{payment_id}", headers=auth(key))).json()
    assert [e["type"] for e in settled["events"]].count("payment.authorized") == 1


async def test_wrong_codes_and_the_failing_card_are_declined_by_authentication(
    intake: httpx.AsyncClient, merchant: dict[str, Any]
) -> None:
    key = merchant["api_key"]
    wrong = await pay(intake, key, payment(fresh_number(CHALLENGE), three_d_secure="required"))
    url = (await reaches(intake, key, wrong, "requires_action"))["next_action"]["url"]
    last = await answer_challenge(url, code="000000", times=3)
    assert last.status_code == 303
    declined = await reaches(intake, key, wrong, "declined")
    assert declined["decline_reason"] == "3-D Secure failed: wrong code, no attempts left"
    assert declined["response_code"] == "N8"
    assert declined["authentication"]["status"] == "failed"
    assert declined["authentication"]["liability_shift"] is False
    details = next(e["details"] for e in declined["events"] if e["type"] == "payment.declined")
    assert details["declined_by"] == "authentication"

    refused = await pay(
        intake, key, payment(fresh_number(CHALLENGE_FAILS), three_d_secure="required")
    )
    url = (await reaches(intake, key, refused, "requires_action"))["next_action"]["url"]
    assert (await answer_challenge(url)).status_code == 303  # even the right code fails
    failed = await reaches(intake, key, refused, "declined")
    assert failed["authentication"]["status"] == "failed"


async def test_a_frictionless_card_is_authenticated_without_a_challenge(
    intake: httpx.AsyncClient, merchant: dict[str, Any]
) -> None:
    key = merchant["api_key"]
    payment_id = await pay(
        intake, key, payment(fresh_number(FRICTIONLESS), three_d_secure="required")
    )
    done = await reaches(intake, key, payment_id, "captured", authenticated=True)
    assert done["authentication"]["flow"] == "frictionless"
    assert done["authentication"]["eci"] == "05"
    assert "payment.action-required" not in {e["type"] for e in done["events"]}


async def test_prefer_wait_answers_at_requires_action_with_the_next_action(
    intake: httpx.AsyncClient,
) -> None:
    created = await intake.post(
        "/admin/merchants",
        json={"name": "Always 3DS", "always_three_d_secure": True},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert created.status_code == 201, created.text
    key = created.json()["api_key"]
    # An ordinary (automatic) request: the merchant's setting makes it required.
    response = await intake.post(
        "/v1/payments",
        json=payment(fresh_number(CHALLENGE)),
        headers={**auth(key), "Prefer": "wait=10"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "requires_action"
    assert body["next_action"]["type"] == "redirect_to_url"
    assert "/acs/challenges/" in body["next_action"]["url"]


async def test_frauds_3ds_rule_leads_to_a_challenge_not_a_manual_review(
    intake: httpx.AsyncClient,
    services: dict[str, ServiceProcess],
    databases: dict[str, asyncpg.Pool],
) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}", "X-Actor": "risk-1"}
    async with httpx.AsyncClient(
        base_url=services["fraud"].url, headers=admin, timeout=10
    ) as fraud:
        rule = {
            "name": f"step-up-it-{uuid.uuid4().hex[:8]}",
            "expression": f"amount in [{STEP_UP_AMOUNT}]",
            "action": "3ds",
        }
        created = await fraud.post("/v1/rules", json=rule)
        assert created.status_code == 201, created.text
        key = (await new_merchant(intake, "Step-up Shop"))["api_key"]
        try:
            payment_id = await pay(
                intake, key, payment(fresh_number("4111"), amount=STEP_UP_AMOUNT)
            )
            waiting = await reaches(intake, key, payment_id, "requires_action")
            assert waiting["next_action"] is not None
            held = await databases["authorization"].fetchrow(
                "SELECT (SELECT count(*) FROM reviews WHERE payment_id = $1) AS reviews, "
                "(SELECT cause FROM three_ds_challenges WHERE payment_id = $1) AS cause",
                uuid.UUID(payment_id),
            )
            assert (held["reviews"], held["cause"]) == (0, "fraud_step_up")
            # Not in fraud's manual review queue, and a reviewer cannot decide it there.
            queue = {r["payment_id"] for r in (await fraud.get("/v1/reviews")).json()}
            assert payment_id not in queue
            resolved = await fraud.post(
                f"/v1/reviews/{payment_id}/resolve", json={"decision": "approve"}
            )
            assert resolved.status_code == 409, resolved.text
            assert "3-D Secure" in resolved.json()["title"]
            assert (await answer_challenge(waiting["next_action"]["url"])).status_code == 303
            done = await reaches(intake, key, payment_id, "captured", authenticated=True)
            assert done["authentication"]["status"] == "authenticated"
        finally:
            await fraud.patch(f"/v1/rules/{rule['name']}", json={"enabled": False})
