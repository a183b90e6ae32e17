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
import secrets
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from intake.config import DEMO_API_KEY
from sanalpos_common.crypto.card import luhn_check_digit

ROOT = Path(__file__).resolve().parents[1]


def fresh_card() -> str:
    """A new approving number per payment, as real traffic: no per-card velocity declines."""
    middle = "".join(secrets.choice("0123456789") for _ in range(11))
    return "4111" + middle + luhn_check_digit("4111" + middle)


def payment_body() -> dict[str, Any]:
    return {
        "amount": 1_000 + secrets.randbelow(50_000),
        "currency": "TRY",
        "capture": True,
        "card": {"number": fresh_card(), "exp_month": 12, "exp_year": 2031, "cvc": "123"},
    }


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))]


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


Request = Callable[[httpx.AsyncClient], Awaitable[str]]


async def healthz(http: httpx.AsyncClient) -> str:
    response = await http.get("/healthz")
    return str(response.status_code)


def post_payment(wait_s: int | None) -> Request:
    headers = {"Authorization": f"Bearer {DEMO_API_KEY}"}
    if wait_s is not None:
        headers["Prefer"] = f"wait={wait_s}"

    async def send(http: httpx.AsyncClient) -> str:
        response = await http.post("/v1/payments", json=payment_body(), headers=headers)
        if response.status_code in (201, 202):
            return f"{response.status_code} {response.json()['status']}"
        return str(response.status_code)

    return send


async def closed_loop(
    http: httpx.AsyncClient, name: str, request: Request, concurrency: int, seconds: float
) -> Phase:
    """`concurrency` clients, each sending its next request when the last one answered."""
    phase = Phase(name)
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                outcome = await request(http)
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            phase.record(started, outcome)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    phase.seconds = time.perf_counter() - started
    return phase


async def open_loop(
    http: httpx.AsyncClient, name: str, request: Request, rate: float, seconds: float
) -> Phase:
    """Requests start at a fixed rate whatever the answers do (a steady arrival of shoppers)."""
    phase = Phase(name)
    total = max(1, int(rate * seconds))

    async def one() -> None:
        started = time.perf_counter()
        try:
            outcome = await request(http)
        except httpx.HTTPError as exc:
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


async def drain(http: httpx.AsyncClient, wait_s: int, timeout_s: float = 180) -> None:
    """Returns once a fresh payment gets its outcome within the wait: the backlog is gone."""
    probe = post_payment(wait_s)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (await probe(http)).startswith("201"):
            return
    print("warning: the pipeline did not drain in time", file=sys.stderr)


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    limits = httpx.Limits(
        max_connections=args.concurrency, max_keepalive_connections=args.concurrency
    )
    async with httpx.AsyncClient(base_url=args.intake, timeout=60, limits=limits) as http:
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
