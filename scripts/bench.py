#!/usr/bin/env python3
"""`make bench`: one command, one run, every number of the performance issue against a running
stack (`make bench` starts it with `stack.py up` when none runs). Prints a report and writes it
with the raw JSON and a PNG under .state/bench/<timestamp>/. Asserts nothing.

  1. bare baseline: a 5-hop aiokafka relay on the same broker, pipeline idle (bench/relay.py)
  2. saturation over HTTP: open-loop POST /v1/payments at stepped offered rates
  3. saturation over the Kafka entry point: the same, as signed requests on Kafka
  4. latency at half the HTTP saturation: send -> outcome/captured on Kafka; Prefer: wait=5
  5. CPU ms per payment per component during that fixed-rate phase (/proc)
  6. Kafka records per payment in that phase (end-offset deltas of every topic)
  7. the chart

    python scripts/bench.py [--steps 25,50,100,...] [--step-seconds 12]
    python scripts/bench.py profile --service intake --seconds 20 --rate 50   (py-spy)
    python scripts/bench.py cpu --rate 25 --seconds 30               (CPU per component)
    python scripts/bench.py latency --rate 30 --seconds 20 --rounds 2  (with/without Prefer: wait)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from bench import cpu, offsets, relay
from bench.chart import draw
from bench.loadgen import (
    HttpEntry,
    KafkaEntry,
    OutcomeWatcher,
    Sent,
    open_loop,
    step_report,
    wait_outcomes,
)
from bench.stats import ratio

from intake.config import DEMO_API_KEY, DEMO_MERCHANT_ID
from sanalpos_common.settings import DEV_ADMIN_TOKEN, local_database_url

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("intake", "fraud", "authorization", "settlement", "notification")
DEFAULT_PORTS = dict(zip(SERVICES, range(18000, 18005), strict=True))
FOLLOWS = 0.9  # a step "follows" the offered rate when accepted and completed reach 90% of it


def port(service: str) -> int:
    return int(os.environ.get(f"{service.upper()}_HTTP_PORT", DEFAULT_PORTS[service]))


def intake_url() -> str:
    return f"http://127.0.0.1:{port('intake')}"


def bootstrap() -> str:
    return os.environ.get(
        "KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{os.environ.get('SANALPOS_KAFKA_PORT', '29092')}"
    )


def state_dir() -> Path:
    return Path(os.environ.get("SANALPOS_STATE_DIR", ROOT / ".state")).resolve()


def database_url() -> str:
    if url := os.environ.get("INTAKE_DATABASE_URL"):
        return url
    return local_database_url("intake", int(os.environ.get("SANALPOS_PG_PORT", "25432")))


def http_json(method: str, path: str, token: str | None = None) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        intake_url() + path,
        data=b"{}" if method == "POST" else None,
        method=method,
        headers=headers,
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def signing_secret() -> str:
    """A fresh signing secret for the demo merchant through intake's admin API (it rotates:
    the previous newest secret stays valid, older ones are revoked)."""
    token = os.environ.get("INTAKE_ADMIN_TOKEN", DEV_ADMIN_TOKEN)
    return http_json("POST", f"/admin/merchants/{DEMO_MERCHANT_ID}/signing-secrets", token)[
        "secret"
    ]


def platform_jwk() -> dict[str, Any]:
    key = http_json("GET", "/v1/encryption-keys/current")
    return {k: key[k] for k in ("kty", "kid", "use", "alg", "n", "e") if k in key}


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random()
        self._watcher: OutcomeWatcher | None = None

    @property
    def watcher(self) -> OutcomeWatcher:
        if self._watcher is None:  # aiokafka objects are made inside the running loop
            self._watcher = OutcomeWatcher(bootstrap())
        return self._watcher

    async def step(
        self,
        entry: HttpEntry | KafkaEntry,
        offered: float,
        seconds: float,
        wait_s: int | None = None,
    ) -> tuple[dict[str, Any], list[Sent]]:
        count = max(1, round(offered * seconds))
        entry.prepare(count, self.rng)
        send = entry.sender(wait_s) if isinstance(entry, HttpEntry) else entry.sender()
        sent, cpu_share = await open_loop(offered, seconds, send)
        is_kafka = isinstance(entry, KafkaEntry)
        outcomes = self.watcher.outcomes
        await wait_outcomes(sent, outcomes, seconds + self.args.grace, kafka_entry=is_kafka)
        report = step_report(offered, sent, outcomes, cpu_share)
        # whatever is still in flight must be gone before the next step starts
        await wait_outcomes(sent, outcomes, self.args.drain_timeout, kafka_entry=is_kafka)
        await asyncio.sleep(1)
        return report, sent

    async def saturate(self, entry: HttpEntry | KafkaEntry, label: str) -> dict[str, Any]:
        steps = []
        for offered in self.args.steps:
            report, _ = await self.step(entry, offered, self.args.step_seconds)
            follows = (
                report["accepted_per_s"] >= FOLLOWS * offered
                and report["completed_per_s"] >= FOLLOWS * offered
            )
            report["follows"] = follows
            steps.append(report)
            print(
                f"  {label} offered {offered:>6.0f}/s: accepted {report['accepted_per_s']:>7.1f}/s,"
                f" completed {report['completed_per_s']:>7.1f}/s, send->outcome p50 "
                f"{report['to_outcome']['p50_ms']} ms p99 {report['to_outcome']['p99_ms']} ms,"
                f" generator CPU {100 * report['generator_cpu_share']:.0f}%",
                flush=True,
            )
            if not follows:
                break
        return {
            "steps": steps,
            "saturation_completed_per_s": max(s["completed_per_s"] for s in steps),
            "saturation_accepted_per_s": max(s["accepted_per_s"] for s in steps),
            "max_generator_cpu_share": max(s["generator_cpu_share"] for s in steps),
        }

    async def accounting_snapshot(self) -> dict[str, Any]:
        return {
            "ticks": cpu.group_ticks(cpu.all_stats(), cpu.stack_pids(state_dir(), SERVICES)),
            "machine": cpu.machine_busy(),
            "offsets": await offsets.end_offsets(bootstrap()),
            "generator_cpu_s": time.process_time(),
            "wall": time.perf_counter(),
        }

    async def steady(self, http: HttpEntry, offered: float) -> dict[str, Any]:
        """The fixed-rate phase: latencies, and CPU and Kafka records per payment."""
        datnames = await pg_datnames()
        before = await self.accounting_snapshot()
        report, _ = await self.step(http, offered, self.args.steady_seconds)
        after = await self.accounting_snapshot()
        datnames.update(await pg_datnames())
        payments = max(1, report["completed"])
        ticks = cpu.attribute_postgres(cpu.delta(before["ticks"], after["ticks"]), datnames)
        per_payment = {k: round(cpu.ticks_to_ms(v) / payments, 3) for k, v in sorted(ticks.items())}
        busy = after["machine"][0] - before["machine"][0]
        span = after["machine"][1] - before["machine"][1]
        records = offsets.records_between(before["offsets"], after["offsets"])
        wall = after["wall"] - before["wall"]
        report["accounting"] = {
            "payments": report["completed"],
            "window_s": round(wall, 1),
            "cpu_ms_per_payment": per_payment,
            "cpu_ms_per_payment_total": round(sum(per_payment.values()), 3),
            "generator_cpu_ms_per_payment": round(
                1000 * (after["generator_cpu_s"] - before["generator_cpu_s"]) / payments, 3
            ),
            "machine_busy_share": round(busy / span, 3) if span else None,
            "machine_cpus": os.cpu_count(),
            "machine_busy_ms_per_payment": round(cpu.ticks_to_ms(busy) / payments, 3),
            "kafka_records": sum(records.values()),
            "kafka_records_per_payment": round(sum(records.values()) / payments, 2),
            "kafka_records_by_topic": records,
        }
        return report

    async def run(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "started_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "load_average_at_start": os.getloadavg(),
        }
        print(f"bench: intake {intake_url()}, Kafka {bootstrap()}, state {state_dir()}", flush=True)
        print(f"1. bare 5-hop relay, {self.args.relay_messages} x 300 B ...", flush=True)
        report["relay"] = await relay.measure(bootstrap(), self.args.relay_messages)
        print(f"  relay: {report['relay']['messages_per_s']} messages/s end to end", flush=True)
        await self.watcher.start()
        try:
            async with HttpEntry(intake_url(), DEMO_API_KEY) as http:
                await self.step(http, 10, 2)  # warm-up: every service and pool connection alive
                print("2. saturation over HTTP (open loop, stepped offered rate)", flush=True)
                report["http_saturation"] = await self.saturate(http, "HTTP ")
                print("3. saturation over the Kafka entry point", flush=True)
                async with KafkaEntry(
                    bootstrap(), DEMO_MERCHANT_ID, signing_secret(), platform_jwk()
                ) as kafka:
                    report["kafka_saturation"] = await self.saturate(kafka, "Kafka")
                fixed = max(1.0, round(report["http_saturation"]["saturation_completed_per_s"] / 2))
                print(
                    f"4-6. fixed rate {fixed:.0f}/s (half the HTTP saturation), "
                    f"{self.args.steady_seconds:.0f} s, with CPU and Kafka accounting",
                    flush=True,
                )
                report["steady"] = await self.steady(http, fixed)
                print(
                    f"4b. fixed rate {fixed:.0f}/s with Prefer: wait={self.args.wait}", flush=True
                )
                report["steady_wait"], _ = await self.step(
                    http, fixed, self.args.steady_seconds, wait_s=self.args.wait
                )
        finally:
            await self.watcher.stop()
        report["load_average_at_end"] = os.getloadavg()
        return report


async def pg_datnames() -> dict[int, str]:
    """Backend pid -> database, for attributing Postgres CPU (none when unreachable)."""
    try:
        connection = await asyncpg.connect(database_url(), timeout=10)
    except (OSError, asyncpg.PostgresError):
        return {}
    try:
        rows = await connection.fetch(
            "SELECT pid, datname FROM pg_stat_activity WHERE datname IS NOT NULL "
            "AND pid <> pg_backend_pid()"
        )
    finally:
        await connection.close()
    return {row["pid"]: row["datname"] for row in rows}


def render(report: dict[str, Any]) -> str:
    base = report["relay"]["messages_per_s"]
    http, kafka = report["http_saturation"], report["kafka_saturation"]
    steady, waited = report["steady"], report["steady_wait"]
    acc = steady["accounting"]

    def vs(value: float) -> str:
        return f"{value:>8.1f}/s  ({ratio(value, base):.3f} x relay)"

    lines = [
        f"sanalpos make bench — {report['started_at']}, {acc['machine_cpus']} CPUs, load average"
        f" {report['load_average_at_start'][0]:.1f} at start, {report['load_average_at_end'][0]:.1f}"
        " at end",
        "",
        f"1. bare 5-hop Kafka relay (300 B, acks=all, idempotent)  {vs(base)}",
        "",
        "2. saturation over HTTP (open loop)",
    ]
    for name, sat in (("HTTP", http), ("Kafka entry", kafka)):
        if name != "HTTP":
            lines += ["", "3. saturation over the Kafka entry point (open loop, signed requests)"]
        lines.append(
            f"   {'offered':>8} {'sent':>8} {'accepted':>9} {'completed':>10} "
            f"{'p50 ms':>8} {'p99 ms':>8} {'gen CPU':>8}  completed/relay"
        )
        for s in sat["steps"]:
            lines.append(
                f"   {s['offered_per_s']:>8.0f} {s['sent_per_s']:>8.1f} {s['accepted_per_s']:>9.1f}"
                f" {s['completed_per_s']:>10.1f} {s['to_outcome']['p50_ms'] or 0:>8.0f}"
                f" {s['to_outcome']['p99_ms'] or 0:>8.0f} {100 * s['generator_cpu_share']:>7.0f}%"
                f"  {ratio(s['completed_per_s'], base):.3f}"
                + ("" if s["follows"] else "   <- no longer follows")
            )
        lines.append(
            f"   saturation ({name}): completed {vs(sat['saturation_completed_per_s'])},"
            f" accepted {sat['saturation_accepted_per_s']:.1f}/s; generator CPU at most"
            f" {100 * sat['max_generator_cpu_share']:.0f}% of one core"
        )
    o, c, r = steady["to_outcome"], steady["to_captured"], waited["response"]
    lines += [
        "",
        f"4. latency at a fixed {steady['offered_per_s']:.0f}/s (half the HTTP saturation;"
        f" {vs(steady['offered_per_s']).strip()})",
        f"   POST sent -> authorization outcome on Kafka  p50 {o['p50_ms']} ms  p99 {o['p99_ms']} ms"
        f"  ({o['count']} payments)",
        f"   POST sent -> captured on Kafka               p50 {c['p50_ms']} ms  p99 {c['p99_ms']} ms",
        f"   POST response (202)                          p50 {steady['response']['p50_ms']} ms"
        f"  p99 {steady['response']['p99_ms']} ms",
        f"   with Prefer: wait=5, HTTP response           p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms"
        f"  (answers {waited['answers']}, completed {waited['completed_per_s']}/s)",
        "",
        f"5. CPU ms per payment during that phase ({acc['payments']} payments in"
        f" {acc['window_s']} s)",
    ]
    width = max(len(k) for k in acc["cpu_ms_per_payment"])
    for name, value in sorted(acc["cpu_ms_per_payment"].items(), key=lambda kv: -kv[1]):
        lines.append(f"   {name:<{width}}  {value:>8.2f}")
    lines += [
        f"   {'total (stack)':<{width}}  {acc['cpu_ms_per_payment_total']:>8.2f}",
        f"   {'load generator':<{width}}  {acc['generator_cpu_ms_per_payment']:>8.2f}",
        f"   machine busy {100 * acc['machine_busy_share']:.0f}% of {acc['machine_cpus']} CPUs in the"
        f" window = {acc['machine_busy_ms_per_payment']:.2f} ms/payment (includes anything else"
        " running on the box)",
        "",
        f"6. Kafka records per payment: {acc['kafka_records_per_payment']}"
        f" ({acc['kafka_records']} records, all topics but __consumer_offsets); top topics:",
    ]
    for topic, count in list(acc["kafka_records_by_topic"].items())[:12]:
        lines.append(f"   {topic:<60} {count / max(1, acc['payments']):>6.2f}")
    return "\n".join(lines)


async def profile(args: argparse.Namespace) -> None:
    """py-spy flamegraph of one service while the open-loop generator runs at a fixed rate."""
    pids = cpu.stack_pids(state_dir(), SERVICES)
    if args.service not in pids.services:
        sys.exit(f"{args.service} is not running (make up)")
    out = ROOT / ".state" / "bench" / f"profile-{args.service}-{time.strftime('%Y%m%d-%H%M%S')}.svg"
    out.parent.mkdir(parents=True, exist_ok=True)
    py_spy = Path(sys.executable).with_name("py-spy")
    spy = await asyncio.create_subprocess_exec(
        str(py_spy),
        "record",
        "--pid",
        str(pids.services[args.service]),
        "--subprocesses",
        "--nonblocking",
        "--duration",
        str(args.seconds),
        "--output",
        str(out),
    )
    async with HttpEntry(intake_url(), DEMO_API_KEY) as http:
        http.prepare(round(args.rate * args.seconds), random.Random())
        sent, share = await open_loop(args.rate, args.seconds, http.sender())
    code = await spy.wait()
    ok = sum(1 for s in sent if s.status == 202)
    print(
        f"{ok}/{len(sent)} payments accepted at {args.rate}/s (generator CPU {100 * share:.0f}%);"
        f" py-spy exit {code}; flamegraph: {out}"
    )


async def cpu_probe(args: argparse.Namespace) -> None:
    """CPU per component for one fixed rate (0: the idle stack), as ms per second of wall time
    and, under load, ms per completed payment: the quick check between two changes."""
    bench = Bench(args)
    datnames = await pg_datnames()
    await bench.watcher.start()
    entry: HttpEntry | KafkaEntry = (
        KafkaEntry(bootstrap(), DEMO_MERCHANT_ID, signing_secret(), platform_jwk())
        if args.entry == "kafka"
        else HttpEntry(intake_url(), DEMO_API_KEY)
    )
    try:
        async with entry:
            if args.rate > 0:
                await bench.step(entry, 10, 2)  # warm-up
            before = await bench.accounting_snapshot()
            if args.rate > 0:
                report, _ = await bench.step(entry, args.rate, args.seconds)
                payments = max(1, report["completed"])
            else:
                await asyncio.sleep(args.seconds)
                payments = 0
            after = await bench.accounting_snapshot()
    finally:
        await bench.watcher.stop()
    datnames.update(await pg_datnames())
    ticks = cpu.attribute_postgres(cpu.delta(before["ticks"], after["ticks"]), datnames)
    wall = after["wall"] - before["wall"]
    records = sum(offsets.records_between(before["offsets"], after["offsets"]).values())
    print(
        f"{payments} payments at {args.rate}/s offered over {args.entry} in {wall:.1f} s;"
        f" {records} Kafka records"
    )
    print(f"   {'component':<32} {'ms/s':>8} {'ms/payment':>11}")
    for name, value in sorted(ticks.items(), key=lambda kv: -kv[1]):
        ms = cpu.ticks_to_ms(value)
        per = f"{ms / payments:>11.2f}" if payments else ""
        print(f"   {name:<32} {ms / wall:>8.1f} {per}")
    total = cpu.ticks_to_ms(sum(ticks.values()))
    per = f"{total / payments:>11.2f}" if payments else ""
    print(f"   {'total':<32} {total / wall:>8.1f} {per}")


async def latency_probe(args: argparse.Namespace) -> None:
    """Latency at one fixed rate, steps without and with `Prefer: wait` taking turns: the quick
    check of the synchronous answer between two changes."""
    bench = Bench(args)
    await bench.watcher.start()
    try:
        async with HttpEntry(intake_url(), DEMO_API_KEY) as http:
            await bench.step(http, 10, 2)  # warm-up
            print(
                f"{'step':<10} {'to outcome p50/p99':>20} {'to captured p50/p99':>20}"
                f" {'response p50/p99':>18} ms  answered"
            )
            for _ in range(args.rounds):
                for wait_s in (None, args.wait):
                    report, _ = await bench.step(http, args.rate, args.seconds, wait_s=wait_s)
                    o, c, r = report["to_outcome"], report["to_captured"], report["response"]
                    label = f"wait={wait_s}" if wait_s else "no wait"
                    print(
                        f"{label:<10} {o['p50_ms']:>9} / {o['p99_ms']:<8} {c['p50_ms']:>9} /"
                        f" {c['p99_ms']:<8} {r['p50_ms']:>7} / {r['p99_ms']:<8}"
                        f"    {report['accepted']}/{report['sent']}",
                        flush=True,
                    )
    finally:
        await bench.watcher.stop()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "mode", nargs="?", default="bench", choices=["bench", "profile", "cpu", "latency"]
    )
    parser.add_argument(
        "--steps",
        default="25,50,75,100,150,200,300,400,600,800",
        help="offered payments/s, in order; stops at the first step not followed",
    )
    parser.add_argument("--step-seconds", type=float, default=12.0)
    parser.add_argument("--steady-seconds", type=float, default=20.0)
    parser.add_argument(
        "--grace",
        type=float,
        default=15.0,
        help="seconds after a step's sends that still count for its completions",
    )
    parser.add_argument("--drain-timeout", type=float, default=120.0)
    parser.add_argument("--relay-messages", type=int, default=20_000)
    parser.add_argument("--wait", type=int, default=5, help="N of Prefer: wait=N")
    parser.add_argument("--service", default="intake", help="profile: the service to record")
    parser.add_argument("--seconds", type=int, default=20, help="profile: seconds to record")
    parser.add_argument(
        "--rate", type=float, default=50.0, help="profile, cpu, latency: offered payments/s"
    )
    parser.add_argument("--rounds", type=int, default=2, help="latency: pairs of steps")
    parser.add_argument(
        "--entry", choices=["http", "kafka"], default="http", help="cpu: the entry point"
    )
    args = parser.parse_args()
    args.steps = [float(s) for s in args.steps.split(",")]
    return args


def main() -> None:
    args = parse_args()
    if args.mode == "profile":
        asyncio.run(profile(args))
        return
    if args.mode == "cpu":
        asyncio.run(cpu_probe(args))
        return
    if args.mode == "latency":
        asyncio.run(latency_probe(args))
        return
    report = asyncio.run(Bench(args).run())
    out = ROOT / ".state" / "bench" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    text = render(report)
    (out / "results.json").write_text(json.dumps(report, indent=2))
    (out / "report.txt").write_text(text + "\n")
    draw(report, out / "bench.png")
    print("\n" + text + f"\n\nwritten: {out}/results.json, report.txt, bench.png")


if __name__ == "__main__":
    main()
