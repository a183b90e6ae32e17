"""How a service-layer `Response` (status, body, replayed) is answered over HTTP."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Request
from fastapi.responses import JSONResponse

from intake.service_layer.idempotency import Response


def endpoint_of(request: Request) -> str:
    """The operation an Idempotency-Key is bound to: method and path."""
    return f"{request.method} {request.url.path}"


def http_response(response: Response, headers: Mapping[str, str] | None = None) -> JSONResponse:
    extra = dict(headers or {})
    if response.replayed:
        extra["Idempotent-Replayed"] = "true"
    return JSONResponse(response.body, status_code=response.status, headers=extra)
