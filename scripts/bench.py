#!/usr/bin/env python3
"""End-to-end benchmark against a running stack (`make up`). Prints numbers; asserts nothing.

Sends N payments over HTTP with C concurrent clients, and watches the outcome topics on Kafka to
time each payment from its POST to its authorization outcome and to its capture. Settlement
settles at end of day (per merchant batch), so after the traffic the benchmark closes the open
batches through settlement's ops endpoint and times that close until every payment is settled.

    python scripts/bench.py --payments 2000 --concurrency 32
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import time
import uuid

import httpx
from aiokafka import AIOKafkaConsumer

from intake.config import DEMO_API_KEY
from sanalpos_common import topics
from sanalpos_common.settings import DEV_ADMIN_TOKEN


def fresh_card(index: int) -> str:
    """A distinct Luhn-valid number per payment, like real traffic (no velocity declines)."""
    digits = [4, *map(int, f"{index:014d}")]
    checksum = 0
    for position, digit in enumerate(reversed(digits)):
        doubled = digit * 2 if position % 2 == 0 else digit
        checksum += doubled - 9 if doubled > 9 else doubled
    return "".join(map(str, digits)) + str((10 - checksum % 10) % 10)


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


KIND_OF_TOPIC = {
    topics.PAYMENT_AUTHORIZED: "outcome",
    topics.PAYMENT_DECLINED: "outcome",
    topics.PAYMENT_CAPTURED: "captured",
    topics.PAYMENT_SETTLED: "settled",
}


async def watch(
    bootstrap: str,
    wanted: set[str],
    seen: dict[str, dict[str, float]],
    done: asyncio.Event,
    captured_all: asyncio.Event,
) -> None:
    consumer = AIOKafkaConsumer(
        *KIND_OF_TOPIC,
        bootstrap_servers=bootstrap,
        group_id=f"bench-{uuid.uuid4()}",
        auto_offset_reset="latest",
    )
    await consumer.start()
    try:
        while not done.is_set():
            batches = await consumer.getmany(timeout_ms=200)
            now = time.perf_counter()
            for messages in batches.values():
                for message in messages:
                    payment_id = message.key.decode() if message.key else ""
                    if payment_id in wanted:
                        kind = KIND_OF_TOPIC[message.topic]
                        seen.setdefault(payment_id, {}).setdefault(kind, now)
            if wanted and all("captured" in seen.get(p, {}) for p in wanted):
                captured_all.set()
            if wanted and all("settled" in seen.get(p, {}) for p in wanted):
                done.set()
    finally:
        await consumer.stop()


async def close_batches(settlement: str, admin_token: str) -> int:
    """Close every open end-of-day batch now; the number of batches closed."""
    async with httpx.AsyncClient(base_url=settlement, timeout=120) as http:
        response = await http.post(
            "/admin/batches/close", json={}, headers={"Authorization": f"Bearer {admin_token}"}
        )
        response.raise_for_status()
        return len(response.json()["closed"])


async def bench(
    payments: int,
    concurrency: int,
    intake: str,
    bootstrap: str,
    timeout_s: float,
    settlement: str,
    admin_token: str,
) -> None:
    sent_at: dict[str, float] = {}
    post_latency: list[float] = []
    seen: dict[str, dict[str, float]] = {}
    done = asyncio.Event()
    captured_all = asyncio.Event()
    wanted: set[str] = set()
    watcher = asyncio.create_task(watch(bootstrap, wanted, seen, done, captured_all))
    await asyncio.sleep(2)  # let the watcher join before traffic starts
    run_offset = int(time.time()) * 10_000
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(payments):
        queue.put_nowait(i)

    async def client() -> None:
        async with httpx.AsyncClient(
            base_url=intake, timeout=30, headers={"Authorization": f"Bearer {DEMO_API_KEY}"}
        ) as http:
            while not queue.empty():
                i = queue.get_nowait()
                body = {
                    "amount": 1000 + i % 500,
                    "currency": "TRY",
                    "capture": True,
                    "card": {
                        "number": fresh_card(run_offset + i),
                        "exp_month": 12,
                        "exp_year": 2030,
                        "cvc": "123",
                    },
                }
                started = time.perf_counter()
                response = await http.post("/v1/payments", json=body)
                post_latency.append(time.perf_counter() - started)
                if response.status_code == 202:
                    payment_id = response.json()["id"]
                    sent_at[payment_id] = started
                    wanted.add(payment_id)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    accept_s = time.perf_counter() - started
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(captured_all.wait(), timeout=timeout_s)
    total_s = time.perf_counter() - started
    close_started = time.perf_counter()
    batches_closed = await close_batches(settlement, admin_token)
    close_request_s = time.perf_counter() - close_started
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), timeout=timeout_s)
    close_to_settled_s = time.perf_counter() - close_started
    done.set()
    await watcher

    outcome = [seen[p]["outcome"] - sent_at[p] for p in sent_at if "outcome" in seen.get(p, {})]
    captured = [seen[p]["captured"] - sent_at[p] for p in sent_at if "captured" in seen.get(p, {})]
    settled = [p for p in sent_at if "settled" in seen.get(p, {})]
    report = {
        "payments_sent": payments,
        "accepted": len(sent_at),
        "accept_rate_per_s": round(len(sent_at) / accept_s, 1),
        "post_p50_ms": round(1000 * statistics.median(post_latency), 1),
        "post_p99_ms": round(1000 * percentile(post_latency, 99), 1),
        "outcomes_seen": len(outcome),
        "captured_seen": len(captured),
        "end_to_end_captured_per_s": round(len(captured) / total_s, 1),
        "to_outcome_p50_ms": round(1000 * percentile(outcome, 50), 1),
        "to_outcome_p99_ms": round(1000 * percentile(outcome, 99), 1),
        "to_captured_p50_ms": round(1000 * percentile(captured, 50), 1),
        "to_captured_p99_ms": round(1000 * percentile(captured, 99), 1),
        "wall_s": round(total_s, 1),
        "batches_closed": batches_closed,
        "batch_close_request_s": round(close_request_s, 2),
        "settled_seen_after_close": len(settled),
        "close_to_all_settled_s": round(close_to_settled_s, 2),
    }
    print(json.dumps(report, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--payments", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument(
        "--intake", default=f"http://127.0.0.1:{os.environ.get('INTAKE_HTTP_PORT', '18000')}"
    )
    parser.add_argument(
        "--settlement",
        default=f"http://127.0.0.1:{os.environ.get('SETTLEMENT_HTTP_PORT', '18003')}",
    )
    args = parser.parse_args()
    bootstrap = os.environ.get(
        "KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{os.environ.get('SANALPOS_KAFKA_PORT', '29092')}"
    )
    admin_token = os.environ.get("SETTLEMENT_ADMIN_TOKEN", DEV_ADMIN_TOKEN)
    asyncio.run(
        bench(
            args.payments,
            args.concurrency,
            args.intake,
            bootstrap,
            args.timeout,
            args.settlement,
            admin_token,
        )
    )


if __name__ == "__main__":
    main()
