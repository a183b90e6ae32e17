#!/usr/bin/env python3
"""CPU per published outbox row: the relay alone, one row per transaction at a fixed rate.

    python scripts/bench/outbox_relay.py [--rows 2000] [--rate 100]

A scratch schema (the shared migrations) in the local settlement database, one OutboxRelay
(the service code) and one Kafka topic. Rows are inserted one transaction each, as a handler
would, at --rate per second; the relay is woken by the outbox trigger's NOTIFY. Reports the
CPU time of this process (inserts and relay) and of every PostgreSQL backend of the scratch
run, per row. Asserts nothing. Kafka and PostgreSQL from the usual environment variables.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

import asyncpg

from sanalpos_common.db import COMMON_MIGRATIONS, load_migrations
from sanalpos_common.messaging.admin import ensure_topics
from sanalpos_common.messaging.outbox import OutboxRelay
from sanalpos_common.messaging.producer import build_producer
from sanalpos_common.observability import Metrics
from sanalpos_common.settings import local_database_url
from sanalpos_common.testing import wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import cpu

KAFKA = os.environ.get(
    "KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{os.environ.get('SANALPOS_KAFKA_PORT', '29092')}"
)
DSN = os.environ.get(
    "SETTLEMENT_DATABASE_URL",
    local_database_url("settlement", int(os.environ.get("SANALPOS_PG_PORT", "25432"))),
)


async def backend_ticks(admin: asyncpg.Connection, app: str) -> int:
    pids = await admin.fetch("SELECT pid FROM pg_stat_activity WHERE application_name = $1", app)
    total = 0
    for row in pids:
        stat = cpu.read_stat(row["pid"])
        total += stat.cpu_ticks if stat else 0
    return total


async def main(rows: int, rate: float) -> None:
    schema = f"bench_relay_{uuid.uuid4().hex[:8]}"
    app = f"bench-relay-{uuid.uuid4().hex[:6]}"
    admin = await asyncpg.connect(DSN)
    await admin.execute(f"CREATE SCHEMA {schema}")
    topic = f"bench.outbox-relay.{uuid.uuid4().hex[:8]}"
    await ensure_topics(KAFKA, [topic], partitions=3)
    pool = await asyncpg.create_pool(
        DSN,
        min_size=2,
        max_size=4,
        server_settings={"search_path": schema, "application_name": app},
    )
    assert pool is not None
    for migration in load_migrations("common", COMMON_MIGRATIONS):
        await pool.execute(migration.sql)
    producer = build_producer(KAFKA, client_id="bench-outbox-relay")
    await producer.start()
    relay = OutboxRelay(pool, producer, Metrics("bench"))
    run = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(1.0)
        own_cpu, backends = time.process_time(), await backend_ticks(admin, app)
        started = time.perf_counter()
        for i in range(rows):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            key = uuid.uuid4()
            await pool.execute(
                "INSERT INTO outbox (topic, message_key, message_id, payload) "
                "VALUES ($1, $2, $3, $4)",
                topic,
                str(key),
                key,
                b"x" * 300,
            )
        await wait_for(
            lambda: pool.fetchval("SELECT count(*) = 0 FROM outbox WHERE published_at IS NULL"),
            timeout=60,
        )
        elapsed = time.perf_counter() - started
        own_ms = 1000 * (time.process_time() - own_cpu)
        total_ms = own_ms + cpu.ticks_to_ms(await backend_ticks(admin, app) - backends)
        print(
            f"{rows} rows at {rate}/s in {elapsed:.1f}s: "
            f"{total_ms / rows * 1000:.0f} us CPU per row "
            f"(this process and the run's PostgreSQL backends)"
        )
    finally:
        relay.stop()
        await asyncio.gather(run, return_exceptions=True)
        await producer.stop()
        await pool.close()
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=100.0)
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.rate))
