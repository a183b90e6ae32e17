"""The notification service in-process against the real local Kafka and PostgreSQL.

Isolation from anything else using the same infrastructure:
- a private PostgreSQL schema (dropped afterwards) through the DSN's search_path;
- a private Kafka consumer group whose offsets start at the current end of every topic,
  so the run neither replays old traffic nor competes with a running notification service.
Each test still uses its own merchant ids. Shopper emails go to a real SMTP server
(aiosmtpd, in-process on a free port) that records every message it accepts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope as SmtpEnvelope
from aiosmtpd.smtp import Session as SmtpSession
from pydantic import SecretStr

from notification.bootstrap import bootstrap
from notification.config import NotificationSettings, StaticEndpoint
from notification.domain.signing import generate_secret
from notification.service_layer.delivery_worker import DeliveryWorker
from notification.service_layer.handlers import NotificationHandlers
from sanalpos_common import topics
from sanalpos_common.crypto.sealed import SealedKeyring
from sanalpos_common.crypto.webhook_secrets import open_webhook_secret, seal_webhook_secret
from sanalpos_common.messaging.admin import ensure_topics
from sanalpos_common.runtime import serve
from sanalpos_common.schemas.codec import encode, new_envelope
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import WebhookEndpointRegistered
from sanalpos_common.service import Platform
from sanalpos_common.settings import (
    DEV_WEBHOOK_SEALED_KEYRING,
    DEV_WEBHOOK_SEALED_PUBLIC,
    local_database_url,
)
from sanalpos_common.testing import free_port, start_group_at_end
from sanalpos_common.testing import wait_for as shared_wait_for

# Endpoints from the environment win (make test points them at its own instance).
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092")
BASE_DSN = os.environ.get("NOTIFICATION_DATABASE_URL", local_database_url("notification"))
DLQ = topics.dead_letter_topic("notification")
# The topics the service's handler table routes; listing them calls none of its dependencies.
CONSUMED_TOPICS = NotificationHandlers(lambda uow: None, False, 0.0, None).table().topics  # type: ignore[arg-type,return-value]
T = TypeVar("T")
INTAKE_KEYRING = SealedKeyring.from_json(DEV_WEBHOOK_SEALED_PUBLIC)
"""What intake seals announced secrets with (the development keyring's public half)."""


async def wait_for(
    probe: Callable[[], Awaitable[T]], *, timeout: float = 10.0, interval: float = 0.05
) -> T:
    return await shared_wait_for(probe, timeout=timeout, interval=interval)


# --------------------------------------------------------------------------- webhook receiver


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: str
    at: float


@dataclass
class Receiver:
    """A merchant's webhook endpoint: records every POST, answers from a per-path script."""

    port: int = 0
    received: list[Received] = field(default_factory=list)
    _codes: dict[str, list[int]] = field(default_factory=dict)
    _delays: dict[str, list[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, codes: list[int], delays: list[float] | None = None) -> None:
        with self._lock:
            self._codes[path] = list(codes)
            self._delays[path] = list(delays or [])

    def requests(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def _answer(self, path: str, headers: dict[str, str], body: str) -> tuple[int, float]:
        with self._lock:
            self.received.append(Received(path, headers, body, time.monotonic()))
            codes, delays = self._codes.get(path, []), self._delays.get(path, [])
            return (codes.pop(0) if codes else 200), (delays.pop(0) if delays else 0.0)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0"))).decode()
            headers = {k.lower(): v for k, v in self.headers.items()}
            code, delay = receiver._answer(self.path, headers, body)
            if delay:
                time.sleep(delay)
            with contextlib.suppress(OSError):
                self.send_response(code)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the timeout test hangs up on purpose


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    server = _QuietServer(("127.0.0.1", 0), _handler(receiver))
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()


# --------------------------------------------------------------------------- SMTP server


@dataclass
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    """The message exactly as received (after DATA)."""


@dataclass
class SmtpSink:
    """A real SMTP server (aiosmtpd) on a fixed free port, which tests can stop and start
    again. Recipients in `refuse` are answered 550 at RCPT."""

    port: int
    received: list[Mail] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    _controller: Controller | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self,
        server: SMTPServer,
        session: SmtpSession,
        envelope: SmtpEnvelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(
        self, server: SMTPServer, session: SmtpSession, envelope: SmtpEnvelope
    ) -> str:
        content = envelope.original_content or envelope.content
        assert isinstance(content, bytes)
        with self._lock:
            self.received.append(
                Mail(str(envelope.mail_from), list(envelope.rcpt_tos), bytes(content))
            )
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Mail]:
        with self._lock:
            return [m for m in self.received if address in m.rcpt_tos]

    def start(self) -> None:
        assert self._controller is None
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture(scope="session")
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink(port=free_port())
    sink.start()
    yield sink
    sink.stop()


# --------------------------------------------------------------------------- the service


@dataclass
class Service:
    platform: Platform
    settings: NotificationSettings
    base_url: str
    producer: AIOKafkaProducer
    static_merchant: str
    static_secret: str
    static_path: str

    @property
    def pool(self) -> asyncpg.Pool:
        return self.platform.pool

    @property
    def worker(self) -> DeliveryWorker:
        check = self.platform.health.checks["delivery-worker"]
        worker = getattr(check, "__self__", None)
        assert isinstance(worker, DeliveryWorker)
        return worker

    async def publish(self, topic: str, envelope: Envelope[Any]) -> bytes:
        value = encode(envelope)
        await self.publish_raw(topic, value, str(envelope.correlation_id).encode())
        return value

    async def publish_raw(self, topic: str, value: bytes, key: bytes) -> None:
        await self.producer.send_and_wait(topic, value=value, key=key)

    async def endpoint_has(self, endpoint_id: uuid.UUID, secret: str, enabled: bool) -> bool:
        row = await self.pool.fetchrow(
            "SELECT merchant_id, secret_ciphertext FROM webhook_endpoints "
            "WHERE endpoint_id = $1 AND enabled = $2",
            endpoint_id,
            enabled,
        )
        if row is None:
            return False
        keyring = SealedKeyring.from_json(DEV_WEBHOOK_SEALED_KEYRING)
        opened = open_webhook_secret(
            keyring, row["secret_ciphertext"], row["merchant_id"], endpoint_id
        )
        return opened == secret

    async def register_endpoint(
        self,
        merchant_id: str,
        url: str,
        secret: str | None = None,
        *,
        endpoint_id: uuid.UUID | None = None,
        enabled: bool = True,
        wait: bool = True,
    ) -> tuple[uuid.UUID, str]:
        endpoint_id = endpoint_id or uuid.uuid4()
        secret = secret or generate_secret()
        payload = WebhookEndpointRegistered(
            endpoint_id=endpoint_id,
            merchant_id=merchant_id,
            url=url,
            secret_ciphertext=seal_webhook_secret(INTAKE_KEYRING, secret, merchant_id, endpoint_id),
            enabled=enabled,
        )
        envelope = new_envelope(
            topics.WEBHOOK_ENDPOINT_REGISTERED,
            payload,
            correlation_id=endpoint_id,
            producer="tests",
        )
        await self.publish(topics.WEBHOOK_ENDPOINT_REGISTERED, envelope)
        if wait:  # endpoints and payments travel on different topics: no ordering between them
            await wait_for(lambda: self.endpoint_has(endpoint_id, secret, enabled))
        return endpoint_id, secret


@pytest.fixture(scope="session")
async def service(receiver: Receiver, smtp: SmtpSink) -> AsyncIterator[Service]:
    run = uuid.uuid4().hex[:10]
    schema = f"notification_test_{run}"
    admin = await asyncpg.connect(BASE_DSN)
    await admin.execute(f'CREATE SCHEMA "{schema}"')

    await ensure_topics(KAFKA, [*CONSUMED_TOPICS, DLQ])
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, enable_idempotence=True, acks="all")
    await producer.start()
    group = f"notification-test-{run}"
    await start_group_at_end(KAFKA, group, CONSUMED_TOPICS, producer)

    static_merchant, static_secret = f"static-{run}", generate_secret()
    static_path = f"/static/{static_merchant}"
    settings = NotificationSettings(
        database_url=SecretStr(f"{BASE_DSN}?search_path={schema}"),
        http_port=free_port(),
        consumer_group=group,
        static_endpoints=[
            StaticEndpoint(
                merchant_id=static_merchant,
                url=receiver.url(static_path),
                secret=SecretStr(static_secret),
            )
        ],
        webhook_allow_loopback=True,  # the receiver listens on 127.0.0.1
        retry_base_s=0.05,
        retry_cap_s=0.2,
        retry_max_attempts=4,
        delivery_timeout_s=1.0,
        delivery_lease_s=5.0,
        worker_idle_poll_s=5.0,  # so prompt delivery can only come from pg NOTIFY
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_from="Receipts <receipts@sanalpos.test>",
        smtp_timeout_s=2.0,
        email_retry_base_s=0.2,
        email_retry_cap_s=0.5,
        email_retry_max_attempts=30,
        email_lease_s=5.0,
    )
    platform = await bootstrap(settings)
    server = asyncio.create_task(serve(platform.runtime), name="notification-under-test")
    base_url = f"http://127.0.0.1:{settings.http_port}"

    async def ready() -> bool:
        with contextlib.suppress(httpx.HTTPError):
            async with httpx.AsyncClient() as client:
                return (await client.get(f"{base_url}/readyz")).status_code == 200
        return False

    try:
        await wait_for(ready, timeout=30, interval=0.2)
        yield Service(
            platform, settings, base_url, producer, static_merchant, static_secret, static_path
        )
    finally:
        await producer.stop()
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


def body_of(received: Received) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(received.body)
    return parsed
