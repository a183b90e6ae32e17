"""A real Prometheus (scripts/infra/prometheus.sh, its own folder and free port) scraping the
five running services: every target up, a real payment moves the counters, the rules load,
and the ops page shows the pipeline in a headless browser (screenshot in the state folder)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from sanalpos_common.testing import free_port
from tests.integration import support
from tests.integration.support import ROOT, ServiceProcess, close_batches, eventually
from tests.integration.test_end_to_end import approving_card, auth, payment_body, status_reaches

PROMETHEUS = ROOT / "scripts" / "infra" / "prometheus.sh"


def prometheus_sh(command: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        ["bash", str(PROMETHEUS), command], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"prometheus.sh {command}: {result.stderr[-3000:]}"
    return result.stdout.strip()


@pytest.fixture(scope="module")
async def prometheus(
    services: dict[str, ServiceProcess], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    """Its own data folder and port: never the state folder's Prometheus of `make up`."""
    env = {
        **os.environ,
        "SANALPOS_PROMETHEUS_DIR": str(tmp_path_factory.mktemp("prometheus")),
        "SANALPOS_PROMETHEUS_PORT": str(free_port()),
        "SANALPOS_PROMETHEUS_SCRAPE_INTERVAL": "1s",
        **{f"{name.upper()}_HTTP_PORT": str(s.port) for name, s in services.items()},
    }
    prometheus_sh("start", env)
    try:
        prometheus_sh("wait", env)
        async with httpx.AsyncClient(base_url=prometheus_sh("url", env), timeout=10) as client:
            yield client
    finally:
        prometheus_sh("stop", env)


async def query(prometheus: httpx.AsyncClient, expr: str) -> float:
    """The single value of `expr` (0 when it returns nothing yet)."""
    response = await prometheus.get("/api/v1/query", params={"query": expr})
    assert response.status_code == 200, response.text
    result = response.json()["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


async def every_target_up(
    prometheus: httpx.AsyncClient, services: dict[str, ServiceProcess]
) -> dict[str, str]:
    async def all_up() -> dict[str, str] | None:
        targets = (await prometheus.get("/api/v1/targets")).json()["data"]["activeTargets"]
        health = {t["labels"]["service"]: t["health"] for t in targets}
        return health if health == dict.fromkeys(services, "up") else None

    return await eventually(all_up, timeout_s=60, interval_s=1)


async def test_prometheus_scrapes_every_service(
    prometheus: httpx.AsyncClient, services: dict[str, ServiceProcess]
) -> None:
    assert set(await every_target_up(prometheus, services)) == set(services)


async def test_rules_are_loaded(prometheus: httpx.AsyncClient) -> None:
    groups = (await prometheus.get("/api/v1/rules")).json()["data"]["groups"]
    alerts = {r["name"] for g in groups for r in g["rules"] if r["type"] == "alerting"}
    assert {"SanalposServiceDown", "SanalposDeadLetter", "SanalposOutboxBacklogOld"} <= alerts
    assert all(g["rules"] and all(r["health"] != "err" for r in g["rules"]) for g in groups)


async def test_a_real_payment_moves_the_counters(
    prometheus: httpx.AsyncClient,
    intake: httpx.AsyncClient,
    services: dict[str, ServiceProcess],
    merchant: dict[str, Any],
) -> None:
    watched = {
        "accepted": 'sum(sanalpos_http_requests_total{service="intake",route="/v1/payments",'
        'method="POST",status="202"})',
        "scored": 'sum(sanalpos_messages_processed_total{service="fraud"})',
        "fraud_approved": 'sum(sanalpos_fraud_decisions_total{band="approve"})',
        "authorized": 'sum(sanalpos_payments_total{outcome="authorized"})',
        "latency": "sum(sanalpos_authorization_latency_seconds_count)",
        "ledger": 'sum(sanalpos_messages_processed_total{service="settlement"})',
        "published": 'sum(sanalpos_outbox_published_total{service="authorization"})',
        "batches": "sum(sanalpos_settlement_batches_closed_total)",
    }
    await every_target_up(prometheus, services)
    before = {name: await query(prometheus, expr) for name, expr in watched.items()}

    response = await intake.post(
        "/v1/payments", json=payment_body(approving_card()), headers=auth(merchant["api_key"])
    )
    assert response.status_code == 202, response.text
    await status_reaches(intake, merchant["api_key"], response.json()["id"], {"captured"})

    async def batch_closed() -> list[dict[str, Any]]:  # once settlement has booked the capture
        return await close_batches(services["settlement"].url, merchant["id"])

    await eventually(batch_closed, timeout_s=30, interval_s=1)

    async def moved() -> dict[str, float] | None:
        now = {name: await query(prometheus, expr) for name, expr in watched.items()}
        return now if all(now[name] > before[name] for name in watched) else None

    try:
        await eventually(moved, timeout_s=60, interval_s=1)
    except AssertionError:
        now = {name: await query(prometheus, expr) for name, expr in watched.items()}
        stuck = [name for name in watched if now[name] <= before[name]]
        raise AssertionError(f"counters that did not move: {stuck} ({before} -> {now})") from None
    assert await query(prometheus, "sum(sanalpos_db_pool_max_connections)") > 0


async def test_the_ops_page_shows_the_live_pipeline_in_a_browser(
    prometheus: httpx.AsyncClient, services: dict[str, ServiceProcess]
) -> None:
    from playwright.async_api import async_playwright

    await every_target_up(prometheus, services)
    chromium = shutil.which("chromium")
    assert chromium, "chromium not found: run `bash scripts/infra/chromium.sh install`"
    screenshot = support.run_log_dir() / "ops-page.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            response = await page.goto(f"{prometheus.base_url}/consoles/sanalpos.html")
            assert response is not None and response.status == 200
            assert await page.title() == "sanalpos ops"
            cards = page.locator("#services .stage")
            assert await cards.count() == len(services)
            assert await page.locator("#services .up").count() == len(services)
            pipeline = await page.locator("#pipeline").inner_text()
            for stage in services:
                assert stage in pipeline
            assert "processed/s" in pipeline and "lag" in pipeline
            await page.screenshot(path=str(screenshot), full_page=True)
        finally:
            await browser.close()
    assert screenshot.stat().st_size > 10_000
