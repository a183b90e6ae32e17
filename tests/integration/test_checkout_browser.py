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
from tests.integration.conftest import new_merchant
from tests.integration.support import ROOT, eventually

DOC = ROOT / "docs" / "checkout.md"
SHOTS = support.test_log_dir() / "checkout"


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


async def open_session(
    intake: httpx.AsyncClient, merchant: dict[str, Any], shop_url: str, amount: int
) -> dict[str, Any]:
    response = await intake.post(
        "/v1/checkout/sessions",
        json={
            "amount": amount,
            "currency": "TRY",
            "order_id": "ORD-browser",
            "installments": [1, 3, 6],
            "success_url": f"{shop_url}/paid",
            "failure_url": f"{shop_url}/failed",
        },
        headers={"Authorization": f"Bearer {merchant['api_key']}"},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_a_frictionless_approval_in_3_installments_returns_signed_to_the_shop(
    intake: httpx.AsyncClient, shop: tuple[str, list[dict[str, str]]]
) -> None:
    shop_url, visits = shop
    merchant = await new_merchant(intake, "Checkout Shop")
    session = await open_session(intake, merchant, shop_url, 45_000)
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
    assert p50 < 10, elapsed
