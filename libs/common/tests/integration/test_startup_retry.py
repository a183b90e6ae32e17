"""A service whose PostgreSQL and Kafka come up after it does waits for them (bounded retry
with backoff in the shared start-up) instead of exiting. The "late" infrastructure is a TCP
forwarder that starts listening only a few seconds after the service began starting."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from sanalpos_common.service import start_platform
from sanalpos_common.settings import ServiceSettings, local_database_url, service_config
from sanalpos_common.testing import free_port

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092")
DATABASE_URL = os.environ.get("SETTLEMENT_DATABASE_URL", local_database_url("settlement"))
SETTLEMENT_MIGRATIONS = Path(__file__).resolve().parents[4] / "services/settlement/migrations"


@pytest.fixture(autouse=True)
def _keep_test_logging() -> Iterator[None]:
    """start_platform configures the root logger for a service process; put pytest's back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


class _Settings(ServiceSettings):
    model_config = service_config("STARTUPTEST_")


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def late_forwarder(target: str, delay_s: float) -> AsyncIterator[int]:
    """A loopback port that refuses connections for `delay_s`, then forwards to `target`."""
    host, port = target.rsplit(":", 1)
    listen_port = free_port()

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))

    servers: list[asyncio.Server] = []

    async def open_later() -> None:
        await asyncio.sleep(delay_s)
        servers.append(await asyncio.start_server(forward, "127.0.0.1", listen_port))

    opener = asyncio.create_task(open_later())
    try:
        yield listen_port
    finally:
        opener.cancel()
        for server in servers:
            server.close()


def _with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit(":", 1)[0] + f":{port}"
    return urlunsplit(parts._replace(netloc=netloc))


async def test_start_up_waits_for_late_database_and_broker(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    async with (
        late_forwarder(urlsplit(DATABASE_URL).netloc.rsplit("@", 1)[-1], 3.0) as pg_port,
        late_forwarder(BOOTSTRAP.split(",")[0], 10.0) as kafka_port,
    ):
        monkeypatch.setenv("STARTUPTEST_DATABASE_URL", _with_port(DATABASE_URL, pg_port))
        monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{kafka_port}")
        monkeypatch.setenv("STARTUPTEST_HTTP_PORT", str(free_port()))
        monkeypatch.setenv("SANALPOS_STARTUP_TIMEOUT_S", "60")
        settings = _Settings()  # type: ignore[call-arg]
        platform = await start_platform("settlement", settings, SETTLEMENT_MIGRATIONS)
        try:
            assert await platform.pool.fetchval("SELECT 1") == 1
            assert await platform.producer.partitions_for("payment.captured.v1")
        finally:
            for close in reversed(platform.runtime.closers):
                await close()
    logged = capfd.readouterr().out  # the service's JSON log lines
    assert "database not reachable" in logged
    assert "kafka not reachable" in logged


async def test_start_up_gives_up_after_its_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STARTUPTEST_DATABASE_URL", _with_port(DATABASE_URL, free_port()))
    monkeypatch.setenv("STARTUPTEST_HTTP_PORT", str(free_port()))
    monkeypatch.setenv("SANALPOS_STARTUP_TIMEOUT_S", "2")
    settings = _Settings()  # type: ignore[call-arg]
    started = asyncio.get_running_loop().time()
    with pytest.raises(OSError):
        await start_platform("settlement", settings, SETTLEMENT_MIGRATIONS)
    assert asyncio.get_running_loop().time() - started < 15
