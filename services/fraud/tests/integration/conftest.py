"""The fraud service as a real process (`sanalpos-fraud`) against the local Kafka and PostgreSQL.

Isolation from anything else using the same infrastructure:
- a private PostgreSQL schema (dropped afterwards) through the DSN's search_path, so the
  inbox, outbox and fraud_decisions of this run are its own;
- a private faust app id, i.e. its own consumer group (whose offsets on payment.initiated
  start at the current end, so old traffic is not replayed) and its own repartition and
  changelog topics (deleted afterwards);
- payments with fresh ids and card fingerprints under a per-run fingerprint key, filtered
  out of the shared payment.scored.v1 and dlq.fraud.v1 topics by a group-less reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from sanalpos_common import topics
from sanalpos_common.crypto import Keyring, encrypt, fingerprint
from sanalpos_common.crypto.aad import pan_aad
from sanalpos_common.messaging.admin import ensure_topics
from sanalpos_common.schemas.codec import encode, new_envelope
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import EncryptedCard, PaymentInitiated
from sanalpos_common.settings import DEV_PAN_KEYRING, local_database_url
from sanalpos_common.testing import free_port, start_group_at_end
from sanalpos_common.testing import wait_for as shared_wait_for

# Endpoints from the environment win (make test points them at its own instance).
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092")
BASE_DSN = os.environ.get("FRAUD_DATABASE_URL", local_database_url("fraud"))
DLQ = topics.dead_letter_topic("fraud")
REPO = Path(__file__).resolve().parents[4]
T = TypeVar("T")


async def wait_for(
    probe: Callable[[], Awaitable[T]], *, timeout: float = 15.0, interval: float = 0.05
) -> T:
    return await shared_wait_for(probe, timeout=timeout, interval=interval)


# --------------------------------------------------------------------------- topic reader


@dataclass
class TopicReader:
    """Reads topics from their end at session start, keeps every record, no consumer group."""

    names: tuple[str, ...]
    records: dict[str, list[ConsumerRecord[bytes, bytes]]] = field(default_factory=dict)
    _consumer: AIOKafkaConsumer | None = None
    _task: asyncio.Task[None] | None = None

    async def start(self, producer: AIOKafkaProducer) -> None:
        partitions = [
            TopicPartition(name, p)
            for name in self.names
            for p in sorted(await producer.partitions_for(name))
        ]
        consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA, group_id=None)
        await consumer.start()
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for tp in partitions:  # resolve positions now, before anything is published
            await consumer.position(tp)
        self.records = {name: [] for name in self.names}
        self._consumer = consumer
        self._task = asyncio.create_task(self._read(), name="topic-reader")

    async def _read(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=100)
            for tp, batch in batches.items():
                self.records[tp.topic].extend(batch)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer:
            await self._consumer.stop()

    def where(
        self, topic: str, predicate: Callable[[ConsumerRecord[bytes, bytes]], bool]
    ) -> list[ConsumerRecord[bytes, bytes]]:
        return [r for r in list(self.records[topic]) if predicate(r)]

    def by_key(self, topic: str, key: str) -> list[ConsumerRecord[bytes, bytes]]:
        return self.where(topic, lambda r: r.key == key.encode())


# --------------------------------------------------------------------------- payments


@dataclass
class Payments:
    """Builds valid payment.initiated envelopes with cards fingerprinted under a per-run key."""

    fingerprint_key: bytes
    keyring: Keyring = field(default_factory=lambda: Keyring.from_json(DEV_PAN_KEYRING))

    def card(self, pan: str, merchant_id: str, payment_id: uuid.UUID) -> EncryptedCard:
        return EncryptedCard(
            pan_ciphertext=encrypt(self.keyring, pan.encode(), pan_aad(merchant_id, payment_id)),
            fingerprint=fingerprint(self.fingerprint_key, pan),
            bin=pan[:8],
            last4=pan[-4:],
            exp_month=12,
            exp_year=2030,
            brand="visa",
        )

    def envelope(
        self,
        *,
        pan: str = "4111111111111111",
        amount: int = 12_500,
        currency: str = "TRY",
        merchant_id: str = "merchant-fraud-it",
        capture: bool = True,
        installments: int = 1,
        created_at: datetime | None = None,
    ) -> Envelope[Any]:
        payment_id = uuid.uuid4()
        payment = PaymentInitiated(
            payment_id=payment_id,
            merchant_id=merchant_id,
            amount=amount,
            currency=currency,
            capture=capture,
            installments=installments,
            order_id=f"order-{payment_id.hex[:8]}",
            card=self.card(pan, merchant_id, payment_id),
            created_at=created_at or datetime.now(UTC),
        )
        return new_envelope(
            topics.PAYMENT_INITIATED, payment, correlation_id=payment_id, producer="intake"
        )


# --------------------------------------------------------------------------- the service


@dataclass
class ServiceProcess:
    """`sanalpos-fraud` as a child process; can be killed and started again, same settings."""

    env: dict[str, str]
    log_path: Path
    base_url: str
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    async def start(self) -> float:
        """Start the process and wait for /readyz 200; returns the seconds that took."""
        script = Path(sys.executable).parent / "sanalpos-fraud"
        started = time.monotonic()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(script)], env=self.env, cwd=REPO, stdout=log, stderr=log
            )
        self.starts += 1
        process = self.process

        async def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"sanalpos-fraud exited:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                async with httpx.AsyncClient() as client:
                    return (await client.get(f"{self.base_url}/readyz")).status_code == 200
            return False

        # generous: a second faust worker on a loaded 2-core box can take most of a minute
        await wait_for(ready, timeout=90, interval=0.1)
        return time.monotonic() - started

    async def kill(self) -> None:
        """SIGKILL: no shutdown at all, like a crashed pod."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            await asyncio.to_thread(self.process.wait, 10)

    async def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.process.wait, 20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                await asyncio.to_thread(self.process.wait, 5)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class KafkaIO:
    producer: AIOKafkaProducer
    reader: TopicReader


@dataclass
class FraudService:
    app_id: str
    schema: str
    db: asyncpg.Pool
    kafka: KafkaIO
    payments: Payments
    service: ServiceProcess
    ready_after_s: float

    @property
    def base_url(self) -> str:
        return self.service.base_url

    @property
    def reader(self) -> TopicReader:
        return self.kafka.reader

    async def publish(
        self,
        envelope: Envelope[Any],
        *,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> bytes:
        value = encode(envelope)
        await self.publish_raw(value, key or str(envelope.correlation_id).encode(), headers)
        return value

    async def publish_raw(
        self, value: bytes, key: bytes, headers: list[tuple[str, bytes]] | None = None
    ) -> None:
        await self.kafka.producer.send_and_wait(
            topics.PAYMENT_INITIATED, value=value, key=key, headers=headers or []
        )

    async def scored(
        self, payment_id: uuid.UUID, *, count: int = 1, timeout: float = 15.0
    ) -> list[ConsumerRecord[bytes, bytes]]:
        async def probe() -> list[ConsumerRecord[bytes, bytes]]:
            found = self.reader.by_key(topics.PAYMENT_SCORED, str(payment_id))
            return found if len(found) >= count else []

        try:
            return await wait_for(probe, timeout=timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; service log:\n{self.service.log_tail()}") from None

    async def decision(self, payment_id: uuid.UUID) -> asyncpg.Record | None:
        return await self.db.fetchrow(
            "SELECT * FROM fraud_decisions WHERE payment_id = $1", payment_id
        )


async def _delete_internal_topics(app_id: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        mine = [name for name in await admin.list_topics() if name.startswith(f"{app_id}-")]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


@pytest.fixture(scope="session")
async def kafka_io() -> AsyncIterator[KafkaIO]:
    await ensure_topics(
        KAFKA,
        [
            topics.PAYMENT_INITIATED,
            topics.PAYMENT_SCORED,
            topics.FRAUD_REPORTED,
            topics.REVIEW_RESOLVED,
            DLQ,
        ],
    )
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, enable_idempotence=True, acks="all")
    await producer.start()
    reader = TopicReader((topics.PAYMENT_SCORED, topics.REVIEW_RESOLVED, DLQ))
    await reader.start(producer)
    try:
        yield KafkaIO(producer, reader)
    finally:
        await producer.stop()
        await reader.stop()


@contextlib.asynccontextmanager
async def fraud_service(
    kafka: KafkaIO, workdir: Path, tag: str, **settings: str
) -> AsyncIterator[FraudService]:
    """A fraud process with its own schema, app id (group, internal topics) and card key."""
    run = uuid.uuid4().hex[:10]
    schema, app_id = f"fraud_{tag}_{run}", f"fraud-{tag}-{run}"
    workdir.mkdir(parents=True, exist_ok=True)
    admin = await asyncpg.connect(BASE_DSN)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    dsn = f"{BASE_DSN}?search_path={schema}"
    await start_group_at_end(KAFKA, app_id, (topics.PAYMENT_INITIATED,), kafka.producer)
    await start_group_at_end(KAFKA, f"{app_id}-feedback", (topics.FRAUD_REPORTED,), kafka.producer)
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "SANALPOS_ENV": "test",
        "FRAUD_DATABASE_URL": dsn,
        "FRAUD_HTTP_PORT": str(port),
        "FRAUD_FAUST_APP_ID": app_id,
        "FRAUD_FEEDBACK_CONSUMER_GROUP": f"{app_id}-feedback",
        "FRAUD_FAUST_DATADIR": str(workdir / "faust"),
        "FRAUD_COMMIT_INTERVAL_S": "0.5",
        "FRAUD_LAG_PROBE_CACHE_S": "0",
        # Rules only unless a test asks for the model: its hour-of-day weight would make the
        # exact scores these tests assert depend on when they run.
        "FRAUD_MODEL_ENABLED": "false",
        **{f"FRAUD_{name.upper()}": value for name, value in settings.items()},
    }
    service = ServiceProcess(env, workdir / "service.log", f"http://127.0.0.1:{port}")
    db = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    try:
        ready_after = await service.start()
        print(f"\nsanalpos-fraud ({tag}) ready {ready_after:.2f}s after process start")
        yield FraudService(
            app_id=app_id,
            schema=schema,
            db=db,
            kafka=kafka,
            payments=Payments(fingerprint_key=f"fraud-{tag}-{run}".encode()),
            service=service,
            ready_after_s=ready_after,
        )
    finally:
        await service.terminate()
        await db.close()
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()
        with contextlib.suppress(Exception):
            await _delete_internal_topics(app_id)


@pytest.fixture(scope="module")
async def fraud(
    kafka_io: KafkaIO, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FraudService]:
    """One fraud process per test module. Not per session: it consumes the real
    payment.initiated topic (its own group), so left running it would score — and emit
    payment.scored for — the payments of every later suite, racing the fraud service of the
    whole-system tests."""
    async with fraud_service(kafka_io, tmp_path_factory.mktemp("fraud"), "test") as service:
        yield service
