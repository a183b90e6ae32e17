"""The hosted payment page in a real browser (Debian's Chromium driven by Playwright) against
a real intake HTTP server (uvicorn on a free port, its own database schema) and a local shop
receiving the browser at success_url / failure_url.

Turkish and English, a 360x740 phone and a desktop; a field error next to its field; the brand
and the installment table appearing as the number is typed; a submit whose card was encrypted
in the browser (the card number nowhere in intake's database); a double click paying once; a
replayed JWE refused; an expired session's page; axe-core with no serious or critical finding.
A screenshot of each step goes to <test logs>/checkout/."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, Request, async_playwright

from intake.entrypoints.http.checkout_page import messages
from sanalpos_common import topics
from sanalpos_common.schemas.events import PaymentDeclined
from sanalpos_common.service import Platform
from sanalpos_common.settings import DEV_ADMIN_TOKEN
from sanalpos_common.testing import free_port

from .conftest import authorized, feed, private_intake

pytestmark = pytest.mark.integration
ADMIN = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
CARD_NUMBER = "4111111111111111"
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}
# The whole-system tests' log folder (tests/integration/support.run_log_dir), not importable
# from a service's tests: inside this run's state folder.
SHOTS = (
    Path(os.environ.get("SANALPOS_STATE_DIR") or Path(__file__).resolve().parents[4] / ".state")
    / "test-logs"
    / "checkout"
)


@dataclass
class Shop:
    """The merchant's site: records every browser visit to /paid and /failed."""

    port: int
    visits: list[dict[str, str]] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def running_shop() -> Iterator[Shop]:
    shop = Shop(free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/favicon.ico":  # the browser's own request, not a shopper's visit
                self.send_error(404)
                return
            shop.visits.append(
                {"path": parts.path, **{k: v[0] for k, v in parse_qs(parts.query).items()}}
            )
            body = f"<!doctype html><title>Shop</title><h1>shop {parts.path}</h1>".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", shop.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield shop
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class World:
    platform: Platform
    base: str
    api: httpx.AsyncClient
    browser: Browser
    shop: Shop

    async def merchant(self, **fields: Any) -> dict[str, Any]:
        created = await self.api.post(
            "/admin/merchants", json={"name": "Moda Kitap Evi", **fields}, headers=ADMIN
        )
        assert created.status_code == 201, created.text
        body = dict(created.json())
        body["auth"] = {"Authorization": f"Bearer {body['api_key']}"}
        return body

    async def session(self, merchant: dict[str, Any], **fields: Any) -> dict[str, Any]:
        body = {
            "amount": 125000,
            "currency": "TRY",
            "order_id": f"ORD-{uuid.uuid4().hex[:6]}",
            "basket": [
                {"name": "Tutunamayanlar", "quantity": 1, "unit_amount": 75000},
                {"name": "Bookmark", "quantity": 2, "unit_amount": 25000},
            ],
            "installments": [1, 3, 6],
            "success_url": f"{self.shop.base}/paid",
            "failure_url": f"{self.shop.base}/failed",
            **fields,
        }
        created = await self.api.post("/v1/checkout/sessions", json=body, headers=merchant["auth"])
        assert created.status_code == 201, created.text
        return dict(created.json())

    async def payments_of(self, session_id: str) -> list[Any]:
        return list(
            await self.platform.pool.fetch(
                "SELECT * FROM payments WHERE checkout_session_id = $1", session_id
            )
        )


@pytest.fixture(scope="module")
async def world() -> AsyncIterator[World]:
    chromium = shutil.which("chromium")
    assert chromium, "chromium not found: run `bash scripts/infra/chromium.sh install`"
    SHOTS.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running_shop() as shop:
        async with private_intake(public_base_url=base) as platform:
            server = uvicorn.Server(
                uvicorn.Config(
                    platform.runtime.app, host="127.0.0.1", port=port, log_level="warning"
                )
            )
            serving = asyncio.create_task(server.serve())
            while not server.started:
                await asyncio.sleep(0.05)
            try:
                async with (
                    httpx.AsyncClient(base_url=base) as api,
                    async_playwright() as playwright,
                ):
                    browser = await playwright.chromium.launch(
                        executable_path=chromium, headless=True
                    )
                    try:
                        yield World(platform, base, api, browser, shop)
                    finally:
                        await browser.close()
            finally:
                server.should_exit = True
                await serving


async def new_page(world: World, viewport: dict[str, int], **options: Any) -> Page:
    context = await world.browser.new_context(viewport=viewport, **options)
    return await context.new_page()


async def shot(page: Page, name: str) -> Path:
    path = SHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 5_000
    return path


async def fill_card(page: Page, number: str = CARD_NUMBER) -> None:
    await page.fill("#cc-name", "AYSE YILMAZ")
    await page.click("#cc-number")
    await page.keyboard.type(number, delay=15)
    await page.fill("#cc-exp", "12/31")
    await page.fill("#cc-csc", "123")


async def axe_findings(page: Page) -> list[str]:
    results = await Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']}"
        for v in results.response["violations"]
        if v["impact"] in {"serious", "critical"}
    ]


async def test_the_turkish_page_on_a_phone(world: World) -> None:
    merchant = await world.merchant()
    session = await world.session(merchant)
    page = await new_page(world, PHONE)
    response = await page.goto(session["url"])
    assert response is not None and response.status == 200
    t = messages("tr")
    assert await page.inner_text("h1") == t["order_summary"]
    assert "1.250,00 TL" in await page.inner_text("#amount")
    assert await page.get_attribute("html", "lang") == "tr"
    # Fits a 360 px screen: nothing wider than the viewport.
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    await shot(page, "01-tr-phone")
    assert await axe_findings(page) == []

    # A field error next to its field, tied to it for assistive technology.
    await page.click("#cc-number")
    await page.keyboard.type("4111111111111112")
    await page.keyboard.press("Tab")
    error = page.locator("#cc-number-error")
    await error.wait_for(state="visible")
    assert await error.inner_text() == t["js_number_invalid"]
    assert await page.get_attribute("#cc-number", "aria-invalid") == "true"
    described = await page.get_attribute("#cc-number", "aria-describedby") or ""
    assert "cc-number-error" in described.split()
    number_box = await page.locator("#cc-number").bounding_box()
    error_box = await error.bounding_box()
    assert number_box and error_box and 0 <= error_box["y"] - number_box["y"] < 120
    await shot(page, "02-tr-phone-field-error")
    assert await axe_findings(page) == []

    # The brand from the number's range and the installments from its BIN, as it is typed.
    await page.fill("#cc-number", "")
    await page.keyboard.type("4111 11")
    assert await page.inner_text("#cc-number-brand") == "Visa"
    await page.locator("#installments").wait_for(state="visible")
    rows = page.locator("#installment-rows tr")
    assert await rows.count() == 3
    assert [await r.get_attribute("data-count") for r in await rows.all()] == ["1", "3", "6"]
    assert "416,66 TL" in await rows.nth(1).inner_text()
    await page.keyboard.type("11 1111 1111")  # the error stays until the number is right
    await page.locator("#cc-number-error").wait_for(state="hidden")
    assert await page.get_attribute("#cc-number", "aria-invalid") is None
    await shot(page, "03-tr-phone-installments")
    await page.context.close()


async def test_the_english_page_on_a_desktop_with_the_language_switch(world: World) -> None:
    merchant = await world.merchant()
    session = await world.session(merchant)
    page = await new_page(world, DESKTOP)
    await page.goto(session["url"])
    await page.click("a[hreflang=en]")
    await page.wait_for_url("**lang=en")
    t = messages("en")
    assert await page.get_attribute("html", "lang") == "en"
    assert await page.inner_text("h1") == t["order_summary"]
    assert "TRY 1,250.00" in await page.inner_text("#amount")
    assert await page.inner_text("label[for=cc-number]") == t["card_number"]
    # Keyboard: Tab reaches the card fields in order, and the focus is visible.
    await page.focus("#cc-name")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.id") == "cc-number"
    outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
    await shot(page, "04-en-desktop")
    assert await axe_findings(page) == []
    await page.context.close()


async def test_a_submit_pays_once_with_the_card_encrypted_in_the_browser(world: World) -> None:
    merchant = await world.merchant()
    session = await world.session(merchant)
    page = await new_page(world, PHONE)
    sent: list[dict[str, Any]] = []

    def watch(request: Request) -> None:
        if request.url.endswith("/pay") and request.method == "POST":
            sent.append({"body": request.post_data or "", "headers": request.headers})

    page.on("request", watch)
    await page.goto(session["url"])
    await fill_card(page)
    await page.locator("#installment-rows tr").nth(1).wait_for()
    await page.check("#inst-3")
    await shot(page, "05-filled")
    await page.dblclick("#pay-button")  # a double click pays once
    t = messages("tr")
    await page.wait_for_function(
        "text => document.getElementById('form-status').textContent === text",
        arg=t["js_processing"],
    )
    await shot(page, "06-processing")
    (payment,) = await world.payments_of(session["id"])
    assert (payment["installments"], payment["card_last4"]) == (3, "1111")
    (request,) = sent
    body = json.loads(request["body"])
    assert set(body) == {"encrypted_card", "installments"} and body["installments"] == 3
    assert CARD_NUMBER not in request["body"] and "4111" not in request["body"]
    assert body["encrypted_card"].count(".") == 4
    header = json.loads(_b64(body["encrypted_card"].split(".")[0]))
    assert header["aud"] == session["id"] and header["alg"] == "RSA-OAEP-256"
    assert header["enc"] == "A256GCM" and {"iat", "jti", "kid"} <= set(header)
    assert not await _card_number_in_database(world)

    # The replayed JWE is refused, even by the page's own session and CSRF token.
    csrf = request["headers"]["x-csrf-token"]
    replay = await world.api.post(
        f"/checkout/{session['id']}/pay",
        content=request["body"],
        headers={
            "Content-Type": "application/json",
            "X-CSRF-Token": csrf,
            "Cookie": f"cs_csrf={csrf}",
        },
    )
    assert replay.status_code == 200  # the payment in flight is answered, not paid again
    assert replay.json()["payment_id"] == str(payment["id"])
    assert len(await world.payments_of(session["id"])) == 1

    await feed(
        world.platform.pool,
        topics.PAYMENT_AUTHORIZED,
        authorized(payment["id"], merchant["id"], 125000, capture=True),
    )
    await page.wait_for_url(f"{world.shop.base}/paid?*")
    visit = world.shop.visits[-1]
    assert visit["path"] == "/paid" and visit["status"] == "succeeded"
    assert visit["session_id"] == session["id"] and visit["payment_id"] == str(payment["id"])
    await shot(page, "07-back-at-the-shop")
    replay_after = await world.api.post(
        f"/checkout/{session['id']}/pay",
        content=request["body"],
        headers={
            "Content-Type": "application/json",
            "X-CSRF-Token": csrf,
            "Cookie": f"cs_csrf={csrf}",
        },
    )
    assert replay_after.status_code == 409  # completed
    await page.context.close()


async def test_a_decline_lets_the_shopper_retry_and_a_replayed_jwe_is_refused(
    world: World,
) -> None:
    merchant = await world.merchant()
    session = await world.session(merchant)
    page = await new_page(world, DESKTOP)
    sent: list[str] = []
    page.on(
        "request",
        lambda r: sent.append(r.post_data or "") if r.url.endswith("/pay") else None,
    )
    await page.goto(f"{session['url']}?lang=en")
    await fill_card(page)
    await page.click("#pay-button")
    await _eventually(lambda: world.payments_of(session["id"]))
    (payment,) = await world.payments_of(session["id"])
    await feed(
        world.platform.pool,
        topics.PAYMENT_DECLINED,
        PaymentDeclined(
            payment_id=payment["id"],
            merchant_id=merchant["id"],
            amount=125000,
            currency="TRY",
            response_code="51",
            reason="insufficient funds",
            declined_by="issuer",
        ),
    )
    t = messages("en")
    status = page.locator("#form-status")
    await status.filter(has_text=t["js_reason_insufficient_funds"]).wait_for()
    assert t["js_attempts_left"].replace("{n}", "2") in await status.inner_text()
    assert await page.is_enabled("#pay-button")
    await shot(page, "08-en-declined")

    csrf = await page.evaluate("JSON.parse(document.getElementById('checkout').dataset.page).csrf")
    replay = await world.api.post(
        f"/checkout/{session['id']}/pay",
        content=sent[0],
        headers={
            "Content-Type": "application/json",
            "X-CSRF-Token": csrf,
            "Cookie": f"cs_csrf={csrf}",
        },
    )
    assert replay.status_code == 422, replay.text
    assert replay.json()["errors"][0]["code"] == "jwe_reused"
    assert len(await world.payments_of(session["id"])) == 1
    assert not await _card_number_in_database(world)
    await page.context.close()


async def test_an_expired_session_gets_a_clear_page(world: World) -> None:
    merchant = await world.merchant()
    session = await world.session(merchant)
    await world.platform.pool.execute(
        "UPDATE checkout_sessions SET expires_at = now() - interval '1 minute' WHERE id = $1",
        session["id"],
    )
    page = await new_page(world, PHONE)
    response = await page.goto(f"{session['url']}?lang=en")
    assert response is not None and response.status == 410
    assert await page.inner_text("h1") == messages("en")["expired_title"]
    await shot(page, "09-en-expired")
    assert await axe_findings(page) == []
    await page.context.close()


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def _eventually(probe: Any, timeout_s: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        found = await probe()
        if found:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.1)


async def _card_number_in_database(world: World) -> list[str]:
    """Tables of intake's schema holding the test card number in any column, as text."""
    pool = world.platform.pool
    tables = await pool.fetch(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
    )
    found = []
    for row in tables:
        name = row["table_name"]
        hit = await pool.fetchval(
            f'SELECT 1 FROM "{name}" t WHERE t::text LIKE $1 LIMIT 1',  # noqa: S608 - catalog
            f"%{CARD_NUMBER}%",
        )
        if hit:
            found.append(name)
    outbox = await pool.fetchval(  # the events as published: bytes, not text
        "SELECT 1 FROM outbox WHERE position($1::bytea in payload) > 0 LIMIT 1",
        CARD_NUMBER.encode(),
    )
    return [*found, *(["outbox payload"] if outbox else [])]
