"""CPU cost of tracing per consumed message and per payment: tracing off; on but the trace
not sampled (the upstream traceparent says so, as under OTEL_TRACES_SAMPLER=
parentbased_traceidratio); on with spans recorded but dropped (the SDK's own cost, what OTLP
adds before the network); on with the trace file.

    uv run --no-sync python scripts/bench_tracing.py [--messages 20000] [--batch 1] [--repeat 3]

Drives the real consumer path in one process (sanalpos_common's ConsumerLoop: decode, the
per-message span started from the Kafka headers' traceparent, the handler made current,
one `emit` into a unit of work that takes the traceparent for the outbox row, the outbox
headers JSON, the span ended) with fake Kafka records and no database, and reads the
process's CPU time (all threads: the exporter's thread too, after a final flush). The
difference between "off" and a traced mode is what tracing costs per message; a payment
makes about SPANS_PER_PAYMENT spans (the sale of docs/operations.md's example trace).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from sanalpos_common import topics
from sanalpos_common.messaging.consumer import ConsumerLoop
from sanalpos_common.observability import Metrics
from sanalpos_common.schemas.codec import encode, new_envelope
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import PaymentCaptured
from sanalpos_common.testing import RecordingUnitOfWork

try:
    from sanalpos_common import tracing
    from sanalpos_common.db import outbox_headers
except ImportError:  # the code before tracing (--modes off with main's sanalpos_common)
    tracing = None  # type: ignore[assignment]

    def outbox_headers(envelope: Any, traceparent: str | None) -> str:
        return json.dumps([["type", envelope.type], ["producer", envelope.producer]])


SPANS_PER_PAYMENT = 13
"""A captured sale that settles: HTTP, fraud, authorization, settlement, intake x3 (read
model), notification x3 and their webhook POSTs x3, minus the batch close shared by many."""


class Dropped(SpanExporter):
    def export(self, spans: Any) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class EmittingHandler:
    """One event emitted per message, each under its own message's span (IdempotentHandler's
    pattern), into a recording unit of work; the outbox headers are built as emit_many does."""

    def __init__(self) -> None:
        self.uow = RecordingUnitOfWork("settlement")

    async def __call__(self, topic: str, envelope: Envelope[Any]) -> None:
        await self.batch([(topic, envelope)])

    async def batch(self, items: list[tuple[str, Envelope[Any]]]) -> None:
        uow = self.uow
        uow.outbox.clear()
        traceparents = getattr(uow, "traceparents", None)
        if traceparents is not None:
            traceparents.clear()
        uow.defer_emits()
        for _, envelope in items:
            uow.cause = envelope
            if tracing is None or not tracing.active:  # as IdempotentHandler does
                await uow.emit(envelope.payload)
                continue
            with tracing.activate(tracing.span_for(envelope.message_id)):
                await uow.emit(envelope.payload)
        await uow.flush()
        for n, (_, env) in enumerate(uow.outbox):
            outbox_headers(env, traceparents[n] if traceparents else None)


def records(count: int, traceparent: str | None) -> list[SimpleNamespace]:
    headers = [("type", b"payment.captured"), ("producer", b"authorization")]
    if traceparent:
        headers.append(("traceparent", traceparent.encode()))
    made = []
    for offset in range(count):
        payment_id = uuid.uuid4()
        payload = PaymentCaptured(
            payment_id=payment_id,
            merchant_id="mer_bench",
            amount=12_500,
            currency="TRY",
            installments=1,
            auth_code="A1",
        )
        envelope = new_envelope(
            topics.PAYMENT_CAPTURED, payload, correlation_id=payment_id, producer="authorization"
        )
        made.append(
            SimpleNamespace(
                topic=topics.PAYMENT_CAPTURED,
                partition=0,
                offset=offset,
                key=str(payment_id).encode(),
                value=encode(envelope),
                headers=headers,
            )
        )
    return made


async def cpu_per_message_us(messages: list[SimpleNamespace], batch: int) -> float:
    loop = ConsumerLoop(
        name="bench",
        topics=(topics.PAYMENT_CAPTURED,),
        bootstrap_servers="unused",
        handler=EmittingHandler(),
        dead_letter_producer=None,  # type: ignore[arg-type]
        metrics=Metrics("bench"),
    )
    started = time.process_time()
    for n in range(0, len(messages), batch):
        await loop._process_partition_batch(messages[n : n + batch])
    if tracing is not None:
        tracing.force_flush()
    return 1e6 * (time.process_time() - started) / len(messages)


def install(mode: str, trace_path: Path) -> None:
    if tracing is None:
        return
    tracing.shutdown()
    if mode == "off":
        return
    provider = TracerProvider(
        resource=Resource.create({"service.name": "bench"}),
        id_generator=tracing.CardSafeIdGenerator(),  # as tracing.configure builds it
    )
    exporter: SpanExporter = (
        tracing.JsonLinesExporter(trace_path, max_bytes=1 << 40) if mode == "file" else Dropped()
    )
    # The services' settings (tracing.configure): batched export off the event loop.
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500))
    tracing.install(provider)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1, help="messages per consumer batch")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--modes", default="off,sampled out,recorded,file", help="comma-separated subset"
    )
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with tempfile.TemporaryDirectory() as folder:
        trace_path = Path(folder) / "traces.jsonl"
        names = {"recorded": "recorded, dropped"}
        results: dict[str, list[float]] = {names.get(m, m): [] for m in args.modes.split(",") if m}
        for _ in range(args.repeat):
            for mode in results:
                install(mode.split(",")[0], trace_path)
                header = {"off": None, "sampled out": parent[:-2] + "00"}.get(mode, parent)
                messages = records(args.messages, header)
                results[mode].append(await cpu_per_message_us(messages, args.batch))
        if tracing is not None:
            tracing.shutdown()
        size = trace_path.stat().st_size if trace_path.exists() else 0
    print(
        f"consumer path, {args.messages} messages x {args.repeat} runs, batch {args.batch}, "
        "one CPU (median CPU µs per message; µs per payment = x "
        f"{SPANS_PER_PAYMENT} spans)"
    )
    base = statistics.median(results.get("off") or next(iter(results.values())))
    for mode, values in results.items():
        median = statistics.median(values)
        extra = median - base
        print(
            f"  {mode:<18} {median:8.1f} µs/message   tracing adds {extra:7.1f} µs/message"
            f" = {extra * SPANS_PER_PAYMENT / 1000:6.3f} ms CPU per payment"
        )
    if size:
        per_span = size / (args.messages * args.repeat)
        print(f"  trace file: {per_span:.0f} bytes per span")
    print(f"  sanalpos_common: {'with' if tracing else 'without'} tracing")


if __name__ == "__main__":
    asyncio.run(main())
