"""Fraud scoring throughput on the local Kafka + PostgreSQL.

    uv run python services/fraud/bench/throughput.py [--payments 2000] [--cards 500]
    uv run python services/fraud/bench/throughput.py --payments 300 --rate 100   # latency

Payments carry a risk context (IP, email, device, MCC, locations), so the streaming
features and the model (on unless FRAUD_MODEL_ENABLED=false) do their full work.

Starts `sanalpos-fraud` as a process with its own faust app id (consumer group, internal
topics) and its own PostgreSQL schema, measures process start -> /readyz 200, publishes
N payment.initiated envelopes at once (pre-built, so encryption is not timed), and waits
for N payment.scored on the shared topic (filtered by payment id). Prints numbers only.
Cleans up the schema and the internal topics afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from sanalpos_common import topics
from sanalpos_common.crypto import Keyring, encrypt, fingerprint
from sanalpos_common.crypto.aad import pan_aad
from sanalpos_common.crypto.card import luhn_check_digit
from sanalpos_common.messaging.admin import ensure_topics
from sanalpos_common.schemas.codec import encode, new_envelope
from sanalpos_common.schemas.events import EncryptedCard, GeoPoint, PaymentInitiated, RiskContext
from sanalpos_common.settings import DEV_PAN_KEYRING, local_database_url

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092")
BASE_DSN = os.environ.get("FRAUD_DATABASE_URL", local_database_url("fraud"))
REPO = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


MCCS = ("5411", "5812", "5541", "5964", "5999")


def _context(i: int) -> RiskContext:
    return RiskContext(
        customer_ip=f"10.0.{i % 200}.{i % 250 + 1}",
        customer_email=f"shopper{i % 700}@example.com",
        device_id=f"device-{i % 900}",
        billing_country="TR",
        billing_location=GeoPoint(lat=41.0 + (i % 50) / 100, lon=29.0),
        merchant_category_code=MCCS[i % len(MCCS)],
        merchant_location=GeoPoint(lat=41.0, lon=29.0 + (i % 30) / 100),
    )


def build_payments(n: int, cards: int, run: str) -> list[tuple[uuid.UUID, bytes]]:
    keyring = Keyring.from_json(DEV_PAN_KEYRING)
    key = f"bench-{run}".encode()
    pans = []
    for i in range(cards):
        partial = f"411111{i:09d}"
        pans.append(partial + luhn_check_digit(partial))
    out = []
    for i in range(n):
        pan = pans[i % cards]
        payment_id = uuid.uuid4()
        merchant = f"bench-merchant-{i % 20}"
        card = EncryptedCard(
            pan_ciphertext=encrypt(keyring, pan.encode(), pan_aad(merchant, payment_id)),
            fingerprint=fingerprint(key, pan),
            bin=pan[:8],
            last4=pan[-4:],
            exp_month=12,
            exp_year=2030,
            brand="visa",
        )
        payment = PaymentInitiated(
            payment_id=payment_id,
            merchant_id=merchant,
            amount=1_000 + (i * 7919) % 2_000_000,
            currency="TRY",
            capture=True,
            installments=1,
            card=card,
            created_at=datetime.now(UTC),
            context=_context(i),  # what the streaming features and the model read
        )
        envelope = new_envelope(
            topics.PAYMENT_INITIATED, payment, correlation_id=payment_id, producer="bench"
        )
        out.append((payment_id, encode(envelope)))
    return out


async def start_group_at_end(group: str, producer: AIOKafkaProducer) -> None:
    tps = [
        TopicPartition(topics.PAYMENT_INITIATED, p)
        for p in sorted(await producer.partitions_for(topics.PAYMENT_INITIATED))
    ]
    consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        await consumer.commit({tp: await consumer.position(tp) for tp in tps})
    finally:
        await consumer.stop()


async def main(n: int, cards: int, rate: float) -> None:
    run = uuid.uuid4().hex[:8]
    app_id, schema = f"fraud-bench-{run}", f"fraud_bench_{run}"
    dsn = f"{BASE_DSN}?search_path={schema}"
    admin_db = await asyncpg.connect(BASE_DSN)
    await admin_db.execute(f'CREATE SCHEMA "{schema}"')
    await ensure_topics(KAFKA, [topics.PAYMENT_INITIATED, topics.PAYMENT_SCORED])
    producer = AIOKafkaProducer(
        bootstrap_servers=KAFKA, enable_idempotence=True, acks="all", linger_ms=5
    )
    await producer.start()
    await start_group_at_end(app_id, producer)

    t = time.perf_counter()
    payments = build_payments(n, cards, run)
    print(f"built {n} payments on {cards} cards in {time.perf_counter() - t:.1f}s (not timed)")
    wanted = {str(pid).encode() for pid, _ in payments}

    scored_tps = [
        TopicPartition(topics.PAYMENT_SCORED, p)
        for p in sorted(await producer.partitions_for(topics.PAYMENT_SCORED))
    ]
    reader = AIOKafkaConsumer(bootstrap_servers=KAFKA, group_id=None)
    await reader.start()
    reader.assign(scored_tps)
    await reader.seek_to_end(*scored_tps)
    for tp in scored_tps:
        await reader.position(tp)

    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="fraud-bench-"))
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "SANALPOS_LOG_LEVEL": "WARNING",
        "FRAUD_DATABASE_URL": dsn,
        "FRAUD_HTTP_PORT": str(port),
        "FRAUD_FAUST_APP_ID": app_id,
        "FRAUD_FAUST_DATADIR": str(workdir),
    }
    log = (workdir / "service.log").open("wb")
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(  # a fixed path to our own script
        str(Path(sys.executable).parent / "sanalpos-fraud"),
        env=env,
        cwd=REPO,
        stdout=log,
        stderr=log,
    )
    try:
        async with httpx.AsyncClient() as client:
            while True:
                if process.returncode is not None:
                    raise SystemExit(f"service exited; see {workdir / 'service.log'}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                        break
                await asyncio.sleep(0.05)
        ready_s = time.perf_counter() - started
        print(f"process start -> /readyz 200: {ready_s:.2f}s")

        sent_at: dict[bytes, float] = {}
        latencies: list[float] = []
        seen: set[bytes] = set()

        async def read_scored() -> None:
            while len(seen) < n:
                batches = await reader.getmany(timeout_ms=100)
                now = time.perf_counter()
                for records in batches.values():
                    for record in records:
                        if record.key in wanted and record.key not in seen:
                            seen.add(record.key)
                            latencies.append(now - sent_at[record.key])

        reading = asyncio.create_task(read_scored())
        t0 = time.perf_counter()
        for payment_id, value in payments:
            key = str(payment_id).encode()
            sent_at[key] = time.perf_counter()
            await producer.send(topics.PAYMENT_INITIATED, value=value, key=key)
            if rate:  # (the producer's linger sends what is buffered every 5 ms)
                await asyncio.sleep(max(0.0, t0 + len(sent_at) / rate - time.perf_counter()))
        await producer.flush()
        published_s = time.perf_counter() - t0
        print(f"published {n} in {published_s:.2f}s ({n / published_s:.0f}/s)")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reading, timeout=300)
        elapsed = time.perf_counter() - t0
        print(f"scored {len(seen)}/{n} in {elapsed:.2f}s from first publish")
        print(f"throughput: {len(seen) / elapsed:.0f} payments/s (publish -> payment.scored)")
        if latencies:
            latencies.sort()
            p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
            print(
                f"latency publish -> scored: p50 {p(0.5) * 1000:.0f} ms, p99 {p(0.99) * 1000:.0f} "
                f"ms, max {latencies[-1] * 1000:.0f} ms, mean "
                f"{statistics.mean(latencies) * 1000:.0f} ms"
            )
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
            ready = (await client.get(f"http://127.0.0.1:{port}/readyz")).json()
        print("readyz faust:", ready["checks"]["faust"]["detail"])
        values = {
            line.split("{")[0]: float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith(
                (
                    'sanalpos_handler_duration_seconds_sum{consumer="fraud"}',
                    'sanalpos_handler_duration_seconds_count{consumer="fraud"}',
                )
            )
        }
        count = values.get("sanalpos_handler_duration_seconds_count", 0.0)
        if count:
            mean_ms = 1000 * values["sanalpos_handler_duration_seconds_sum"] / count
            print(
                f"agent step per payment (its share of score + DB transaction + tables + "
                f"acks of its batch): {count:.0f} payments, mean {mean_ms:.2f} ms"
            )
    finally:
        decisions = await admin_db.fetch(
            f'SELECT decision, count(*) AS n FROM "{schema}".fraud_decisions '  # noqa: S608
            "GROUP BY decision"  # (schema is our own generated name)
        )
        print("decisions:", {r["decision"]: r["n"] for r in decisions})
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)
        log.close()
        await reader.stop()
        await producer.stop()
        await admin_db.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin_db.close()
        kafka_admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
        await kafka_admin.start()
        mine = [t for t in await kafka_admin.list_topics() if t.startswith(f"{app_id}-")]
        if mine:
            await kafka_admin.delete_topics(mine)
        await kafka_admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--payments", type=int, default=2000)
    parser.add_argument("--cards", type=int, default=500)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="payments/s to publish at (0: all at once)"
    )
    args = parser.parse_args()
    asyncio.run(main(args.payments, args.cards, args.rate))
