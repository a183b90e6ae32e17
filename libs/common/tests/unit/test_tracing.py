"""Trace context from an emitting span, through the outbox row's headers and the relay's
Kafka headers, to the consumer's handler span (and on to what that handler emits)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import SpanKind

from sanalpos_common import topics, tracing
from sanalpos_common.db import outbox_headers
from sanalpos_common.messaging.consumer import ConsumerLoop
from sanalpos_common.messaging.outbox import _headers as relay_headers
from sanalpos_common.observability import Metrics
from sanalpos_common.schemas.codec import encode
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import PaymentCaptured
from sanalpos_common.testing import RecordingUnitOfWork


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "test"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    yield exporter
    tracing.shutdown()


def captured() -> PaymentCaptured:
    return PaymentCaptured(
        payment_id=uuid.uuid4(),
        merchant_id="m",
        amount=100,
        currency="TRY",
        installments=1,
        auth_code="A",
    )


async def emitted_under(span: Any) -> tuple[Envelope[Any], str | None]:
    """What a handler running under `span` writes to the outbox (deferred, as in production)."""
    uow = RecordingUnitOfWork("authorization")
    uow.defer_emits()
    with tracing.activate(span):
        envelope = await uow.emit(captured())
    await uow.flush()  # after the span: the traceparent was taken at emit time
    return envelope, uow.traceparents[0]


def relayed(envelope: Envelope[Any], traceparent: str | None, offset: int) -> SimpleNamespace:
    """The Kafka record the relay makes of the outbox row (headers JSON -> byte headers)."""
    row_headers = outbox_headers(envelope, traceparent)
    return SimpleNamespace(
        topic=topics.PAYMENT_CAPTURED,
        partition=0,
        offset=offset,
        key=b"k",
        value=encode(envelope),
        headers=[(k, v.encode()) for k, v in relay_headers(row_headers)],
    )


class TracePeekingHandler:
    """Reads the current traceparent per message the way IdempotentHandler makes each
    message's span current inside a batch."""

    def __init__(self) -> None:
        self.seen: dict[uuid.UUID, str | None] = {}

    async def __call__(self, topic: str, envelope: Envelope[Any]) -> None:
        self.seen[envelope.message_id] = tracing.current_traceparent()

    async def batch(self, items: list[tuple[str, Envelope[Any]]]) -> None:
        for _, envelope in items:
            with tracing.activate(tracing.span_for(envelope.message_id)):
                self.seen[envelope.message_id] = tracing.current_traceparent()


def consumer(handler: TracePeekingHandler) -> ConsumerLoop:
    return ConsumerLoop(
        name="settlement",
        topics=(topics.PAYMENT_CAPTURED,),
        bootstrap_servers="unused",
        handler=handler,
        dead_letter_producer=None,  # type: ignore[arg-type]
        metrics=Metrics("test"),
    )


def traceparent(span: Any) -> str:
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


async def test_outbox_row_carries_the_emitting_span_as_traceparent(
    exported: InMemorySpanExporter,
) -> None:
    span = tracing.start_span("POST /v1/payments", kind=SpanKind.SERVER)
    envelope, header = await emitted_under(span)
    tracing.end_span(span)

    assert header == traceparent(span)
    assert ["traceparent", header] in json.loads(outbox_headers(envelope, header))
    assert ("traceparent", header) in relay_headers(outbox_headers(envelope, header))


@pytest.mark.parametrize("batched", [True, False])
async def test_consumer_span_is_a_child_of_the_emitting_span_and_current_in_the_handler(
    exported: InMemorySpanExporter, batched: bool
) -> None:
    upstream = [tracing.start_span(f"emit {n}", kind=SpanKind.SERVER) for n in range(2)]
    records = []
    for offset, span in enumerate(upstream):
        envelope, header = await emitted_under(span)
        tracing.end_span(span)
        records.append((envelope, relayed(envelope, header, offset)))
    exported.clear()

    handler = TracePeekingHandler()
    loop = consumer(handler)
    if batched:
        await loop._process_partition_batch([message for _, message in records])
    else:
        for _, message in records:
            await loop._process(message)

    spans = exported.get_finished_spans()
    assert [s.name for s in spans] == ["process payment.captured.v1"] * 2
    for (envelope, _), parent, span in zip(records, upstream, spans, strict=True):
        assert span.parent is not None
        assert span.parent.span_id == parent.get_span_context().span_id
        assert span.context.trace_id == parent.get_span_context().trace_id
        assert span.kind is SpanKind.CONSUMER
        assert span.attributes[tracing.PAYMENT_ID] == str(envelope.correlation_id)
        # What the handler emits becomes a child of its own span.
        assert handler.seen[envelope.message_id] == traceparent(span)


async def test_message_without_traceparent_starts_a_new_trace(
    exported: InMemorySpanExporter,
) -> None:
    envelope, _ = await emitted_under(None)
    handler = TracePeekingHandler()
    await consumer(handler)._process(relayed(envelope, None, 0))
    (span,) = exported.get_finished_spans()
    assert span.parent is None


async def test_tracing_off_leaves_no_traceparent_anywhere() -> None:
    tracing.shutdown()
    assert not tracing.enabled()
    envelope, header = await emitted_under(tracing.start_span("ignored"))
    assert header is None
    assert "traceparent" not in outbox_headers(envelope, header)
    handler = TracePeekingHandler()
    await consumer(handler)._process(relayed(envelope, None, 0))
    assert handler.seen == {envelope.message_id: None}


def test_malformed_or_missing_traceparent_starts_a_new_trace(
    exported: InMemorySpanExporter,
) -> None:
    good = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    for bad in (
        None,
        "",
        "garbage",
        good.replace("00-", "ff-", 1),
        good[:-1] + "x",
        "00-" + "0" * 32 + "-b7ad6b7169203331-01",
    ):
        span = tracing.message_span(
            topics.PAYMENT_CAPTURED, uuid.uuid4(), "p", [("traceparent", bad)] if bad else []
        )
        tracing.end_span(span)
    child = tracing.message_span(
        topics.PAYMENT_CAPTURED, uuid.uuid4(), "p", [("traceparent", good)]
    )
    tracing.end_span(child)
    *fresh, linked = exported.get_finished_spans()
    assert all(s.parent is None for s in fresh) and len(fresh) == 6
    assert linked.parent is not None and linked.parent.span_id == 0xB7AD6B7169203331
    assert linked.context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C


def test_traceparent_is_found_in_aiokafka_pairs_and_faust_dicts() -> None:
    value = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert tracing.traceparent_of([("type", b"x"), ("traceparent", value.encode())]) == value
    assert tracing.traceparent_of({b"traceparent": value.encode()}) == value
    assert tracing.traceparent_of([]) is None
    assert tracing.traceparent_of(None) is None


def test_trace_file_holds_one_json_span_a_line_and_rotates(tmp_path: Any) -> None:
    path = tmp_path / "traces.jsonl"
    exporter = tracing.JsonLinesExporter(path, max_bytes=1000)
    provider = TracerProvider(
        resource=Resource.create({"service.name": "fraud"}),
        id_generator=tracing.CardSafeIdGenerator(),
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        parent = tracing.start_span("parent", kind=SpanKind.SERVER)
        child = tracing.start_span("child", parent=traceparent(parent))
        tracing.end_span(child)
        tracing.end_span(parent, "boom")
        for n in range(5):  # past max_bytes: the file is renamed to .1 and restarted
            tracing.end_span(tracing.start_span(f"more {n}"))
    finally:
        tracing.shutdown()

    assert (tmp_path / "traces.jsonl.1").exists()
    spans = {s["name"]: s for s in tracing.read_trace_file(path)}
    assert set(spans) >= {"child", "parent", "more 4"}
    assert spans["child"]["parent_span_id"] == spans["parent"]["span_id"]
    assert spans["child"]["trace_id"] == spans["parent"]["trace_id"]
    assert spans["parent"]["status"] == "ERROR"
    assert spans["child"]["service"] == "fraud"
    assert spans["child"]["end_ns"] >= spans["child"]["start_ns"] > 0
    # No card-shaped digit runs in the file: times are ISO 8601, ids are hex.
    assert not re.search(r"\d{13,}", path.read_text() + (tmp_path / "traces.jsonl.1").read_text())


def test_ids_never_hold_a_card_shaped_run_of_digits(monkeypatch: pytest.MonkeyPatch) -> None:
    draws = [0xBA69175703208559, 0x53E4FDAA89B08049]  # 14 digits in a row, then clean
    monkeypatch.setattr(RandomIdGenerator, "generate_span_id", lambda self: draws.pop(0))
    assert tracing.CardSafeIdGenerator().generate_span_id() == 0x53E4FDAA89B08049
    monkeypatch.undo()

    generator = tracing.CardSafeIdGenerator()
    ids = [f"{generator.generate_span_id():016x}" for _ in range(3000)]
    ids += [f"{generator.generate_trace_id():032x}" for _ in range(3000)]
    assert not any(re.search(r"\d{13}", i) for i in ids)


def test_configure_is_off_without_an_exporter_and_on_with_a_trace_file(tmp_path: Any) -> None:
    assert not tracing.configure("intake", {})
    assert not tracing.configure(
        "intake", {"SANALPOS_TRACE_FILE": str(tmp_path / "t"), "OTEL_SDK_DISABLED": "true"}
    )
    try:
        assert tracing.configure("intake", {"SANALPOS_TRACE_FILE": str(tmp_path / "t.jsonl")})
        assert tracing.enabled()
    finally:
        tracing.shutdown()
