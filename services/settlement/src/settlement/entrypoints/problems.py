"""RFC 9457 problem details for the ops API's errors."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://docs.sanalpos.dev/problems/"


class Problem(Exception):
    def __init__(self, status: int, slug: str, title: str, detail: str = "") -> None:
        super().__init__(title)
        self.status, self.slug, self.title, self.detail = status, slug, title, detail


def _response(request: Request, status: int, slug: str, title: str, **extra: Any) -> JSONResponse:
    body = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "instance": request.url.path,
        **{k: v for k, v in extra.items() if v},
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:]
    return ".".join(parts) or "<body>"


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return _response(request, exc.status, exc.slug, exc.title, detail=exc.detail)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field_path(tuple(e["loc"])), "message": e["msg"], "code": e["type"]}
            for e in exc.errors()
        ]
        detail = "invalid: " + ", ".join(e["field"] for e in errors)
        return _response(
            request, 422, "validation-error", "Request is invalid", detail=detail, errors=errors
        )
