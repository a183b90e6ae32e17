#!/usr/bin/env python3
"""`make chaos`: the whole system under load and faults, then its invariants.

Starts its own Kafka and PostgreSQL (scripts/infra, own state folder and ports, data wiped
first) and the five services as processes; sends payments over HTTP and the Kafka entry
point (sales, pre-authorizations with captures or voids, refunds, declining cards) while it
SIGKILLs and restarts services, restarts the broker and PostgreSQL, and freezes one service
with SIGSTOP; plants unparseable messages. Then waits for consumer lag 0, checks the
invariants, replays authorization's and settlement's consumer groups from offset 0 (state
digests must not change) and times a poison message to its dead-letter topic. Prints every
figure; exits 1 when any invariant broke. Method and last figures: docs/reliability.md.

    python scripts/chaos.py                       # the full run: 10,000 payments, 20 kills, ...
    python scripts/chaos.py --payments 1000 --kills 5 --broker-restarts 1 \\
        --postgres-restarts 0 --freeze-s 0        # the small run of the test suite
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
from chaos import checks
from chaos.faults import FaultPlan, Injector
from chaos.load import Load, WebhookSink, make_plans
from chaos.stack import SERVICES, ChaosStack

from sanalpos_common.settings import DEV_ADMIN_TOKEN

ROOT = Path(__file__).resolve().parents[1]
# Consumer (dead-letter topic) -> consumer group, where the two differ.
GROUP_OF = {"fraud": "sanalpos-fraud"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--payments", type=int, default=10_000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--broker-restarts", type=int, default=3)
    parser.add_argument("--postgres-restarts", type=int, default=2)
    parser.add_argument("--freeze-s", type=float, default=60.0, help="SIGSTOP length; 0: none")
    parser.add_argument("--kafka-share", type=float, default=0.2, help="share over Kafka")
    parser.add_argument("--concurrency", type=int, default=24)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--drain-timeout", type=float, default=900.0)
    parser.add_argument(
        "--state-dir", default=env("CHAOS_STATE_DIR", str(ROOT / ".state" / "chaos"))
    )
    parser.add_argument("--kafka-port", type=int, default=int(env("CHAOS_KAFKA_PORT", "29392")))
    parser.add_argument(
        "--controller-port", type=int, default=int(env("CHAOS_KAFKA_CONTROLLER_PORT", "29393"))
    )
    parser.add_argument("--pg-port", type=int, default=int(env("CHAOS_PG_PORT", "25732")))
    parser.add_argument(
        "--service-ports",
        type=int,
        default=int(env("CHAOS_SERVICE_PORTS", "0")),
        help="first of the five service ports (default: kafka port + 10)",
    )
    parser.add_argument("--keep-data", action="store_true", help="do not wipe Kafka/PG data")
    parser.add_argument("--keep-running", action="store_true", help="leave the stack up")
    return parser.parse_args(argv)


def cutoff_far_from_now() -> str:
    local = datetime.now(ZoneInfo("Europe/Istanbul")) + timedelta(hours=12)
    return f"{local.hour:02d}:{local.minute:02d}"


async def set_up_merchant(
    intake_url: str, webhook_url: str
) -> tuple[dict[str, Any], str, dict[str, Any]]:
    admin = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=intake_url, timeout=30) as client:
        created = (
            await client.post(
                "/admin/merchants",
                json={"name": "Chaos Shop", "cutoff_time": cutoff_far_from_now()},
                headers=admin,
            )
        ).json()
        merchant_headers = {"Authorization": f"Bearer {created['api_key']}"}
        hook = await client.post(
            "/v1/webhook-endpoints", json={"url": webhook_url}, headers=merchant_headers
        )
        hook.raise_for_status()
        secret = (
            await client.post(f"/admin/merchants/{created['id']}/signing-secrets", headers=admin)
        ).json()["secret"]
        key = (await client.get("/v1/encryption-keys/current")).json()
    jwk = {k: key[k] for k in ("kty", "kid", "use", "alg", "n", "e") if k in key}
    return created, secret, jwk


async def open_pools(stack: ChaosStack) -> dict[str, asyncpg.Pool]:
    pools = {}
    for name in SERVICES:
        pool = await asyncpg.create_pool(stack.database_url(name), min_size=1, max_size=3)
        assert pool is not None
        pools[name] = pool
    return pools


async def keep_alive(stack: ChaosStack, died: list[str], stop: asyncio.Event) -> None:
    """A service that exits by itself (not killed by the harness) is counted and restarted."""
    while not stop.is_set():
        for name in stack.revive_dead():
            died.append(name)
            print(f"  !! {name} exited by itself; restarted", flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)


async def settle_everything(
    load: Load, stack: ChaosStack, pools: dict[str, asyncpg.Pool], timeout_s: float
) -> tuple[bool, float]:
    """Follow-ups acknowledged, lag 0, then batches closed until every capture settled."""
    started = time.monotonic()

    def left() -> float:
        return max(30.0, timeout_s - (time.monotonic() - started))

    drained = False
    for _ in range(6):
        drained, *_ = await checks.wait_for_zero_lag(stack.bootstrap, pools, left())
        while load.follow_ups_started_pending() and time.monotonic() - started < timeout_s:  # noqa: ASYNC110
            await asyncio.sleep(2)
        await load.close_batches()
        drained, *_ = await checks.wait_for_zero_lag(stack.bootstrap, pools, left())
        unsettled = await pools["intake"].fetchval(
            "SELECT count(*) FROM payments WHERE captured_amount > 0 AND NOT settled AND NOT voided"
        )
        if drained and unsettled == 0 and not load.follow_ups_started_pending():
            break
    return drained, time.monotonic() - started


async def replay_check(
    stack: ChaosStack, pools: dict[str, asyncpg.Pool], service: str
) -> checks.Result:
    before = await checks.state_digest(pools[service], service)
    stack.terminate(service)
    replayed = await checks.reset_group_to_start(stack.bootstrap, service)
    stack.start(service)
    await stack.wait_ready((service,))
    drained, seconds, *_ = await checks.wait_for_zero_lag(stack.bootstrap, pools, 600)
    after = await checks.state_digest(pools[service], service)
    return checks.Result(
        f"replaying {service}'s group from offset 0 changes no state",
        drained and before == after,
        f"{replayed} records read again in {seconds:.0f} s; digest {before} -> {after}",
    )


async def run_checks(
    stack: ChaosStack,
    pools: dict[str, asyncpg.Pool],
    acknowledged: list[str],
    planned: int,
    load_statuses: dict[str, int],
    died: list[str],
    planted: dict[str, int],
    results: list[checks.Result],
) -> None:
    results.append(checks.every_create_acknowledged(load_statuses, planned))
    results.append(await checks.payments_final_and_agree(pools, acknowledged))
    results.extend(await checks.no_duplicates(pools))
    results.append(await checks.ledger_balances(pools["settlement"]))
    results.append(
        await checks.ledger_days_close_on_the_ledger(
            stack.services["settlement"].url, DEV_ADMIN_TOKEN, pools["settlement"]
        )
    )
    await checks.wait_for_zero_lag(stack.bootstrap, pools, 120)  # the days it announced
    results.append(await checks.card_balances(pools["authorization"]))
    results.append(await checks.captures_in_one_batch(pools))
    results.append(await checks.outboxes_empty(pools))
    results.append(
        checks.Result(
            "no service exited by itself", not died, f"{len(died)} ({', '.join(died) or 'none'})"
        )
    )
    results.extend(await checks.poison_timing(stack.bootstrap, GROUP_OF))
    planted["count"] += len(checks.POISONED)
    for service in ("authorization", "settlement"):
        results.append(await replay_check(stack, pools, service))
    results.append(await checks.dead_letters_only_poison(stack.bootstrap, planted["count"]))


async def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    stack = ChaosStack(
        args.state_dir,
        args.kafka_port,
        args.controller_port,
        args.pg_port,
        service_port_base=args.service_ports,
    )
    fault_plan = FaultPlan(args.kills, args.broker_restarts, args.postgres_restarts, args.freeze_s)
    sink = WebhookSink()
    webhook_url = sink.start()
    began = time.monotonic()
    print(
        f"chaos run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {args.payments} payments, {args.kills} kills, {args.broker_restarts} broker and {args.postgres_restarts} PostgreSQL restarts, SIGSTOP {args.freeze_s:.0f} s",
        flush=True,
    )
    print(
        f"state {stack.state_dir}, kafka 127.0.0.1:{args.kafka_port}, postgres 127.0.0.1:{args.pg_port}",
        flush=True,
    )
    died: list[str] = []
    stop_watch = asyncio.Event()
    results: list[checks.Result] = []
    pools: dict[str, asyncpg.Pool] = {}
    try:
        await stack.infra_up(fresh=not args.keep_data)
        stack.start_all()
        await stack.wait_ready()
        print(f"stack ready in {time.monotonic() - began:.0f} s", flush=True)
        merchant, secret, jwk = await set_up_merchant(stack.services["intake"].url, webhook_url)
        plans = make_plans(args.payments, rng, args.kafka_share)
        load = Load(
            stack.services["intake"].url,
            stack.services["settlement"].url,
            stack.bootstrap,
            merchant,
            secret,
            jwk,
            DEV_ADMIN_TOKEN,
            plans,
            args.concurrency,
        )
        await load.start()
        injector = Injector(stack, fault_plan, rng)
        planted = {"count": 0}
        poison_task: list[asyncio.Task[int]] = []

        def on_progress(share: float) -> None:
            injector.on_progress(share)
            if share >= 0.5 and not poison_task:
                poison_task.append(
                    asyncio.create_task(checks.plant_poison(stack.bootstrap, "load"))
                )

        watch = asyncio.create_task(keep_alive(stack, died, stop_watch))
        load_done = asyncio.Event()
        print("load and faults:", flush=True)
        faults = asyncio.create_task(injector.run(load_done))
        load_s = await load.run(on_progress)
        load_done.set()
        await faults
        for task in poison_task:
            planted["count"] += await task
        print(
            f"load: {load.sent} creates answered in {load_s:.0f} s ({load.sent / load_s:.1f}/s), {load.acknowledged} acknowledged",
            flush=True,
        )

        await stack.wait_ready()
        pools = await open_pools(stack)
        drained, drain_s = await settle_everything(load, stack, pools, args.drain_timeout)
        print(
            f"drained (lag 0, outboxes empty, batches closed) in {drain_s:.0f} s: {drained}",
            flush=True,
        )
        stop_watch.set()
        await watch

        acknowledged = [p.payment_id for p in plans if p.acknowledged and p.payment_id]
        results.append(checks.Result("consumer lag reached 0", drained, f"after {drain_s:.0f} s"))
        try:
            await run_checks(
                stack,
                pools,
                acknowledged,
                len(plans),
                dict(load.stats.statuses),
                died,
                planted,
                results,
            )
        except Exception as exc:
            results.append(checks.Result("the checks ran to the end", False, repr(exc)[:500]))
        await load.stop()

        print_report(args, load, injector, sink, results, time.monotonic() - began)
        return 0 if all(r.ok for r in results) else 1
    finally:
        stop_watch.set()
        for pool in pools.values():
            with contextlib.suppress(Exception):
                await pool.close()
        sink.stop()
        if not args.keep_running:
            stack.stop_all()
            await stack.infra_down()


def print_report(
    args: argparse.Namespace,
    load: Load,
    injector: Injector,
    sink: WebhookSink,
    results: list[checks.Result],
    total_s: float,
) -> None:
    plans = load.plans
    kinds: dict[str, int] = {}
    for plan in plans:
        label = f"{plan.kind}{'+' + plan.follow_up if plan.follow_up else ''} ({plan.entry})"
        kinds[label] = kinds.get(label, 0) + 1
    print("\n== chaos run figures ==")
    print(f"payments planned {len(plans)}, acknowledged {load.acknowledged}; mix:")
    for label, count in sorted(kinds.items()):
        print(f"  {label:<40} {count}")
    print("answers:", ", ".join(f"{k}: {v}" for k, v in sorted(load.stats.statuses.items())))
    print(
        f"HTTP retries {load.stats.http_retries}, Kafka re-sends {load.stats.kafka_resends}, 409s asked again {load.stats.conflicts_retried}, batches closed {load.stats.batches_closed}"
    )
    log = injector.log
    print(
        f"faults: SIGKILL {log.count('SIGKILL')}, broker restarts {log.count('broker')}, PostgreSQL restarts {log.count('postgres')}, SIGSTOP {log.count('SIGSTOP')}"
    )
    kills: dict[str, int] = {}
    for _, kind, target, _ in log.done:
        if kind == "SIGKILL":
            kills[target] = kills.get(target, 0) + 1
    print("  kills per service:", ", ".join(f"{k} {v}" for k, v in sorted(kills.items())))
    redelivered = sum(1 for n in sink.received.values() if n > 1)
    print(
        f"webhooks received: {sum(sink.received.values())} posts, {len(sink.received)} distinct webhook-ids, {redelivered} delivered more than once (same webhook-id: at-least-once, receivers dedupe)"
    )
    print("invariants:")
    for result in results:
        print(result.line())
    broken = [r for r in results if not r.ok]
    print(f"\n{len(results) - len(broken)}/{len(results)} checks hold; total {total_s:.0f} s")
    if broken:
        print("BROKEN: " + "; ".join(r.name for r in broken))


def main() -> None:
    args = parse_args()
    args.state_dir = Path(args.state_dir).resolve()
    # The harness's own clients log every refused connection while the broker is down.
    logging.basicConfig(level=logging.ERROR)
    for noisy in ("aiokafka", "kafka"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
