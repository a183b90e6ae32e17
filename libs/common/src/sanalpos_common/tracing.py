"""OpenTelemetry traces across the hops: one trace follows a payment through every service.

Context travels as a W3C `traceparent`: on HTTP requests (in and out) and as a Kafka header.
Events leave through the transactional outbox, so an event's `traceparent` is taken when the
handler emits it (the handler's span is current) and stored with the outbox row's headers;
the relay sends those as Kafka headers and the consumer starts its handler span as a child.

Exporters, chosen by the standard environment at start-up (`configure`):
- `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: OTLP over HTTP;
- `SANALPOS_TRACE_FILE`: JSON lines in a local file (development; `sanalpos trace` reads it).
With neither (or `OTEL_SDK_DISABLED=true`) tracing is off: no provider exists, every function
here returns at its first line, and no `traceparent` is written anywhere. The hot paths read
`tracing.active` and skip the rest, so the cost of "off" is an attribute read or two.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import re
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

TRACEPARENT = "traceparent"
PAYMENT_ID = "sanalpos.payment_id"
"""Span attribute naming the payment a span worked on (`sanalpos trace` finds traces by it)."""
TRACE_FILE_ENV = "SANALPOS_TRACE_FILE"
TRACE_FILE_MAX_BYTES = 64 * 1024 * 1024
"""A trace file this large is renamed to `<file>.1` (replacing an older one) and restarted."""

_provider: TracerProvider | None = None
_tracer: trace.Tracer | None = None
active = False
"""True while tracing is on. Hot paths read `tracing.active` (an attribute, not a call) and
skip every other function here when it is False."""
_EMPTY = Context()  # parent of a span with no incoming context: a new trace
_NO_SPAN = contextlib.nullcontext()

_message_spans: contextvars.ContextVar[Mapping[uuid.UUID, Span] | None] = contextvars.ContextVar(
    "sanalpos_message_spans", default=None
)


def enabled() -> bool:
    return active


def configure(service: str, environ: Mapping[str, str] | None = None) -> bool:
    """Install this process's tracer when an exporter is configured; True when tracing is on."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    otlp = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    trace_file = env.get(TRACE_FILE_ENV)
    if not otlp and not trace_file:
        return False
    shutdown()
    provider = TracerProvider(
        resource=Resource.create({"service.name": service}), id_generator=CardSafeIdGenerator()
    )
    if otlp:
        # Imported only when used: the exporter pulls in protobuf and requests.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if trace_file:
        provider.add_span_processor(
            BatchSpanProcessor(JsonLinesExporter(Path(trace_file)), schedule_delay_millis=500)
        )
    install(provider)
    return True


class CardSafeIdGenerator(RandomIdGenerator):
    """Random ids whose hex form never holds 13 decimal digits in a row: a span id such as
    `ba69175703208559` reads as a (possibly Luhn-valid) card number to a data-loss scanner.
    About 1 id in 100 is drawn again."""

    def generate_span_id(self) -> int:
        while _CARD_SHAPED.search(f"{(span_id := super().generate_span_id()):016x}"):
            pass
        return span_id

    def generate_trace_id(self) -> int:
        while _CARD_SHAPED.search(f"{(trace_id := super().generate_trace_id()):032x}"):
            pass
        return trace_id


_CARD_SHAPED = re.compile(r"\d{13}")


def install(provider: TracerProvider) -> None:
    """Use `provider` for this process's spans (`configure` builds one; tests their own)."""
    global _provider, _tracer, active
    _provider, _tracer, active = provider, provider.get_tracer("sanalpos"), True


def shutdown() -> None:
    """Flush and stop the exporters (service shut-down); tracing is off afterwards."""
    global _provider, _tracer, active
    provider, _provider, _tracer, active = _provider, None, None, False
    if provider is not None:
        provider.shutdown()


def force_flush() -> None:
    if _provider is not None:
        _provider.force_flush()


# ------------------------------------------------------------------------ propagation


def traceparent_of(headers: Iterable[tuple[Any, Any]] | Mapping[Any, Any] | None) -> str | None:
    """The `traceparent` among Kafka headers (aiokafka's pairs or faust's dict; str or bytes)."""
    if not headers:
        return None
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in pairs:
        name = key.decode("latin-1") if isinstance(key, bytes) else key
        if name == TRACEPARENT:
            return value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return None


def current_traceparent() -> str | None:
    """The `traceparent` for a message or request caused by the current span; None when off."""
    if _tracer is None:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def context_from(traceparent: str | None) -> Context:
    """The parent context a `traceparent` names; an empty one (a new trace) when missing or
    malformed. Parsed here rather than by the propagator: this runs once per message."""
    if not traceparent or len(traceparent) != 55:
        return _EMPTY
    version, trace_id, span_id, flags = (
        traceparent.split("-") if traceparent.count("-") == 3 else ("", "", "", "")
    )
    try:
        parent = SpanContext(
            int(trace_id, 16),
            int(span_id, 16),
            is_remote=True,
            trace_flags=TraceFlags(int(flags, 16)),
        )
    except ValueError:
        return _EMPTY
    if version != "00" or not parent.is_valid:
        return _EMPTY
    return trace.set_span_in_context(NonRecordingSpan(parent), _EMPTY)


# ------------------------------------------------------------------------------ spans


def start_span(
    name: str,
    *,
    parent: str | None = None,
    kind: SpanKind = SpanKind.CONSUMER,
    attributes: Mapping[str, Any] | None = None,
    inherit: bool = False,
) -> Span | None:
    """A started, not yet current span (None when tracing is off). Its parent is the
    `traceparent` given, else the current span when `inherit`, else none (a new trace)."""
    if _tracer is None:
        return None
    context = None if inherit and parent is None else context_from(parent)
    return _tracer.start_span(name, context=context, kind=kind, attributes=attributes)


def activate(span: Span | None) -> contextlib.AbstractContextManager[Any]:
    """Make `span` current inside the block (does not end it)."""
    if span is None:
        return _NO_SPAN
    return trace.use_span(span, end_on_exit=False, record_exception=False)


def end_span(span: Span | None, error: BaseException | str | None = None) -> None:
    if span is None:
        return
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, _describe(error)))
    span.end()


def tag_payment(payment_id: object) -> None:
    """Name the payment on the current span (e.g. the HTTP request that created it)."""
    if _tracer is None:
        return
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute(PAYMENT_ID, str(payment_id))


def _describe(error: BaseException | str) -> str:
    return error if isinstance(error, str) else type(error).__name__


# ---------------------------------------------------------- consumer batches of messages


def message_span(
    topic: str, message_id: uuid.UUID, payment_id: object, headers: Any
) -> Span | None:
    """The span of handling one consumed message, a child of the span that emitted it."""
    if _tracer is None:
        return None
    return _tracer.start_span(
        f"process {topic}",
        context=context_from(traceparent_of(headers)),
        kind=SpanKind.CONSUMER,
        # Few attributes on purpose: each costs CPU on every message. The system (Kafka) and
        # the operation (process) are in the name and kind; the consumer is the service.
        attributes={
            "messaging.destination.name": topic,
            "messaging.message.id": str(message_id),
            PAYMENT_ID: str(payment_id),
        },
    )


def message_spans(spans: Mapping[uuid.UUID, Span]) -> contextlib.AbstractContextManager[Any]:
    """Within the block, `span_for(message_id)` finds each message's span: a batch handler
    that works through many messages in one transaction makes each current in turn."""
    return _MessageSpans(spans) if spans else _NO_SPAN


class _MessageSpans:
    def __init__(self, spans: Mapping[uuid.UUID, Span]) -> None:
        self.spans = spans
        self.token: contextvars.Token[Mapping[uuid.UUID, Span] | None] | None = None

    def __enter__(self) -> None:
        self.token = _message_spans.set(self.spans)

    def __exit__(self, *_: object) -> None:
        if self.token is not None:
            _message_spans.reset(self.token)


def span_for(message_id: uuid.UUID) -> Span | None:
    spans = _message_spans.get()
    return None if spans is None else spans.get(message_id)


def end_all(spans: Iterable[Span], error: BaseException | str | None = None) -> None:
    for span in spans:
        end_span(span, error)


# ------------------------------------------------------------------ HTTP (ASGI) server


class TracingMiddleware:
    """Plain ASGI middleware: a SERVER span per request, a child of the caller's
    `traceparent` when it sent one. Installed only when tracing is on."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or _tracer is None:
            await self.app(scope, receive, send)
            return
        offered = None
        for key, value in scope.get("headers", ()):
            if key == b"traceparent":
                offered = value.decode("latin-1")
                break
        span = _tracer.start_span(
            scope["method"],
            context=context_from(offered),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": scope["method"]},
        )
        status = 500

        async def send_recording_status(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            with trace.use_span(span, end_on_exit=False, record_exception=False):
                await self.app(scope, receive, send_recording_status)
        finally:
            route = getattr(scope.get("route"), "path", None)
            if route:
                span.update_name(f"{scope['method']} {route}")
                span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            span.end()


# --------------------------------------------------------------- development exporter


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """One span as the trace file's JSON object."""
    context = span.get_span_context()
    assert context is not None
    parent = span.parent
    return {
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "parent_span_id": f"{parent.span_id:016x}" if parent is not None else None,
        "name": span.name,
        "kind": span.kind.name,
        "service": span.resource.attributes.get("service.name", ""),
        # ISO 8601 (µs), not nanosecond integers: a 19-digit number looks like a card number
        # to any data-loss scanner (the canary scan said so).
        "start": _iso(span.start_time),
        "end": _iso(span.end_time),
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
    }


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _iso(ns: int | None) -> str | None:
    return None if ns is None else (_EPOCH + timedelta(microseconds=ns // 1000)).isoformat()


def _ns(iso: str | None) -> int:
    return 0 if not iso else (datetime.fromisoformat(iso) - _EPOCH) // _MICROSECOND * 1000


class JsonLinesExporter(SpanExporter):
    """Appends spans to a file, one JSON object a line; several processes may share it.

    Each export is one `write` on an O_APPEND descriptor, so lines of different processes do
    not interleave. Past `max_bytes` the file is renamed to `<file>.1`; every process notices
    the rename (another inode at the path) and reopens."""

    def __init__(self, path: Path, max_bytes: int = TRACE_FILE_MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._fd: int | None = None
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        data = "".join(
            json.dumps(span_record(s), separators=(",", ":"), default=str) + "\n" for s in spans
        ).encode()
        try:
            with self._lock:
                os.write(self._descriptor(), data)
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def _descriptor(self) -> int:
        if self._fd is not None:
            try:
                same = os.stat(self.path).st_ino == os.fstat(self._fd).st_ino
            except FileNotFoundError:
                same = False
            if same and os.fstat(self._fd).st_size < self.max_bytes:
                return self._fd
            if same:
                with contextlib.suppress(OSError):
                    os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            os.close(self._fd)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        return self._fd

    def shutdown(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def read_trace_file(path: Path) -> list[dict[str, Any]]:
    """Every span in the trace file and its rotated predecessor (unreadable lines skipped),
    each with `start_ns` and `end_ns` (nanoseconds since the epoch) added for arithmetic."""
    spans: list[dict[str, Any]] = []
    for candidate in (path.with_name(path.name + ".1"), path):
        if not candidate.exists():
            continue
        with open(candidate, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    span = json.loads(line)
                    span["start_ns"], span["end_ns"] = _ns(span["start"]), _ns(span["end"])
                    spans.append(span)
    return spans
