"""CSV exports against a real intake server (uvicorn on a loopback port, real PostgreSQL):
clients that read an export slowly must not take the connections payments need.

A slow reader here is a socket with a tiny receive buffer that reads the status line and
then nothing more: the server's writes back up, so its export stays suspended mid-stream,
which is what a merchant on a slow link does to a large export."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime

import httpx
import pytest
import uvicorn

from sanalpos_common.service import Platform
from sanalpos_common.settings import DEV_ADMIN_TOKEN
from sanalpos_common.testing import free_port, wait_for

from .conftest import private_intake

CAP = 3  # INTAKE_EXPORT_MAX_CONCURRENT for this server
SLOW_READERS = 12  # more than the main pool's 10 connections
ROWS = 30_000  # a few MB of CSV: far more than the socket buffers between server and reader
CARD = {"number": "4111111111111111", "exp_month": 12, "exp_year": 2031, "cvc": "123"}
PATIENCE_S = 30.0  # how long a request may take before we call it stuck (not a timing test)


@dataclass
class Served:
    platform: Platform
    base_url: str
    port: int
    api_key: str
    merchant_id: str
    slow: list[SlowReader] = field(default_factory=list)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


@dataclass
class SlowReader:
    """One export request whose reader stops after the head of the response."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    status: int = 0
    head: str = ""

    @classmethod
    async def start(cls, port: int, api_key: str) -> SlowReader:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: small window
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=1024)
        writer.write(
            b"GET /v1/payments/export HTTP/1.1\r\nHost: intake\r\n"
            + f"Authorization: Bearer {api_key}\r\n\r\n".encode()
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), PATIENCE_S)
        slow = cls(reader, writer, int(status_line.split()[1]))
        if slow.status != 200:  # a refusal is short: read it whole
            slow.head = (await asyncio.wait_for(reader.read(4096), PATIENCE_S)).decode()
        return slow

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


async def insert_many_payments(platform: Platform, merchant_id: str, count: int) -> None:
    await platform.pool.execute(
        "INSERT INTO payments (id, merchant_id, amount, currency, capture, installments, "
        "status, status_rank, card_brand, card_bin, card_last4, card_exp_month, card_exp_year, "
        "card_fingerprint, order_id, created_at, updated_at) "
        "SELECT gen_random_uuid(), $1, 1000 + n, 'TRY', true, 1, 'captured', 3, 'visa', "
        "'411111', '1111', 12, 2031, 'fp-export', 'order-' || n, "
        "now() - make_interval(secs => n), now() - make_interval(secs => n) "
        "FROM generate_series(1, $2) AS n",
        merchant_id,
        count,
    )


@pytest.fixture(scope="module")
async def served() -> AsyncIterator[Served]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("INTAKE_EXPORT_MAX_CONCURRENT", str(CAP))
        slow: list[SlowReader] = []
        async with private_intake() as platform:
            port = free_port()
            config = uvicorn.Config(
                platform.runtime.app, host="127.0.0.1", port=port, log_config=None
            )
            server = uvicorn.Server(config)
            task = asyncio.create_task(server.serve())
            try:
                await wait_for(lambda: asyncio.sleep(0, server.started), timeout=60)
                base_url = f"http://127.0.0.1:{port}"
                async with httpx.AsyncClient(base_url=base_url, timeout=PATIENCE_S) as client:
                    created = await client.post(
                        "/admin/merchants",
                        json={"name": "Export Shop"},
                        headers={"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"},
                    )
                assert created.status_code == 201, created.text
                merchant = created.json()
                await insert_many_payments(platform, merchant["id"], ROWS)
                yield Served(platform, base_url, port, merchant["api_key"], merchant["id"], slow)
            finally:
                for reader in slow:
                    await reader.close()
                server.should_exit = True
                await task


async def test_slow_exports_leave_payments_their_connections_and_over_the_cap_get_503(
    served: Served,
) -> None:
    served.slow.extend(
        await asyncio.gather(
            *(SlowReader.start(served.port, served.api_key) for _ in range(SLOW_READERS))
        )
    )

    # While the admitted exports hang mid-stream, payments are taken and read as usual.
    async with httpx.AsyncClient(base_url=served.base_url, timeout=PATIENCE_S) as client:
        order = f"ord-{uuid.uuid4()}"
        created = await client.post(
            "/v1/payments",
            json={"amount": 1500, "currency": "TRY", "card": CARD, "order_id": order},
            headers=served.auth,
        )
        assert created.status_code == 202, created.text
        read = await client.get(f"/v1/payments/{created.json()['id']}", headers=served.auth)
        assert read.status_code == 200
        assert read.json()["order_id"] == order

    # ... and the stalled exports hold no connection of their own pool either: pages are
    # short queries, none is open while a page waits for the network.
    exports = served.platform.runtime.app.state.container.exports
    assert exports.slots.in_use == CAP
    await wait_for(
        lambda: asyncio.sleep(0, exports.pool.get_idle_size() == exports.pool.get_size())
    )

    statuses = sorted(s.status for s in served.slow)
    assert statuses == [200] * CAP + [503] * (SLOW_READERS - CAP)
    refused = next(s for s in served.slow if s.status == 503)
    assert "retry-after:" in refused.head.lower()
    assert "application/problem+json" in refused.head
    assert "/export-capacity" in refused.head


async def test_a_slot_comes_back_when_a_slow_reader_goes_and_the_export_is_complete(
    served: Served,
) -> None:
    for slow in served.slow:
        await slow.close()
    served.slow.clear()

    async def full_export() -> httpx.Response | None:
        async with httpx.AsyncClient(base_url=served.base_url, timeout=PATIENCE_S) as client:
            response = await client.get("/v1/payments/export", headers=served.auth)
        return response if response.status_code == 200 else None

    response = await wait_for(full_export, timeout=PATIENCE_S, interval=0.5)
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) >= ROWS  # every row, paged (plus the payment the test above made)
    ids = [r["id"] for r in rows]
    assert len(set(ids)) == len(ids)  # pages neither repeat nor skip at their edges
    stamps = [datetime.fromisoformat(r["created_at"]) for r in rows]
    assert stamps == sorted(stamps, reverse=True)
