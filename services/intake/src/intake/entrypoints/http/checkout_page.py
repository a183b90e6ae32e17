"""The hosted payment page: HTML rendered on the server (Jinja2, autoescaped), one CSS and one
JavaScript file, and the JSON endpoints the page's script calls. No API key: the session's
unguessable id is the page's credential, its CSRF token guards the submit.

Every answer carries a strict Content-Security-Policy (scripts and styles from this origin
only, nothing inline, no other origin), `frame-ancestors` from the merchant's allowed
origins, `Cache-Control: no-store`, nosniff and no referrer."""

from __future__ import annotations

import json
import time
from functools import cache
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from intake.domain.bins import _RANGES, BIN_PATTERN, SCHEME_NAMES
from intake.domain.checkout import LOCALES, SESSION_ID_PATTERN, format_amount, is_session_id
from intake.entrypoints.http.deps import AppContainer
from intake.service_layer import checkout
from intake.service_layer.errors import problem_of
from intake.service_layer.problems import Refused, field_errors, invalid
from sanalpos_common.http import problem_json

ASSETS = FilePath(__file__).resolve().parents[2] / "checkout_page"
CSRF_COOKIE = "cs_csrf"
CSRF_HEADER = "X-CSRF-Token"
router = APIRouter(include_in_schema=False)


@cache
def _templates() -> Environment:
    return Environment(
        loader=FileSystemLoader(ASSETS / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        auto_reload=False,
    )


@cache
def messages(locale: str) -> dict[str, str]:
    """The message catalogue of a locale (checkout_page/messages/<locale>.json)."""
    found: dict[str, str] = json.loads((ASSETS / "messages" / f"{locale}.json").read_text())
    return found


def security_headers(frame_ancestors: list[str] | None = None) -> dict[str, str]:
    ancestors = " ".join(frame_ancestors) if frame_ancestors else "'none'"
    return {
        "Content-Security-Policy": (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
            "connect-src 'self'; form-action 'self'; base-uri 'none'; "
            f"frame-ancestors {ancestors}"
        ),
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


def _locale(requested: str | None, default: str) -> str:
    return requested if requested in LOCALES else default


def _error_page(status: int, key: str, locale: str) -> HTMLResponse:
    t = messages(locale)
    html = (
        _templates()
        .get_template("error.html")
        .render(t=t, locale=locale, title=t[f"{key}_title"], text=t[f"{key}_text"])
    )
    return HTMLResponse(html, status_code=status, headers=security_headers())


Lang = Annotated[str | None, Query(max_length=2)]


@router.get("/checkout/{session_id}")
async def page(
    session_id: str,
    request: Request,
    c: AppContainer,
    lang: Lang = None,
) -> Response:
    if not is_session_id(session_id):
        return _error_page(404, "not_found", _locale(lang, "tr"))
    try:
        session = await checkout.page_session(c.pool, session_id)
    except checkout.CheckoutSessionNotFound:
        return _error_page(404, "not_found", _locale(lang, "tr"))
    row = session.row
    locale = _locale(lang, row["locale"])
    if session.view.state == "expired":
        return _error_page(410, "expired", locale)
    t = messages(locale)
    currency = row["currency"].strip()
    basket = row["basket"] if isinstance(row["basket"], list) else json.loads(row["basket"])
    lines = [
        {
            "name": line["name"],
            "quantity": line["quantity"],
            "total": format_amount(line["quantity"] * line["unit_amount"], currency, locale),
        }
        for line in basket
    ]
    page_data = {
        "session": session_id,
        "csrf": row["csrf_token"],
        "jwk": c.client_encryption.public_jwk(),
        "state": session.view.document(),
        "ranges": [list(r) for r in _RANGES],
        "schemes": SCHEME_NAMES,
        "messages": {k: v for k, v in t.items() if k.startswith("js_")},
    }
    html = (
        _templates()
        .get_template("page.html")
        .render(
            t=t,
            locale=locale,
            session_id=session_id,
            merchant=session.merchant_name,
            order_id=row["order_id"],
            lines=lines,
            amount_text=format_amount(row["amount"], currency, locale),
            page_data=json.dumps(page_data),
            completed=session.view.state == "succeeded",
        )
    )
    response = HTMLResponse(html, headers=security_headers(session.frame_ancestors))
    https = c.checkout.public_base_url.startswith("https://")
    # Framed in the shop's page (PayTR-style iframe), the page is a third-party frame:
    # a SameSite=Strict cookie would not come back with the submit. There it is
    # SameSite=None, Secure and Partitioned (CHIPS: kept per top-level shop site).
    framed = bool(session.frame_ancestors) and https
    if framed:
        # Written by hand: Python's http.cookies knows `Partitioned` only from 3.14.
        response.headers.append(
            "set-cookie",
            f"{CSRF_COOKIE}={row['csrf_token']}; Max-Age={24 * 3600}; "
            f"Path=/checkout/{session_id}; HttpOnly; SameSite=none; Secure; Partitioned",
        )
        return response
    response.set_cookie(
        CSRF_COOKIE,
        row["csrf_token"],
        path=f"/checkout/{session_id}",
        httponly=True,
        samesite="strict",
        secure=https,
        max_age=24 * 3600,
    )
    return response


def _problem(request: Request, exc: Exception) -> JSONResponse:
    problem = problem_of(exc)
    if problem is None:
        raise exc
    response = problem_json(request, problem.document())
    response.headers.update(security_headers())
    if isinstance(exc, checkout.CheckoutPageRateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _json(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=security_headers())


@router.get("/checkout/{session_id}/installments")
async def installments(
    session_id: Annotated[str, Path(pattern=SESSION_ID_PATTERN)],
    request: Request,
    c: AppContainer,
    bin: Annotated[str, Query(pattern=BIN_PATTERN)],
) -> Response:
    """The page's installment table for a card's first 6 or 8 digits."""
    try:
        checkout.limit_page(c.checkout, session_id, time.monotonic())
        session = await checkout.page_session(c.pool, session_id)
        if session.view.state == "expired":
            raise checkout.CheckoutSessionExpired(session_id)
        return _json(await checkout.page_installments(c.pool, session, bin))
    except Exception as exc:
        return _problem(request, exc)


class PayIn(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    encrypted_card: str = Field(min_length=10, max_length=8192)
    installments: int = Field(ge=1, le=12, strict=True)


@router.post("/checkout/{session_id}/pay")
async def pay(
    session_id: Annotated[str, Path(pattern=SESSION_ID_PATTERN)],
    request: Request,
    c: AppContainer,
) -> Response:
    """The page's submit: the card as a JWE made for this session, and the installments."""
    try:
        checkout.limit_page(c.checkout, session_id, time.monotonic())
        try:
            body = PayIn.model_validate_json(await request.body())
        except ValidationError as exc:
            raise Refused(invalid(*field_errors(exc))) from None
        result = await checkout.pay(
            c.pool,
            c.protection,
            c.client_encryption,
            c.checkout,
            session_id,
            csrf_header=request.headers.get(CSRF_HEADER),
            csrf_cookie=request.cookies.get(CSRF_COOKIE),
            encrypted_card=body.encrypted_card,
            installments=body.installments,
            customer_ip=request.client.host if request.client else None,
        )
    except Exception as exc:
        return _problem(request, exc)
    return _json(
        {"payment_id": result.payment_id, "created": result.created, **result.view.document()},
        202 if result.created else 200,
    )


@router.get("/checkout/{session_id}/status")
async def status(
    session_id: Annotated[str, Path(pattern=SESSION_ID_PATTERN)],
    request: Request,
    c: AppContainer,
) -> Response:
    try:
        view = await checkout.page_status(c.pool, session_id)
    except Exception as exc:
        return _problem(request, exc)
    return _json(view.document())


@router.get("/checkout/{session_id}/return")
async def back_to_shop(
    session_id: str,
    request: Request,
    c: AppContainer,
    cancel: bool = False,
    payment_id: str | None = None,
) -> Response:
    """After the outcome (or the 3-D Secure challenge): 303 to the shop with the signed
    result, or back to the page while the shopper may still act."""
    if not is_session_id(session_id):
        return _error_page(404, "not_found", "tr")
    try:
        location = await checkout.return_location(c.pool, c.checkout, session_id, cancel)
        if payment_id is not None and not cancel:
            # Sent back by the issuer's challenge page (its form's redirect): always to our
            # page first, which waits for the outcome and then moves on by itself. A redirect
            # chain from the challenge form straight to the shop would break the challenge
            # page's CSP form-action, which lists its own and our origin only.
            location = f"/checkout/{session_id}?challenged=1"
    except checkout.CheckoutSessionNotFound:
        return _error_page(404, "not_found", "tr")
    except checkout.CheckoutDisabled:
        return _error_page(503, "unavailable", "tr")
    return RedirectResponse(location, status_code=303, headers=security_headers())


@router.get("/checkout-assets/{name}")
async def asset(name: str) -> Response:
    kinds = {"checkout.js": "text/javascript", "checkout.css": "text/css"}
    if name not in kinds:
        return _error_page(404, "not_found", "tr")
    headers = {**security_headers(), "Cache-Control": "public, max-age=300"}
    return Response(
        (ASSETS / "static" / name).read_bytes(), media_type=kinds[name], headers=headers
    )
