#!/usr/bin/env python3
"""Fraud restart time after a large history: how long `sanalpos-fraud` takes from process
start to `/readyz` 200 when its feature table (card values with their velocity buckets,
merchant and category state) must be recovered from the changelog.

    python scripts/bench/fraud_restart.py [--payments 1000000] [--cards 100000] [--batch 1]

1. starts the service once on its own faust app id and PostgreSQL schema (so faust creates
   the changelog topic itself, with the service's topic configs), stops it (SIGTERM);
2. computes N payments of history with the service's own code (fraud.adapters.velocity over
   fraud.adapters.feature_table, batches of --batch) and produces every table write the
   service would have made to `<app id>-features-changelog` (same keys, JSON values and
   partitions), as fast as the producer goes: the pipeline is not run;
3. lets the broker compact the changelog (closed segments only), starts the service (its
   faust data dir empty: the whole changelog is read, as on a fresh machine) and times
   start -> /readyz 200; stops it and times a restart on the same data dir (the default
   rocksdb:// store reads only the changelog written since; memory:// reads it all again);
4. checks the history was recovered: one more payment of the busiest card must be scored
   with the velocity the history implies.

Numbers only, asserts nothing. Kafka and PostgreSQL from the usual environment variables
(KAFKA_BOOTSTRAP_SERVERS or SANALPOS_KAFKA_PORT, FRAUD_DATABASE_URL or SANALPOS_PG_PORT);
the schema and the topics are deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.partitioner import murmur2

from fraud.adapters.feature_table import BatchFeatures, FeatureTable
from fraud.adapters.velocity import BatchVelocity
from fraud.config import FraudSettings
from fraud.domain.features import Observation
from sanalpos_common import topics
from sanalpos_common.crypto import Keyring, encrypt, fingerprint
from sanalpos_common.crypto.aad import pan_aad
from sanalpos_common.crypto.card import luhn_check_digit
from sanalpos_common.messaging.admin import ensure_topics
from sanalpos_common.schemas.codec import encode, new_envelope
from sanalpos_common.schemas.events import EncryptedCard, PaymentInitiated
from sanalpos_common.settings import DEV_PAN_KEYRING, local_database_url

ROOT = Path(__file__).resolve().parents[2]
KAFKA = os.environ.get(
    "KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{os.environ.get('SANALPOS_KAFKA_PORT', '29092')}"
)
BASE_DSN = os.environ.get(
    "FRAUD_DATABASE_URL",
    local_database_url("fraud", int(os.environ.get("SANALPOS_PG_PORT", "25432"))),
)
PARTITIONS = FraudSettings().internal_topic_partitions
MERCHANT = "mer_restart_bench"
FINGERPRINT_KEY = b"fraud-restart-bench"
BURST = 6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pan_of(card: int) -> str:
    partial = f"411111{card:09d}"
    return partial + luhn_check_digit(partial)


def partition_of(fp: str) -> int:
    """The by-card repartition partition of a fingerprint (Kafka's default partitioner)."""
    return (murmur2(fp.encode()) & 0x7FFFFFFF) % PARTITIONS


class RecordingTable(dict[str, Any]):
    """The table the service's code writes to; every write is kept to be produced."""

    def __init__(self) -> None:
        super().__init__()
        self.out: list[tuple[str, Any, int]] = []
        self._partition = 0

    @contextmanager
    def writing_to(self, partition: int) -> Iterator[None]:
        self._partition = partition
        yield

    def __setitem__(self, key: str, value: Any) -> None:
        self.out.append((key, value, self._partition))
        super().__setitem__(key, value)


class History:
    """N payments over C cards, spread over `days` of event time ending now."""

    def __init__(self, payments: int, cards: int, batch: int, days: float, seed: int) -> None:
        self.payments, self.cards, self.batch = payments, cards, batch
        self.rng = random.Random(seed)
        self.end = time.time() - 60
        self.start = self.end - days * 86400
        self.fingerprints = [fingerprint(FINGERPRINT_KEY, pan_of(c)) for c in range(cards)]
        self.table = RecordingTable()
        self.spec = FraudSettings().velocity_spec()
        self.per_card: Counter[int] = Counter()

    def batches(self) -> Iterator[list[tuple[str, Any, int]]]:
        """The changelog writes of each batch, in order."""
        step = (self.end - self.start) / self.payments
        for first in range(0, self.payments, self.batch):
            ledger = BatchVelocity(BatchFeatures(FeatureTable(self.table, PARTITIONS)), self.spec)
            for i in range(first, min(first + self.batch, self.payments)):
                # the last payments are a burst of card 0: the recovery check reads it
                burst = i >= self.payments - BURST
                card = 0 if burst else self.rng.randrange(self.cards)
                self.per_card[card] += 1
                fp, at = self.fingerprints[card], self.start + i * step
                partition = partition_of(fp)
                ledger.velocity(fp, at)
                ledger.count(fp, at, partition)
                ledger.features(
                    Observation(
                        card=fp,
                        amount_minor=1_000 + self.rng.randrange(200_000),
                        event_time=at,
                        local_time=datetime.fromtimestamp(at, UTC).replace(tzinfo=None),
                        merchant=MERCHANT,
                        mcc="5411",
                    ),
                    partition,
                )
            ledger.apply()
            writes, self.table.out = self.table.out, []
            yield writes


async def load(history: History, changelog: str) -> tuple[int, int, float]:
    """Produces the history's writes; returns (records, bytes, seconds)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=KAFKA,
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        max_batch_size=512 * 1024,
        max_request_size=4 * 1024 * 1024,
    )
    await producer.start()
    records = size = 0
    started = time.perf_counter()
    pending: list[asyncio.Future[Any]] = []
    try:
        for writes in history.batches():
            for key, value, partition in writes:
                k, v = json.dumps(key).encode(), json.dumps(value, separators=(",", ":")).encode()
                pending.append(await producer.send(changelog, v, key=k, partition=partition))
                records += 1
                size += len(k) + len(v)
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
                print(f"  {records:,} records ({records / (time.perf_counter() - started):,.0f}/s)")
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return records, size, time.perf_counter() - started


def changelog_bytes(changelog: str) -> int | None:
    """Bytes of the changelog's log segments on a local broker (None when not local)."""
    data = Path(os.environ.get("SANALPOS_STATE_DIR", ROOT / ".state")) / "kafka" / "data"
    dirs = [data / f"{changelog}-{p}" for p in range(PARTITIONS)]
    if not all(d.is_dir() for d in dirs):
        return None
    return sum(f.stat().st_size for d in dirs for f in d.glob("*.log"))


async def wait_compacted(changelog: str, timeout_s: float) -> None:
    """Waits until the changelog's size stops shrinking (the log cleaner caught up)."""
    deadline, last, stable = time.monotonic() + timeout_s, None, 0
    while time.monotonic() < deadline and stable < 3:
        await asyncio.sleep(10)
        now = changelog_bytes(changelog)
        stable = stable + 1 if now == last else 0
        last = now
        print(f"  changelog on disk: {_mb(now)}")


def _mb(n: int | None) -> str:
    return "n/a (broker not local)" if n is None else f"{n / 1e6:,.1f} MB"


async def changelog_config(changelog: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        [response] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, changelog)]
        )
    finally:
        await admin.close()
    wanted = {"cleanup.policy", "segment.bytes", "segment.ms", "min.cleanable.dirty.ratio"}
    # DescribeConfigsResponse: resources = [(error, message, type, name, [(name, value, ...)])]
    return {
        entry[0]: entry[1]
        for resource in response.resources
        for entry in resource[4]
        if entry[0] in wanted
    }


async def start_group_at_end(group: str) -> None:
    """The worker must not replay the broker's existing payment.initiated."""
    consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topics.PAYMENT_INITIATED, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        await consumer.commit({tp: await consumer.position(tp) for tp in tps})
    finally:
        await consumer.stop()


class Service:
    def __init__(self, app_id: str, dsn: str, store: str) -> None:
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="fraud-restart-"))
        self.env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
            "SANALPOS_LOG_LEVEL": os.environ.get("FRAUD_RESTART_LOG_LEVEL", "INFO"),
            "FRAUD_DATABASE_URL": dsn,
            "FRAUD_HTTP_PORT": str(self.port),
            "FRAUD_FAUST_APP_ID": app_id,
            "FRAUD_FAUST_DATADIR": str(self.workdir),
            "FRAUD_FAUST_STORE": store,
        }
        self.process: asyncio.subprocess.Process | None = None

    def recovered_s(self) -> str:
        """What the service logged for its last faust start (app start + table recovery)."""
        found = re.findall(
            rb"tables recovered in ([0-9.]+)s", (self.workdir / "service.log").read_bytes()
        )
        return f"faust start + recovery {found[-1].decode()}s" if found else "faust: no log line"

    async def start(self, timeout_s: float = 1800) -> tuple[float, str]:
        """Seconds from process start to /readyz 200, and faust's own share."""
        log = (self.workdir / "service.log").open("ab")
        started = time.perf_counter()
        self.process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "sanalpos-fraud"),
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=log,
        )
        async with httpx.AsyncClient() as client:
            while time.perf_counter() - started < timeout_s:
                if self.process.returncode is not None:
                    raise SystemExit(f"service exited; see {self.workdir / 'service.log'}")
                with contextlib.suppress(httpx.HTTPError):
                    if (
                        await client.get(f"http://127.0.0.1:{self.port}/readyz")
                    ).status_code == 200:
                        return time.perf_counter() - started, self.recovered_s()
                await asyncio.sleep(0.05)
        raise SystemExit(f"not ready after {timeout_s}s; see {self.workdir / 'service.log'}")

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.process.wait(), 60)


async def check_recovered(history: History, db: asyncpg.Connection, schema: str) -> str:
    """Scores one more payment of card 0 (its history ends with a burst): its velocity and
    its count of earlier payments must be the ones the history implies."""
    card = 0
    fp = history.fingerprints[card]
    at = time.time() - 30
    expected = BatchVelocity(
        BatchFeatures(FeatureTable(history.table, PARTITIONS)), history.spec
    ).velocity(fp, at)
    pan, payment_id = pan_of(card), uuid.uuid4()
    payment = PaymentInitiated(
        payment_id=payment_id,
        merchant_id=MERCHANT,
        amount=5_000,
        currency="TRY",
        capture=True,
        installments=1,
        card=EncryptedCard(
            pan_ciphertext=encrypt(
                Keyring.from_json(DEV_PAN_KEYRING), pan.encode(), pan_aad(MERCHANT, payment_id)
            ),
            fingerprint=fp,
            bin=pan[:8],
            last4=pan[-4:],
            exp_month=12,
            exp_year=2030,
            brand="visa",
        ),
        created_at=datetime.fromtimestamp(at, UTC),
    )
    envelope = new_envelope(
        topics.PAYMENT_INITIATED, payment, correlation_id=payment_id, producer="bench"
    )
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            topics.PAYMENT_INITIATED, encode(envelope), key=str(payment_id).encode()
        )
    finally:
        await producer.stop()
    for _ in range(600):
        row = await db.fetchrow(
            f'SELECT velocity_card_10m, velocity_card_1h, attributes FROM "{schema}".fraud_decisions '  # noqa: S608
            "WHERE payment_id = $1",
            payment_id,
        )
        if row is not None:
            attributes = json.loads(row["attributes"])
            prev = attributes.get("features", {}).get("card_prev_count")
            got = (row["velocity_card_10m"], row["velocity_card_1h"], prev)
            want = (expected.card_10m, expected.card_1h, history.per_card[card])
            verdict = "recovered" if got == want else "NOT RECOVERED"
            return (
                f"{verdict}: (10 min, 1 h, earlier payments) of the check card scored {got}, "
                f"history implies {want}"
            )
        await asyncio.sleep(0.1)
    return "NOT RECOVERED: the check payment was not scored in 60 s"


async def main(args: argparse.Namespace) -> None:
    run = uuid.uuid4().hex[:8]
    app_id, schema = f"fraud-restart-{run}", f"fraud_restart_{run}"
    changelog = f"{app_id}-features-changelog"
    db = await asyncpg.connect(BASE_DSN)
    await db.execute(f'CREATE SCHEMA "{schema}"')
    service = Service(app_id, f"{BASE_DSN}?search_path={schema}", args.store)
    print(f"store {args.store}, faust data dir {service.workdir}")
    try:
        await ensure_topics(KAFKA, [topics.PAYMENT_INITIATED, topics.PAYMENT_SCORED])
        await start_group_at_end(app_id)
        ready, faust = await service.start()
        print(f"1. empty start (creates {changelog}): {ready:.2f}s to /readyz ({faust})")
        await service.stop()
        print(f"   changelog topic config: {await changelog_config(changelog)}")

        print(
            f"2. history: {args.payments:,} payments on {args.cards:,} cards, batches of "
            f"{args.batch}, over {args.days:g} days of event time"
        )
        history = History(args.payments, args.cards, args.batch, args.days, args.seed)
        records, size, seconds = await load(history, changelog)
        print(
            f"   produced {records:,} changelog records ({size / 1e6:,.0f} MB) in {seconds:.0f}s "
            f"({records / args.payments:.2f} per payment); {len(history.table):,} keys"
        )
        print(f"   changelog on disk: {_mb(changelog_bytes(changelog))}")

        if not args.no_compaction_wait:
            print("   waiting for the broker's log cleaner (closed segments only) ...")
            await wait_compacted(changelog, args.compaction_timeout)
        print(f"   changelog on disk: {_mb(changelog_bytes(changelog))}")
        ready, faust = await service.start()
        print(
            f"3. first start on this history (empty faust data dir: the whole changelog is "
            f"read): {ready:.2f}s to /readyz ({faust})"
        )
        await service.stop()
        ready, faust = await service.start()
        print(f"   restart (same data dir; {args.store} store): {ready:.2f}s to /readyz ({faust})")
        print(f"4. {await check_recovered(history, db, schema)}")
    finally:
        await service.stop()
        await db.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await db.close()
        admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
        await admin.start()
        mine = [t for t in await admin.list_topics() if t.startswith(f"{app_id}-")]
        if mine:
            await admin.delete_topics(mine)
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", type=int, default=1_000_000)
    parser.add_argument("--cards", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1, help="payments per agent batch")
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--store", default=FraudSettings().faust_store, help="FRAUD_FAUST_STORE")
    parser.add_argument("--no-compaction-wait", action="store_true")
    parser.add_argument("--compaction-timeout", type=float, default=300.0)
    asyncio.run(main(parser.parse_args()))
