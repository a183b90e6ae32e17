"""`sanalpos trace PAYMENT_ID` and `sanalpos status [--watch]`: the ops teams' view.

Where things are comes from the same environment the services read (defaults: the local
`make run` stack): `<SERVICE>_HTTP_HOST`/`<SERVICE>_HTTP_PORT`, `<SERVICE>_DATABASE_URL` (or
the local database on `SANALPOS_PG_PORT`), `KAFKA_BOOTSTRAP_SERVERS` (or `SANALPOS_KAFKA_PORT`)
and `SANALPOS_TRACE_FILE` (or `$SANALPOS_STATE_DIR/traces.jsonl`).

`trace` reads each service's own database (one connection per service, its own tables only,
each through that service's `sanalpos.timeline` entry point) and the trace file. `status`
asks each service's `/readyz` and `/metrics`, and Kafka for the dead-letter topics' sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import asyncpg
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from sanalpos_common import timeline, tracing
from sanalpos_common.settings import local_database_url

SERVICES = ("intake", "fraud", "authorization", "settlement", "notification")
DEFAULT_PORTS = {
    "intake": 18000,
    "fraud": 18001,
    "authorization": 18002,
    "settlement": 18003,
    "notification": 18004,
}
_COLOURS = {
    "intake": "cyan",
    "fraud": "magenta",
    "authorization": "yellow",
    "settlement": "green",
    "notification": "blue",
}


# ------------------------------------------------------------------------- where things are


def service_url(service: str, env: Mapping[str, str]) -> str:
    host = env.get(f"{service.upper()}_HTTP_HOST", "127.0.0.1")
    host = "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host
    port = env.get(f"{service.upper()}_HTTP_PORT", str(DEFAULT_PORTS[service]))
    return f"http://{host}:{port}"


def database_url(service: str, env: Mapping[str, str]) -> str:
    return env.get(f"{service.upper()}_DATABASE_URL") or local_database_url(
        service, int(env.get("SANALPOS_PG_PORT", "25432"))
    )


def kafka_servers(env: Mapping[str, str]) -> str:
    return env.get("KAFKA_BOOTSTRAP_SERVERS") or (
        f"127.0.0.1:{env.get('SANALPOS_KAFKA_PORT', '29092')}"
    )


def trace_file(env: Mapping[str, str]) -> Path:
    if path := env.get(tracing.TRACE_FILE_ENV):
        return Path(path)
    return Path(env.get("SANALPOS_STATE_DIR", ".state")) / "traces.jsonl"


def _console() -> Console:
    # Not a terminal (a pipe, a test): wide enough that rows are not wrapped mid-word.
    return Console(width=None if sys.stdout.isatty() else 180)


# -------------------------------------------------------------------------------- trace


@dataclass
class ServiceRecords:
    entries: list[timeline.ServiceEntry] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


async def collect_records(payment_id: uuid.UUID, env: Mapping[str, str]) -> ServiceRecords:
    """Each service's own records of the payment, from its own database."""
    domain = {ep.name: ep for ep in entry_points(group="sanalpos.timeline")}
    records = ServiceRecords()
    connections: dict[str, asyncpg.Connection] = {}
    try:
        for service in SERVICES:
            try:
                conn = await asyncpg.connect(database_url(service, env), timeout=5)
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                records.errors[service] = f"database unreachable ({type(exc).__name__})"
                continue
            connections[service] = conn
            found = await timeline.emitted(conn, payment_id)
            if service in domain:
                found += await domain[service].load()(conn, payment_id)
            records.entries += [timeline.ServiceEntry(service, e) for e in found]
        message_ids = [e.entry.message_id for e in records.entries if e.entry.message_id]
        for service, conn in connections.items():
            consumed = await timeline.consumed(conn, message_ids)
            records.entries += [timeline.ServiceEntry(service, e) for e in consumed]
    finally:
        for conn in connections.values():
            with contextlib.suppress(Exception):
                await conn.close()
    return records


def timeline_table(payment_id: uuid.UUID, records: ServiceRecords) -> Table:
    table = Table(title=f"Payment {payment_id}: each service's own records", title_justify="left")
    for name, justify in (
        ("time (UTC)", "left"),
        ("+ms", "right"),
        ("service", "left"),
        ("what", "left"),
        ("hop ms", "right"),
        ("detail", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for item, since, hop in timeline.ordered(records.entries):
        table.add_row(
            item.entry.at.astimezone(UTC).strftime("%H:%M:%S.%f")[:-3],
            f"{since:.0f}",
            _service(item.service),
            item.entry.what,
            "" if hop is None else f"{hop:.0f}",
            item.entry.detail,
        )
    for service, error in records.errors.items():
        table.add_row("", "", _service(service), "[red]no records[/red]", "", error)
    return table


def payment_spans(
    spans: Sequence[dict[str, Any]], payment_id: str
) -> dict[str, list[dict[str, Any]]]:
    """The payment's spans by trace id: those tagged with the payment and their ancestors
    (a batch close, say, is one span for many payments)."""
    by_id = {s["span_id"]: s for s in spans}
    tagged = [s for s in spans if s.get("attributes", {}).get(tracing.PAYMENT_ID) == payment_id]
    keep: dict[str, dict[str, Any]] = {}
    for span in tagged:
        current: dict[str, Any] | None = span
        while current is not None and current["span_id"] not in keep:
            keep[current["span_id"]] = current
            current = by_id.get(current.get("parent_span_id") or "")
    traces: dict[str, list[dict[str, Any]]] = {}
    for span in sorted(keep.values(), key=lambda s: s["start_ns"]):
        traces.setdefault(span["trace_id"], []).append(span)
    return traces


def trace_table(trace_id: str, spans: list[dict[str, Any]]) -> Table:
    table = Table(title=f"Trace {trace_id}", title_justify="left")
    for name, justify in (
        ("span", "left"),
        ("service", "left"),
        ("start +ms", "right"),
        ("took ms", "right"),
        ("hop ms", "right"),
        ("status", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    by_id = {s["span_id"]: s for s in spans}
    first = min(s["start_ns"] for s in spans)
    for span, depth in _tree(spans):
        parent = by_id.get(span.get("parent_span_id") or "")
        # The hop: from the end of the span that emitted the message until its handler
        # started (outbox relay + Kafka + the consumer's poll); empty for a root span.
        hop = "" if parent is None else f"{(span['start_ns'] - parent['end_ns']) / 1e6:.1f}"
        table.add_row(
            "  " * depth + span["name"],
            _service(span["service"]),
            f"{(span['start_ns'] - first) / 1e6:.1f}",
            f"{(span['end_ns'] - span['start_ns']) / 1e6:.1f}",
            hop,
            span["status"] if span["status"] != "UNSET" else "ok",
        )
    return table


def _tree(spans: list[dict[str, Any]]) -> list[tuple[dict[str, Any], int]]:
    ids = {s["span_id"] for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for span in spans:
        parent = span.get("parent_span_id")
        children.setdefault(parent if parent in ids else None, []).append(span)
    ordered: list[tuple[dict[str, Any], int]] = []

    def walk(parent: str | None, depth: int) -> None:
        for span in sorted(children.get(parent, []), key=lambda s: s["start_ns"]):
            ordered.append((span, depth))
            walk(span["span_id"], depth + 1)

    walk(None, 0)
    return ordered


def _service(name: str) -> str:
    return f"[{_COLOURS.get(name, 'white')}]{name}[/]"


def trace_main(argv: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(
        prog="sanalpos trace", description="one payment's timeline across every service"
    )
    parser.add_argument("payment_id")
    parser.add_argument("--trace-file", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        payment_id = uuid.UUID(args.payment_id.removeprefix("pay_"))
    except ValueError:
        print(f"not a payment id: {args.payment_id!r}", file=sys.stderr)
        return 2
    console = _console()
    records = asyncio.run(collect_records(payment_id, env))
    console.print(timeline_table(payment_id, records))
    path = args.trace_file or trace_file(env)
    traces = payment_spans(tracing.read_trace_file(path), str(payment_id))
    if not traces:
        console.print(
            f"no spans of this payment in {path} (tracing is off unless SANALPOS_TRACE_FILE "
            "or OTEL_EXPORTER_OTLP_ENDPOINT is set; spans reach the file within a second)"
        )
    for trace_id, spans in traces.items():
        console.print(trace_table(trace_id, spans))
    return 0 if records.entries or traces else 1


# ------------------------------------------------------------------------------- status


@dataclass
class ServiceStatus:
    service: str
    ready: bool | None = None
    """None when the service did not answer."""
    failing: list[str] = field(default_factory=list)
    consumer_lag: int | None = None
    outbox_pending: int | None = None
    dead_letters: int = 0
    error: str = ""


def _get(url: str, timeout_s: float = 3.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - http only
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


_LAG_METRICS = {"sanalpos_consumer_lag_messages", "sanalpos_consumer_lag"}
_OUTBOX_METRICS = {"sanalpos_outbox_backlog_messages", "sanalpos_outbox_pending"}
"""Current names first, then those of releases before docs/metrics.md renamed them."""


def service_status(service: str, env: Mapping[str, str]) -> ServiceStatus:
    status = ServiceStatus(service)
    base = service_url(service, env)
    try:
        code, body = _get(f"{base}/readyz")
        checks = json.loads(body or b"{}").get("checks", {})
        status.ready = code == 200
        status.failing = [name for name, check in checks.items() if not check.get("ok")]
        # Read after /readyz: its outbox check refreshes the backlog gauge.
        _, metrics = _get(f"{base}/metrics")
    except (OSError, ValueError) as exc:
        status.error = f"not answering ({type(exc).__name__})"
        return status
    lag = outbox = 0.0
    seen_lag = seen_outbox = False
    for family in text_string_to_metric_families(metrics.decode()):
        for sample in family.samples:
            if sample.name in _LAG_METRICS:
                lag, seen_lag = lag + sample.value, True
            elif sample.name in _OUTBOX_METRICS:
                outbox, seen_outbox = outbox + sample.value, True
    status.consumer_lag = int(lag) if seen_lag else None
    status.outbox_pending = int(outbox) if seen_outbox else None
    return status


async def dead_letters(bootstrap: str) -> dict[str, int]:
    """Messages held in each dead-letter topic (`dlq.<consumer>.v1`), by topic."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        names = sorted(t for t in cluster.topics() if t.startswith("dlq."))
        partitions = [
            TopicPartition(name, p)
            for name in names
            for p in sorted(cluster.partitions_for_topic(name) or ())
        ]
        if not partitions:
            return {}
        start = await consumer.beginning_offsets(partitions)
        end = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    counts = dict.fromkeys(names, 0)
    for tp in partitions:
        counts[tp.topic] += end[tp] - start[tp]
    return counts


def owner_of_dead_letter_topic(topic: str) -> str:
    """dlq.<consumer>.v1 -> the service whose consumer it is (fraud-feedback -> fraud)."""
    consumer = topic.removeprefix("dlq.").rsplit(".", 1)[0]
    return consumer.split("-", 1)[0]


def gather_status(env: Mapping[str, str]) -> tuple[list[ServiceStatus], dict[str, int], str]:
    statuses = [service_status(s, env) for s in SERVICES]
    try:
        dlq = asyncio.run(asyncio.wait_for(dead_letters(kafka_servers(env)), timeout=15))
        kafka_error = ""
    except Exception as exc:
        dlq, kafka_error = {}, f"Kafka at {kafka_servers(env)} unreachable ({type(exc).__name__})"
    for status in statuses:
        status.dead_letters = sum(
            n for t, n in dlq.items() if owner_of_dead_letter_topic(t) == status.service
        )
    return statuses, dlq, kafka_error


def status_view(statuses: list[ServiceStatus], dlq: dict[str, int], kafka_error: str) -> Group:
    table = Table(
        title=f"sanalpos status at {datetime.now(UTC).strftime('%H:%M:%S')} UTC",
        title_justify="left",
    )
    for name, justify in (
        ("service", "left"),
        ("ready", "left"),
        ("consumer lag", "right"),
        ("outbox backlog", "right"),
        ("dead letters", "right"),
        ("failing checks", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for s in statuses:
        ready = (
            "[red]down[/red]"
            if s.ready is None
            else "[green]ready[/green]"
            if s.ready
            else "[yellow]not ready[/yellow]"
        )
        table.add_row(
            _service(s.service),
            ready,
            "-" if s.consumer_lag is None else str(s.consumer_lag),
            "-" if s.outbox_pending is None else str(s.outbox_pending),
            f"[red]{s.dead_letters}[/red]" if s.dead_letters else "0",
            s.error or ", ".join(s.failing),
        )
    parts: list[Any] = [table]
    held = {t: n for t, n in dlq.items() if n}
    if held:
        parts.append("dead-letter topics: " + ", ".join(f"{t}={n}" for t, n in held.items()))
    if kafka_error:
        parts.append(f"[red]{kafka_error}[/red]")
    return Group(*parts)


def status_main(argv: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(
        prog="sanalpos status",
        description="readiness, consumer lag, outbox backlog, dead letters of every service",
    )
    parser.add_argument(
        "--watch",
        nargs="?",
        const=2.0,
        type=float,
        metavar="SECONDS",
        help="refresh every SECONDS (default 2) until Ctrl-C",
    )
    args = parser.parse_args(argv)
    console = _console()
    if args.watch is None:
        statuses, dlq, kafka_error = gather_status(env)
        console.print(status_view(statuses, dlq, kafka_error))
        return 0 if all(s.ready for s in statuses) and not kafka_error else 1
    with contextlib.suppress(KeyboardInterrupt), Live(console=console, auto_refresh=False) as live:
        while True:
            live.update(status_view(*gather_status(env)), refresh=True)
            time.sleep(args.watch)
    return 0
