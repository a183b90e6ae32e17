"""The hosted payment page on the whole system, in a real browser: a frictionless approval in
3 installments ending at the shop's success_url with a valid signature, and an issuer decline
ending at failure_url. Intake, fraud, authorization (its issuer simulator), settlement and
notification run as processes on the real broker and databases."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import statistics
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.async_api import Page, async_playwright

from sanalpos_common.testing import free_port
from tests.integration import support
from tests.integration.canary import fresh_number
from tests.integration.conftest import ADMIN_TOKEN, cutoff_far_from_now, new_merchant
from tests.integration.support import ROOT, MailSink, WebhookReceiver, eventually
from tests.integration.test_canary_scan import email_text
from tests.integration.test_three_d_secure import CHALLENGE, CHALLENGE_FAILS

DOC = ROOT / "docs" / "checkout.md"
SHOTS = support.run_log_dir() / "checkout"


def documented_verifier() -> Any:
    """docs/checkout.md's verification, as a shop would copy it."""
    (code,) = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace["verify_checkout_result"]


@pytest.fixture(scope="module")
def shop() -> Iterator[tuple[str, list[dict[str, str]]]]:
    visits: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path not in {"/paid", "/failed"}:  # the browser's favicon.ico
                self.send_error(404)
                return
            query = parse_qs(parts.query, keep_blank_values=True)
            visits.append({"path": parts.path, **{k: v[0] for k, v in query.items()}})
            body = f"<!doctype html><title>Shop</title><h1>{parts.path}</h1>".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", visits
    server.shutdown()
    server.server_close()


@contextlib.asynccontextmanager
async def phone_page() -> AsyncIterator[Page]:
    chromium = shutil.which("chromium")
    assert chromium, "chromium not found: run `bash scripts/infra/chromium.sh install`"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            yield await browser.new_page(viewport={"width": 390, "height": 844})
        finally:
            await browser.close()


async def pay_in_browser(page: Page, url: str, number: str, installments: int, name: str) -> None:
    await page.goto(url)
    await page.fill("#cc-name", "AYSE YILMAZ")
    await page.click("#cc-number")
    await page.keyboard.type(number, delay=10)
    await page.fill("#cc-exp", "12/31")
    await page.fill("#cc-csc", "123")
    await page.locator(f"#inst-{installments}").wait_for()
    await page.check(f"#inst-{installments}")
    await shot(page, f"{name}-filled")
    await page.click("#pay-button")


async def shot(page: Page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"system-{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def merchant_with_hooks(
    intake: httpx.AsyncClient, webhooks: WebhookReceiver, name: str, **settings: Any
) -> dict[str, Any]:
    """A fresh merchant (with `settings`, e.g. always_three_d_secure) and a webhook endpoint
    at the test receiver."""
    created = await intake.post(
        "/admin/merchants",
        json={"name": name, "cutoff_time": cutoff_far_from_now(), **settings},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert created.status_code == 201, created.text
    merchant = dict(created.json())
    url = webhooks.start() if webhooks.server is None else _receiver_url(webhooks)
    endpoint = await intake.post(
        "/v1/webhook-endpoints",
        json={"url": f"{url}/hooks"},
        headers={"Authorization": f"Bearer {merchant['api_key']}"},
    )
    assert endpoint.status_code == 201, endpoint.text
    return merchant


def _receiver_url(webhooks: WebhookReceiver) -> str:
    assert webhooks.server is not None
    return f"http://127.0.0.1:{webhooks.server.server_address[1]}"


async def hook_types(webhooks: WebhookReceiver, payment_id: str, wanted: set[str]) -> set[str]:
    async def arrived() -> set[str] | None:
        seen = {body["type"] for _, body in webhooks.for_payment(payment_id)}
        return seen if wanted <= seen else None

    return await eventually(arrived, timeout_s=45)


async def challenge_in_browser(page: Page, name: str, code: str | None = None) -> None:
    """On the issuer's (simulated) challenge page: type the code it shows in development
    (or `code`) and send it."""
    await page.wait_for_url(re.compile(r".*/acs/challenges/.*"), timeout=30_000)
    await shot(page, f"{name}-challenge")
    shown = re.search(r"\b(\d{6})\b", await page.locator("#dev-code").inner_text())
    assert shown, "the development challenge page shows its code"
    await page.fill("#code", code or shown.group(1))
    await page.click("button[value=submit]")


async def open_session(
    intake: httpx.AsyncClient,
    merchant: dict[str, Any],
    shop_url: str,
    amount: int,
    shopper_email: str | None = None,
) -> dict[str, Any]:
    shopper = {"shopper": {"email": shopper_email, "name": "Ayse Yilmaz"}} if shopper_email else {}
    response = await intake.post(
        "/v1/checkout/sessions",
        json={
            "amount": amount,
            "currency": "TRY",
            "order_id": "ORD-browser",
            "installments": [1, 3, 6],
            "success_url": f"{shop_url}/paid",
            "failure_url": f"{shop_url}/failed",
            **shopper,
        },
        headers={"Authorization": f"Bearer {merchant['api_key']}"},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_a_frictionless_approval_in_3_installments_returns_signed_to_the_shop(
    intake: httpx.AsyncClient,
    shop: tuple[str, list[dict[str, str]]],
    webhooks: WebhookReceiver,
    mail: MailSink,
) -> None:
    shop_url, visits = shop
    merchant = await merchant_with_hooks(intake, webhooks, "Checkout Shop")
    shopper = f"page-{uuid.uuid4().hex[:8]}@shopper.example"
    session = await open_session(intake, merchant, shop_url, 45_000, shopper)
    async with phone_page() as page:
        await pay_in_browser(page, session["url"], fresh_number("4111"), 3, "approval")
        await page.wait_for_url(f"{shop_url}/paid?*", timeout=30_000)
        await shot(page, "approval-at-the-shop")
    visit = visits[-1]
    assert (visit["path"], visit["status"]) == ("/paid", "succeeded")
    keys = (await intake.get("/v1/checkout/signing-keys")).json()
    assert documented_verifier()(visit, merchant["id"], keys)
    assert not documented_verifier()({**visit, "status": "declined"}, merchant["id"], keys)
    payment = (
        await intake.get(
            f"/v1/payments/{visit['payment_id']}",
            headers={"Authorization": f"Bearer {merchant['api_key']}"},
        )
    ).json()
    assert payment["installments"] == 3 and payment["status"] in {"captured", "settled"}
    read = await intake.get(
        f"/v1/checkout/sessions/{session['id']}",
        headers={"Authorization": f"Bearer {merchant['api_key']}"},
    )
    assert read.json()["status"] == "completed"
    # The merchant's webhook fires as for any payment, and the shopper gets the receipt.
    assert {"payment.succeeded"} <= await hook_types(
        webhooks, visit["payment_id"], {"payment.succeeded"}
    )
    receipt = await eventually(lambda: _mail_to(mail, shopper), timeout_s=45)
    assert "450,00 TL" in receipt and "3" in receipt


async def _mail_to(mail: MailSink, address: str) -> str | None:
    sent = mail.to(address)
    return email_text(sent[0]) if sent else None


async def test_a_3ds_challenge_passed_with_the_code_returns_signed_to_the_shop(
    intake: httpx.AsyncClient, shop: tuple[str, list[dict[str, str]]], webhooks: WebhookReceiver
) -> None:
    shop_url, visits = shop
    merchant = await merchant_with_hooks(
        intake, webhooks, "Checkout 3DS Shop", always_three_d_secure=True
    )
    session = await open_session(intake, merchant, shop_url, 12_000)
    async with phone_page() as page:
        await pay_in_browser(page, session["url"], fresh_number(CHALLENGE), 1, "3ds-pass")
        await challenge_in_browser(page, "3ds-pass")
        await page.wait_for_url(f"{shop_url}/paid?*", timeout=30_000)
        await shot(page, "3ds-pass-at-the-shop")
    visit = visits[-1]
    assert (visit["path"], visit["status"]) == ("/paid", "succeeded")
    keys = (await intake.get("/v1/checkout/signing-keys")).json()
    assert documented_verifier()(visit, merchant["id"], keys)
    paid = (
        await intake.get(
            f"/v1/payments/{visit['payment_id']}",
            headers={"Authorization": f"Bearer {merchant['api_key']}"},
        )
    ).json()
    assert paid["authentication"]["status"] == "authenticated"
    assert (paid["authentication"]["eci"], paid["authentication"]["liability_shift"]) == (
        "05",
        True,
    )
    assert {"payment.requires_action", "payment.succeeded"} <= await hook_types(
        webhooks, visit["payment_id"], {"payment.requires_action", "payment.succeeded"}
    )


async def test_a_failed_3ds_challenge_ends_at_the_failure_url(
    intake: httpx.AsyncClient, shop: tuple[str, list[dict[str, str]]], webhooks: WebhookReceiver
) -> None:
    shop_url, visits = shop
    merchant = await merchant_with_hooks(
        intake, webhooks, "Checkout 3DS Fail Shop", always_three_d_secure=True
    )
    session = await open_session(intake, merchant, shop_url, 12_000)
    async with phone_page() as page:
        # This range's issuer refuses every challenge, the right code included.
        await pay_in_browser(page, session["url"], fresh_number(CHALLENGE_FAILS), 1, "3ds-fail")
        await challenge_in_browser(page, "3ds-fail")
        await page.locator("#form-status.bad").wait_for(timeout=30_000)
        await shot(page, "3ds-fail-shown")
        await page.click(".cancel a")
        await page.wait_for_url(f"{shop_url}/failed?*", timeout=10_000)
    visit = visits[-1]
    assert (visit["path"], visit["status"]) == ("/failed", "declined")
    keys = (await intake.get("/v1/checkout/signing-keys")).json()
    assert documented_verifier()(visit, merchant["id"], keys)
    failed = (
        await intake.get(
            f"/v1/payments/{visit['payment_id']}",
            headers={"Authorization": f"Bearer {merchant['api_key']}"},
        )
    ).json()
    assert failed["status"] == "declined" and failed["response_code"] == "N8"
    assert failed["authentication"]["status"] == "failed"
    assert "payment.failed" in await hook_types(webhooks, visit["payment_id"], {"payment.failed"})


async def test_an_issuer_decline_ends_at_the_failure_url(
    intake: httpx.AsyncClient, shop: tuple[str, list[dict[str, str]]]
) -> None:
    shop_url, visits = shop
    merchant = await new_merchant(intake, "Checkout Decline Shop")
    # Over the simulator's 10.00 limit for this range: insufficient funds (51).
    session = await open_session(intake, merchant, shop_url, 2_500)
    async with phone_page() as page:
        await pay_in_browser(page, session["url"], fresh_number("40000099"), 1, "decline")
        await page.locator("#form-status.bad").wait_for(timeout=30_000)
        await shot(page, "decline-shown")
        await page.click(".cancel a")
        await page.wait_for_url(f"{shop_url}/failed?*", timeout=10_000)
    visit = visits[-1]
    assert (visit["path"], visit["status"]) == ("/failed", "declined")
    keys = (await intake.get("/v1/checkout/signing-keys")).json()
    assert documented_verifier()(visit, merchant["id"], keys)

    async def declined() -> bool:
        response = await intake.get(
            f"/v1/payments/{visit['payment_id']}",
            headers={"Authorization": f"Bearer {merchant['api_key']}"},
        )
        return bool(response.json().get("response_code") == "51")

    await eventually(declined)


@pytest.mark.bench
async def test_time_from_submit_to_the_shop(
    intake: httpx.AsyncClient, shop: tuple[str, list[dict[str, str]]]
) -> None:
    """A small benchmark: five frictionless approvals, from the click on Pay to the shop's
    success_url loaded in the browser; p50 and max go to <test logs>/checkout/timings.json."""
    shop_url, _ = shop
    merchant = await new_merchant(intake, "Checkout Timing Shop")
    elapsed = []
    async with phone_page() as page:
        for _ in range(5):
            session = await open_session(intake, merchant, shop_url, 30_000)
            await page.goto(session["url"])
            await page.fill("#cc-name", "AYSE YILMAZ")
            await page.fill("#cc-number", fresh_number("4111"))
            await page.fill("#cc-exp", "12/31")
            await page.fill("#cc-csc", "123")
            started = time.perf_counter()
            await page.click("#pay-button")
            await page.wait_for_url(f"{shop_url}/paid?*", timeout=30_000)
            elapsed.append(time.perf_counter() - started)
    p50 = statistics.median(elapsed)
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "timings.json").write_text(
        json.dumps({"submit_to_shop_s": elapsed, "p50_s": p50, "max_s": max(elapsed)}, indent=2)
    )
    print(f"submit -> shop page: p50 {p50:.2f} s, max {max(elapsed):.2f} s over {len(elapsed)}")
