"""JSON logs with the payment id (and never card data), Prometheus metrics, health checks."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from sanalpos_common.metrics import Metrics

payment_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "payment_id", default=None
)
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

# Any run of 12-19 digits (optionally split by spaces or dashes) could be a PAN.
_DIGIT_RUN = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def redact(text: str) -> str:
    """Last line of defence: no log line carries anything shaped like a card number.
    UUIDs are left whole (digit-only groups would otherwise look like 4-4-4-4)."""
    parts, last = [], 0
    for match in _UUID.finditer(text):
        parts.append(_DIGIT_RUN.sub("[REDACTED]", text[last : match.start()]))
        parts.append(match.group())
        last = match.end()
    parts.append(_DIGIT_RUN.sub("[REDACTED]", text[last:]))
    return "".join(parts)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        payment_id = getattr(record, "payment_id", None) or payment_id_var.get()
        if payment_id:
            entry["payment_id"] = str(payment_id)
        if request_id := request_id_var.get():
            entry["request_id"] = request_id
        if record.exc_info:
            entry["error"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry)


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    if root.level > logging.DEBUG:  # at DEBUG, client libraries' own diagnostics show too
        for noisy in ("aiokafka", "kafka", "faust", "mode", "uvicorn.access"):
            logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


Check = Callable[[], Awaitable[tuple[bool, str]]]


@dataclass
class Health:
    """Named readiness checks; /readyz is ready only when every check passes."""

    checks: dict[str, Check] = field(default_factory=dict)
    started_at: float = field(default_factory=time.monotonic)

    def add(self, name: str, check: Check) -> None:
        self.checks[name] = check

    async def evaluate(self) -> tuple[bool, dict[str, dict[str, Any]]]:
        results: dict[str, dict[str, Any]] = {}
        for name, check in self.checks.items():
            try:
                ok, detail = await check()
            except Exception as exc:
                ok, detail = False, f"{type(exc).__name__}: {redact(str(exc))}"
            results[name] = {"ok": ok, "detail": detail}
        return all(r["ok"] for r in results.values()), results


def instrument_http(app: Any, metrics: Metrics) -> None:
    """Counts requests by route template (never the raw path: it may hold ids), and gives
    every request an id: the caller's `X-Request-Id` when well-formed, else a new one. The id
    is logged with every line of the request and returned in the response header."""
    app.add_middleware(RequestIdMiddleware, metrics=metrics)


class RequestIdMiddleware:
    """Plain ASGI middleware: Starlette's `BaseHTTPMiddleware` (what `@app.middleware`
    builds) runs each request through an extra task and memory streams, several times the
    cost of this on a small request."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = _header(scope, b"x-request-id")
        request_id = offered if _REQUEST_ID.match(offered) else f"req_{uuid.uuid4().hex}"
        status = 500

        async def send_with_id(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"
                ]
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        token = request_id_var.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)
            template = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.http_requests.labels(scope["method"], template, str(status)).inc()


def _header(scope: Any, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def ops_router(service: str, health: Health, metrics: Metrics) -> APIRouter:
    router = APIRouter(tags=["ops"])

    @router.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "service": service}

    @router.get("/readyz")
    async def readyz(response: Response) -> dict[str, Any]:
        ready, results = await health.evaluate()
        response.status_code = 200 if ready else 503
        return {"status": "ready" if ready else "not_ready", "service": service, "checks": results}

    @router.get("/metrics")
    async def prometheus() -> Response:
        await metrics.sample()
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router
