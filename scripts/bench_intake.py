#!/usr/bin/env python3
"""Intake throughput against a running stack (`make up`, or `--start`). Prints numbers;
asserts nothing. Every phase uses the same client concurrency against the same server:

  1. GET /healthz                          requests/s (the server's trivial ceiling)
  2. POST /v1/payments                     requests/s, latency (202: accepted)
  3. POST /v1/payments, Prefer: wait=N     requests/s, latency (201: outcome in the answer)
  4. steady load: POST with Prefer: wait=N at a fixed arrival rate (open loop), p50/p99 of
     the synchronous answer

and the ratios of 2 and 3 to 1. Between phases the pipeline is left to drain, so one
phase's backlog does not slow the next.

    python scripts/bench_intake.py --concurrency 16 --duration 10
    make bench-intake
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from bench.loadgen import payment_body
from bench.stats import percentile

from intake.config import DEMO_API_KEY

ROOT = Path(__file__).resolve().parents[1]
RNG = random.Random()


@dataclass
class Phase:
    name: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)

    def record(self, started: float, outcome: str) -> None:
        self.latencies.append(time.perf_counter() - started)
        self.statuses[outcome] += 1

    def summary(self) -> dict[str, Any]:
        done = len(self.latencies)
        return {
            "requests": done,
            "requests_per_s": round(done / self.seconds, 1) if self.seconds else None,
            "p50_ms": round(1000 * percentile(self.latencies, 50), 1),
            "p99_ms": round(1000 * percentile(self.latencies, 99), 1),
            "mean_ms": round(1000 * statistics.fmean(self.latencies), 1) if done else None,
            "answers": dict(sorted(self.statuses.items())),
        }


Request = Callable[[aiohttp.ClientSession], Awaitable[str]]
# aiohttp, not httpx: httpx's pool capped this very client at ~176 GET /healthz per second,
# so the "server ceiling" was the client's.
CLIENT_ERRORS = (aiohttp.ClientError, TimeoutError)


async def healthz(http: aiohttp.ClientSession) -> str:
    async with http.get("/healthz") as response:
        await response.read()
        return str(response.status)


def post_payment(wait_s: int | None) -> Request:
    headers = {"Authorization": f"Bearer {DEMO_API_KEY}"}
    if wait_s is not None:
        headers["Prefer"] = f"wait={wait_s}"

    async def send(http: aiohttp.ClientSession) -> str:
        async with http.post(
            "/v1/payments",
            json=payment_body(RNG),
            headers={**headers, "Idempotency-Key": f"bench-intake-{uuid.uuid4()}"},
        ) as response:
            if response.status in (201, 202):
                return f"{response.status} {(await response.json())['status']}"
            await response.read()
            return str(response.status)

    return send


async def closed_loop(
    http: aiohttp.ClientSession, name: str, request: Request, concurrency: int, seconds: float
) -> Phase:
    """`concurrency` clients, each sending its next request when the last one answered."""
    phase = Phase(name)
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                outcome = await request(http)
            except CLIENT_ERRORS as exc:
                outcome = type(exc).__name__
            phase.record(started, outcome)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    phase.seconds = time.perf_counter() - started
    return phase


async def open_loop(
    http: aiohttp.ClientSession, name: str, request: Request, rate: float, seconds: float
) -> Phase:
    """Requests start at a fixed rate whatever the answers do (a steady arrival of shoppers)."""
    phase = Phase(name)
    total = max(1, int(rate * seconds))

    async def one() -> None:
        started = time.perf_counter()
        try:
            outcome = await request(http)
        except CLIENT_ERRORS as exc:
            outcome = type(exc).__name__
        phase.record(started, outcome)

    tasks = []
    started = time.perf_counter()
    for index in range(total):
        delay = started + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    phase.seconds = time.perf_counter() - started
    return phase


async def drain(http: aiohttp.ClientSession, wait_s: int, timeout_s: float = 180) -> None:
    """Returns once a fresh payment gets its outcome within the wait: the backlog is gone."""
    probe = post_payment(wait_s)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (await probe(http)).startswith("201"):
            return
    print("warning: the pipeline did not drain in time", file=sys.stderr)


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    async with aiohttp.ClientSession(
        base_url=args.intake,
        connector=aiohttp.TCPConnector(limit=args.concurrency),
        timeout=aiohttp.ClientTimeout(total=60),
    ) as http:
        await drain(http, args.wait)  # also warms every service up
        health = await closed_loop(http, "healthz", healthz, args.concurrency, args.duration)
        plain = await closed_loop(http, "post", post_payment(None), args.concurrency, args.duration)
        await drain(http, args.wait)
        waited = await closed_loop(
            http, "post_wait", post_payment(args.wait), args.concurrency, args.duration
        )
        await drain(http, args.wait)
        rate = args.steady_rate or max(1.0, round(0.5 * len(waited.latencies) / waited.seconds))
        steady = await open_loop(
            http, "steady_wait", post_payment(args.wait), rate, args.steady_duration
        )
    report = {
        "intake": args.intake,
        "concurrency": args.concurrency,
        "phase_seconds": args.duration,
        "prefer_wait_s": args.wait,
        "healthz": health.summary(),
        "post": plain.summary(),
        "post_wait": waited.summary(),
        "steady_wait": {"arrival_rate_per_s": rate, **steady.summary()},
    }
    health_rps = report["healthz"]["requests_per_s"]
    report["ratio_post_to_healthz"] = round(report["post"]["requests_per_s"] / health_rps, 3)
    report["ratio_post_wait_to_healthz"] = round(
        report["post_wait"]["requests_per_s"] / health_rps, 3
    )
    return report


def start_stack() -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "stack.py"), "up"], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--intake", default=f"http://127.0.0.1:{os.environ.get('INTAKE_HTTP_PORT', '18000')}"
    )
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--wait", type=int, default=5, help="N of Prefer: wait=N")
    parser.add_argument(
        "--steady-rate",
        type=float,
        default=None,
        help="arrivals/s of the steady phase (default: half the Prefer: wait throughput)",
    )
    parser.add_argument("--steady-duration", type=float, default=15.0)
    parser.add_argument("--start", action="store_true", help="start the stack first (stack.py up)")
    args = parser.parse_args()
    if args.start:
        start_stack()
    report = asyncio.run(bench(args))
    print(json.dumps(report, indent=2))
    print(
        f"\nPOST /v1/payments: {report['post']['requests_per_s']} req/s, with Prefer: "
        f"wait={args.wait}: {report['post_wait']['requests_per_s']} req/s; /healthz: "
        f"{report['healthz']['requests_per_s']} req/s (concurrency {args.concurrency}).\n"
        f"ratio POST/healthz = {report['ratio_post_to_healthz']}, "
        f"POST+wait/healthz = {report['ratio_post_wait_to_healthz']}; synchronous answer at "
        f"{report['steady_wait']['arrival_rate_per_s']}/s steady: p50 "
        f"{report['steady_wait']['p50_ms']} ms, p99 {report['steady_wait']['p99_ms']} ms"
    )


if __name__ == "__main__":
    main()
