"""Helpers for whole-system tests: processes, HTTP, Kafka and database access."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from glob import glob
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

from sanalpos_common.testing import free_port

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "scripts" / "infra" / "infra.sh"
SERVICES = ("intake", "fraud", "authorization", "settlement", "notification")
T = TypeVar("T")


def run_log_dir() -> Path:
    """Where the whole-system services log: inside this run's state folder, so concurrent runs
    with their own SANALPOS_STATE_DIR never share (or scan) each other's logs."""
    state = os.environ.get("SANALPOS_STATE_DIR")
    return (Path(state) if state else ROOT / ".state") / "test-logs"


def infra_env() -> dict[str, str]:
    """Endpoints for the whole-system tests, in this order of preference:

    1. endpoints named in the environment (KAFKA_BOOTSTRAP_SERVERS, <SERVICE>_DATABASE_URL);
    2. testcontainers, when SANALPOS_TESTCONTAINERS=1 and a Docker engine answers;
    3. the project's own scripts: real Kafka and PostgreSQL processes on this machine.
    """
    if os.environ.get("SANALPOS_TESTCONTAINERS") == "1" and docker_available():
        return testcontainers_env()
    subprocess.run(["bash", str(INFRA), "up"], check=True, stdout=subprocess.DEVNULL)
    out = subprocess.run(["bash", str(INFRA), "env"], check=True, capture_output=True, text=True)
    env: dict[str, str] = {}
    for line in out.stdout.splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            env[key] = value.strip().strip("'\"")
    return env


def docker_available() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env().ping()
    except Exception:
        return False
    return True


_CONTAINERS: list[Any] = []


def testcontainers_env() -> dict[str, str]:
    """Kafka and PostgreSQL in containers; the environment's own endpoints still win."""
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    env: dict[str, str] = {}
    if "KAFKA_BOOTSTRAP_SERVERS" not in os.environ:
        kafka = KafkaContainer("apache/kafka:4.1.1").with_kraft()
        kafka.start()
        _CONTAINERS.append(kafka)
        env["KAFKA_BOOTSTRAP_SERVERS"] = kafka.get_bootstrap_server()
    if not all(f"{s.upper()}_DATABASE_URL" in os.environ for s in SERVICES):
        postgres = PostgresContainer("postgres:16", username="sanalpos", password="sanalpos")
        postgres.start()
        _CONTAINERS.append(postgres)
        host, port = postgres.get_container_host_ip(), postgres.get_exposed_port(5432)
        for service in SERVICES:
            subprocess.run(
                [
                    "docker",
                    "exec",
                    postgres.get_wrapped_container().id,
                    "psql",
                    "-U",
                    "sanalpos",
                    "-c",
                    f"CREATE DATABASE sanalpos_{service}",
                ],
                check=False,
                capture_output=True,
            )
            env[f"{service.upper()}_DATABASE_URL"] = (
                f"postgresql://sanalpos:sanalpos@{host}:{port}/sanalpos_{service}"
            )
    return {
        **env,
        **{
            k: v
            for k, v in os.environ.items()
            if k == "KAFKA_BOOTSTRAP_SERVERS" or k.endswith("_DATABASE_URL")
        },
    }


def stop_containers() -> None:
    while _CONTAINERS:
        _CONTAINERS.pop().stop()


@dataclass
class ServiceProcess:
    name: str
    port: int
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def consumer_groups() -> dict[str, tuple[str, ...]]:
    """The consumer group of each service (its name; fraud's is its faust app id)."""
    from sanalpos_common import topics

    return {
        "intake": (
            *topics.OUTCOME_TOPICS,
            topics.BATCH_CLOSED,
            topics.PAYOUT_UPDATED,
            topics.LEDGER_DAY,
        ),
        "intake-requests": (topics.MERCHANT_REQUESTS,),
        "sanalpos-fraud": (topics.PAYMENT_INITIATED,),
        "fraud-feedback": (topics.FRAUD_REPORTED,),
        "authorization": (topics.PAYMENT_SCORED, topics.REVIEW_RESOLVED, *topics.COMMAND_TOPICS),
        "settlement": (
            topics.PAYMENT_CAPTURED,
            topics.PAYMENT_VOIDED,
            topics.PAYMENT_REFUNDED,
            topics.MERCHANT_UPDATED,
            topics.PAYOUT_ACCOUNT_UPDATED,
            topics.CLEARING_REPORTED,
        ),
        "notification": (
            *topics.OUTCOME_TOPICS,
            topics.WEBHOOK_ENDPOINT_REGISTERED,
            topics.PAYMENT_INITIATED,
            topics.MERCHANT_UPDATED,
            topics.PAYOUT_UPDATED,
        ),
    }


def _partitions(consumer: Any, names: tuple[str, ...]) -> list[Any]:
    from aiokafka import TopicPartition

    return [TopicPartition(n, p) for n in names for p in consumer.partitions_for_topic(n) or ()]


async def start_groups_at_end(bootstrap: str) -> None:
    """Commit every service group's offsets at the current end of its topics, so the
    whole-system run starts from now: other suites publish synthetic events (cards under
    other keys, payments no intake holds) that these services need not wade through."""
    from aiokafka import AIOKafkaConsumer

    from sanalpos_common import topics
    from sanalpos_common.messaging.admin import ensure_topics

    await ensure_topics(bootstrap, topics.ALL_TOPICS)
    for group, names in consumer_groups().items():
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            partitions = _partitions(consumer, names)
            if not partitions:  # no metadata yet for freshly created topics
                await consumer._client.force_metadata_update()
                partitions = _partitions(consumer, names)
            ends = await consumer.end_offsets(partitions)
            consumer.assign(partitions)
            await consumer.commit(ends)
        finally:
            await consumer.stop()


def trace_file_of(log_dir: Path) -> Path:
    return log_dir / "traces.jsonl"


def start_services(env: dict[str, str], log_dir: Path) -> dict[str, ServiceProcess]:
    log_dir.mkdir(parents=True, exist_ok=True)
    for old in (trace_file_of(log_dir), log_dir / (trace_file_of(log_dir).name + ".1")):
        old.unlink(missing_ok=True)  # this run's spans only, like the log files ("wb")
    started: dict[str, ServiceProcess] = {}
    for name in SERVICES:
        port = free_port()
        service_env = {
            # Pre-authorizations lapse within a whole-system test (captures come in seconds).
            "AUTHORIZATION_PREAUTH_EXPIRY_S": "20",
            "AUTHORIZATION_PREAUTH_EXPIRY_SCAN_INTERVAL_S": "1",
            # A dispute with no answer is lost a second after its deadline (test_disputes.py).
            "SETTLEMENT_DISPUTE_ANSWER_GRACE_S": "1",
            # Rules only: the learned model weighs the hour of day, so with it a payment's
            # outcome here would depend on when the suite runs. The model is exercised by
            # test_fraud_eval.py (its own stack) and by services/fraud's tests.
            "FRAUD_MODEL_ENABLED": "false",
            # fraud's RocksDB tables, kept across a restart of the process (test_chaos.py).
            "FRAUD_FAUST_DATADIR": str(log_dir / "fraud-faust"),
            # The test receivers listen on 127.0.0.1: loopback webhook targets are a
            # development switch (every other non-public address stays refused).
            "INTAKE_WEBHOOK_ALLOW_LOOPBACK": "true",
            "NOTIFICATION_WEBHOOK_ALLOW_LOOPBACK": "true",
            # Every service writes its spans here (test_tracing.py follows one payment).
            "SANALPOS_TRACE_FILE": str(trace_file_of(log_dir)),
            **os.environ,
            **env,
            f"{name.upper()}_HTTP_PORT": str(port),
            "SANALPOS_ENV": "development",
            "PYTHONUNBUFFERED": "1",
        }
        if name == "intake":  # checkout pages and 3-D Secure returns point at this intake
            service_env["INTAKE_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
        log_path = log_dir / f"{name}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", f"{name}.entrypoints.main"],
                cwd=ROOT,
                env=service_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        started[name] = ServiceProcess(name, port, log_path, process)
    return started


def wait_ready(services: dict[str, ServiceProcess], timeout_s: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    pending = set(services)
    while pending and time.monotonic() < deadline:
        for name in list(pending):
            service = services[name]
            if service.process.poll() is not None:
                raise RuntimeError(f"{name} exited:\n{service.log_text()[-4000:]}")
            try:
                if httpx.get(f"{service.url}/readyz", timeout=2).status_code == 200:
                    pending.discard(name)
            except httpx.HTTPError:
                pass
        time.sleep(0.5)
    if pending:
        logs = "\n".join(f"--- {n}\n{services[n].log_text()[-2000:]}" for n in pending)
        raise RuntimeError(f"not ready: {sorted(pending)}\n{logs}")


def stop_services(services: dict[str, ServiceProcess]) -> None:
    for service in services.values():
        if service.process.poll() is None:
            service.process.terminate()
    for service in services.values():
        try:
            service.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            service.process.kill()


async def eventually(
    probe: Callable[[], Awaitable[T | None]], timeout_s: float = 30, interval_s: float = 0.2
) -> T:
    """Polls until the probe returns something truthy; fails with the last value otherwise."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s}s (last value: {last!r})")


# A payment can leave none of these; the canary scan and friends stop waiting there.
FINAL_STATUSES = frozenset({"declined", "settled", "refunded", "voided", "expired"})


async def close_batches(settlement_url: str, merchant_id: str | None) -> list[dict[str, Any]]:
    """Closes the merchant's open end-of-day batches (every merchant's without an id) through
    settlement's ops endpoint; returns the batches this call closed."""
    import httpx

    from sanalpos_common.settings import DEV_ADMIN_TOKEN

    body = {"merchant_id": merchant_id} if merchant_id else {}
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            f"{settlement_url}/admin/batches/close",
            json=body,
            headers={"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"},
        )
    assert response.status_code == 200, response.text
    closed: list[dict[str, Any]] = response.json()["closed"]
    return closed


async def statuses_with_batches_closing(
    intake: Any,
    settlement_url: str,
    merchant: dict[str, Any],
    wanted: dict[str, set[str]],
    timeout_s: float = 60,
) -> dict[str, dict[str, Any]]:
    """Polls the merchant's payments until each shows one of its wanted statuses or a final
    one, closing the merchant's batches every round (a capture settles only when its batch
    closes). Returns each payment as first seen there; the caller asserts which it was."""
    seen: dict[str, dict[str, Any]] = {}
    waiting: dict[str, str | None] = {}
    headers = {"Authorization": f"Bearer {merchant['api_key']}"}

    async def probe() -> dict[str, dict[str, Any]] | None:
        if any("settled" in states for states in wanted.values()):
            await close_batches(settlement_url, merchant["id"])
        for payment_id, states in wanted.items():
            if payment_id not in seen:
                payment = (await intake.get(f"/v1/payments/{payment_id}", headers=headers)).json()
                waiting[payment_id] = payment.get("status")
                if payment.get("status") in states | FINAL_STATUSES:
                    seen[payment_id] = payment
                    del waiting[payment_id]
        return seen if len(seen) == len(wanted) else None

    try:
        return await eventually(probe, timeout_s=timeout_s, interval_s=0.5)
    except AssertionError as timed_out:
        stuck = {p: (status, sorted(wanted[p])) for p, status in waiting.items()}
        raise AssertionError(f"payments stuck (status, wanted): {stuck}") from timed_out


async def settles_when_its_batch_closes(
    intake: Any, services: dict[str, ServiceProcess], merchant: dict[str, Any], payment_id: str
) -> dict[str, Any]:
    """Settlement books a capture into the merchant's open end-of-day batch; the payment
    settles when that batch closes. Closes it until the capture has reached settlement, and
    fails unless the payment ends up settled."""
    payment = (
        await statuses_with_batches_closing(
            intake, services["settlement"].url, merchant, {payment_id: {"settled"}}
        )
    )[payment_id]
    assert payment["status"] == "settled", payment
    return payment


@dataclass
class ReceivedWebhook:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """A real HTTP server on loopback that records every POST it gets."""

    received: list[ReceivedWebhook] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def start(self) -> str:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.received.append(
                    ReceivedWebhook(
                        self.path, {k.lower(): v for k, v in self.headers.items()}, body
                    )
                )
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()

    def for_payment(self, payment_id: str) -> list[tuple[ReceivedWebhook, dict[str, Any]]]:
        found = []
        for hook in list(self.received):
            body = json.loads(hook.body)
            if body.get("data", {}).get("payment_id") == payment_id:
                found.append((hook, body))
        return found


@dataclass
class MailSink:
    """A real SMTP server (aiosmtpd) on loopback that records every message it accepts:
    notification's shopper emails in the whole-system run."""

    port: int = field(default_factory=free_port)
    received: list[tuple[list[str], bytes]] = field(default_factory=list)
    controller: Any = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append((list(envelope.rcpt_tos), bytes(envelope.original_content)))
        return "250 OK"

    def start(self) -> dict[str, str]:
        """Starts it; returns the settings that point notification at it."""
        from aiosmtpd.controller import Controller

        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self.settings()

    def settings(self) -> dict[str, str]:
        return {"NOTIFICATION_SMTP_HOST": "127.0.0.1", "NOTIFICATION_SMTP_PORT": str(self.port)}

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()

    def to(self, address: str) -> list[bytes]:
        return [data for rcpt_tos, data in list(self.received) if address in rcpt_tos]


def pg_dump_binary() -> str:
    candidates = [
        shutil.which("pg_dump"),
        *sorted(glob("/usr/lib/postgresql/*/bin/pg_dump"), reverse=True),
    ]
    for candidate in candidates:
        if candidate:
            return candidate
    raise RuntimeError("pg_dump not found: install the PostgreSQL client")


def pg_dump(database_url: str) -> str:
    result = subprocess.run(
        [pg_dump_binary(), "--data-only", "--inserts", "--no-owner", database_url],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout
