"""RFC 9457 problem details for every error the API returns: the shared handlers, plus one
handler per refusal of intake's vocabulary (intake.service_layer.errors.PROBLEMS)."""

from __future__ import annotations

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from intake.service_layer.errors import PROBLEMS, problem_of
from sanalpos_common.http import BodyTooLarge, problem_json, problem_response
from sanalpos_common.http import install_problem_handlers as install_common_handlers


async def _refusal(request: Request, exc: Exception) -> JSONResponse:
    problem = problem_of(exc)
    assert problem is not None  # registered for the table's types only
    return problem_json(request, problem.document())


async def _unstorable_text(request: Request, exc: Exception) -> JSONResponse:
    # A text the database cannot hold (a NUL character) in a query parameter or header.
    return problem_response(
        request, 422, "validation-error", "Request is invalid", "text holds a NUL character"
    )


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc, BodyTooLarge):
        return problem_response(
            request, 413, "payload-too-large", "Request body too large", str(exc.detail)
        )
    slug = {404: "not-found", 405: "method-not-allowed", 401: "unauthorized"}.get(
        exc.status_code, "http-error"
    )
    response = problem_response(request, exc.status_code, slug, str(exc.detail))
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    if exc.status_code == 405:
        response.headers["Allow"] = ", ".join(allowed_methods(request))
    return response


def install_problem_handlers(app: FastAPI) -> None:
    install_common_handlers(app)
    for kind in PROBLEMS:
        app.add_exception_handler(kind, _refusal)
    app.add_exception_handler(asyncpg.exceptions.CharacterNotInRepertoireError, _unstorable_text)
    app.add_exception_handler(asyncpg.exceptions.UntranslatableCharacterError, _unstorable_text)
    app.add_exception_handler(StarletteHTTPException, _http)


def allowed_methods(request: Request) -> list[str]:
    """Every method any route serves at this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match is not Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return sorted(methods)
