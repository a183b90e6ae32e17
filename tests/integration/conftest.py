"""Whole-system fixtures: the real broker and databases (started once by the project's
own scripts, or taken from the environment), and the five services as real processes."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from intake.config import DEMO_API_KEY
from sanalpos_common.settings import DEV_ADMIN_TOKEN
from tests.integration.support import (
    MailSink,
    ServiceProcess,
    WebhookReceiver,
    infra_env,
    run_log_dir,
    start_groups_at_end,
    start_services,
    stop_containers,
    stop_services,
    wait_ready,
)

DEMO_KEY = DEMO_API_KEY
ADMIN_TOKEN = DEV_ADMIN_TOKEN


@pytest.fixture(scope="session")
def endpoints() -> Iterator[dict[str, str]]:
    env = infra_env()
    os.environ.update(env)
    yield env
    stop_containers()


@pytest.fixture(scope="session")
def mail() -> Iterator[MailSink]:
    sink = MailSink()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def services(endpoints: dict[str, str], mail: MailSink) -> Iterator[dict[str, ServiceProcess]]:
    log_dir = run_log_dir()
    asyncio.run(start_groups_at_end(endpoints["KAFKA_BOOTSTRAP_SERVERS"]))
    running = start_services({**endpoints, **mail.start()}, log_dir)
    try:
        wait_ready(running)
        yield running
    finally:
        stop_services(running)


@pytest.fixture(scope="session")
async def intake(services: dict[str, ServiceProcess]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=services["intake"].url, timeout=10) as client:
        yield client


@pytest.fixture(scope="session")
def webhooks() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    receiver.start()
    yield receiver
    receiver.stop()


def cutoff_far_from_now(time_zone: str = "Europe/Istanbul") -> str:
    """An end-of-day cut-off twelve hours away, so no test crosses one (a void after capture
    is allowed only before it, and batches close at it)."""
    local = datetime.now(ZoneInfo(time_zone)) + timedelta(hours=12)
    return f"{local.hour:02d}:{local.minute:02d}"


async def new_merchant(intake: httpx.AsyncClient, name: str) -> dict[str, Any]:
    response = await intake.post(
        "/admin/merchants",
        json={"name": name, "cutoff_time": cutoff_far_from_now()},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture(scope="session")
async def merchant(intake: httpx.AsyncClient, webhooks: WebhookReceiver) -> dict[str, Any]:
    """A fresh merchant with a webhook endpoint pointing at the test receiver."""
    created = await new_merchant(intake, "Integration Shop")
    url = (
        webhooks.start()
        if webhooks.server is None
        else (f"http://127.0.0.1:{webhooks.server.server_address[1]}")
    )
    response = await intake.post(
        "/v1/webhook-endpoints",
        json={"url": f"{url}/hooks"},
        headers={"Authorization": f"Bearer {created['api_key']}"},
    )
    assert response.status_code == 201, response.text
    return {**created, "webhook_secret": response.json()["secret"]}


@pytest.fixture(scope="session")
async def databases(endpoints: dict[str, str]) -> AsyncIterator[dict[str, asyncpg.Pool]]:
    pools = {
        name: await asyncpg.create_pool(
            endpoints[f"{name.upper()}_DATABASE_URL"], min_size=1, max_size=2
        )
        for name in ("intake", "fraud", "authorization", "settlement", "notification")
    }
    yield pools
    for pool in pools.values():
        await pool.close()
