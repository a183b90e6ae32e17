"""HTTP pieces every service's API shares: RFC 9457 problem details and the operator's
bearer-token check."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any

from fastapi import FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://docs.sanalpos.dev/problems/"


class Problem(Exception):
    """Raise it anywhere in a request: the installed handler answers with problem details.
    `extra` members go into the body as they are (e.g. `errors=[...]`)."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str = "",
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(title)
        self.status, self.slug, self.title, self.detail = status, slug, title, detail
        self.headers, self.extra = headers, extra


def problem_body(
    status: int, slug: str, title: str, detail: str = "", **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": PROBLEM_BASE + slug, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return body


def problem_response(
    request: Request,
    status: int,
    slug: str,
    title: str,
    detail: str = "",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    return problem_json(request, problem_body(status, slug, title, detail, **extra), headers)


def problem_json(
    request: Request, body: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    """The response for a problem's members (`problem_body`), with its `instance`."""
    status = int(body["status"])
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
    return JSONResponse(
        {**body, "instance": request.url.path},
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def field_path(loc: Sequence[Any]) -> str:
    """`body.card.number` -> `card.number`: paths are relative to where the value came from."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:]
    return ".".join(parts) or "<body>"


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Never echo the input: it may be a card number or security code.
    return [
        {"field": field_path(err["loc"]), "message": err["msg"], "code": err["type"]}
        for err in exc.errors()
    ]


def install_problem_handlers(app: FastAPI) -> None:
    """`Problem` and request validation errors answer with problem details."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            request, exc.status, exc.slug, exc.title, exc.detail, exc.headers, **exc.extra
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(exc)
        detail = "invalid: " + ", ".join(e["field"] for e in errors)
        return problem_response(
            request, 422, "validation-error", "Request is invalid", detail, errors=errors
        )


def bearer_token(authorization: str | None, missing: str = "Missing API key") -> str:
    """The token of `Authorization: Bearer <token>`; 401 when there is none."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise Problem(401, "unauthorized", missing, "send Authorization: Bearer <token>")
    return authorization[7:].strip()


def require_admin(
    admin_token: Callable[[Request], str],
) -> Callable[[Request, str | None], Awaitable[None]]:
    """A dependency that admits only the operator's token (`admin_token(request)` names it),
    compared in constant time."""

    async def dependency(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> None:
        token = bearer_token(authorization, missing="Missing admin credential")
        if not hmac.compare_digest(token.encode(), admin_token(request).encode()):
            raise Problem(401, "unauthorized", "Invalid admin credential")

    return dependency


class BodyTooLarge(StarletteHTTPException):
    """Raised from `receive` when a streamed body passes the limit. An HTTPException, so
    FastAPI's body parsing lets it through to the problem handlers instead of calling it a
    malformed body (400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request bodies are limited to {limit} bytes")


class BodySizeLimit:
    """Plain ASGI middleware refusing request bodies over `max_bytes` with 413 problem
    details: at once when Content-Length says so, else as soon as the streamed (chunked)
    body passes it. The framework would otherwise read and parse the whole body before
    anything (authentication included) runs."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:  # too late to answer; the connection is closed by the server
                raise
            await self._refuse(scope, send)

    async def _refuse(self, scope: Any, send: Any) -> None:
        body = problem_body(
            413,
            "payload-too-large",
            "Request body too large",
            f"request bodies are limited to {self.max_bytes} bytes",
            instance=scope.get("path", ""),
        )
        response = JSONResponse(body, status_code=413, media_type=PROBLEM_JSON)
        response.headers["Connection"] = "close"  # the rest of the body is not read
        await response(scope, _no_more_body, send)


async def _no_more_body() -> dict[str, Any]:
    return {"type": "http.disconnect"}


def _content_length(scope: Any) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None
