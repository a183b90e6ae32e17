"""The simulated ACS's challenge page, served by the authorization service's HTTP app (the
issuer's side of 3-D Secure; the shopper is sent here by `next_action_url`).

Plain HTML, no script. Strict CSP (the form may post only here, and the redirect after it
only to the payment's return URL), no caching, and a CSRF check on the form: a random value
in an HttpOnly, SameSite=Strict cookie and, in the form, an HMAC of it bound to the challenge.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import asyncpg
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from authorization.adapters.challenge_repository import Challenge, ChallengeRepository
from authorization.domain.acs_messages import MESSAGES, Language, format_amount, pick_language
from authorization.domain.three_ds import challenge_code
from authorization.service_layer.handlers import AuthorizationHandlers
from sanalpos_common.db import unit_of_work
from sanalpos_common.money import currency_exponent

log = logging.getLogger(__name__)
CSRF_COOKIE = "acs_csrf"
MAX_FORM_BYTES = 4096
STYLESHEET = """body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1b1f24}
main{max-width:26rem;margin:2rem auto;padding:1.5rem;background:#fff;border-radius:.5rem}
label{display:block;font-weight:600;margin-top:1rem}
input{font-size:1.25rem;padding:.5rem;width:10ch;letter-spacing:.2em}
button{font-size:1rem;padding:.6rem 1rem;margin:1rem .5rem 0 0}
:focus-visible{outline:3px solid #1a56db;outline-offset:2px}
.error{color:#b42318}.dev{background:#fff7d6;padding:.5rem}
"""


@dataclass(frozen=True)
class AcsPage:
    pool: asyncpg.Pool
    handlers: AuthorizationHandlers
    secure_cookie: bool

    def router(self) -> APIRouter:
        router = APIRouter(prefix="/acs", include_in_schema=False)
        router.add_api_route("/static/acs.css", self.stylesheet, methods=["GET"])
        router.add_api_route("/challenges/{challenge_id}", self.show, methods=["GET"])
        router.add_api_route("/challenges/{challenge_id}", self.submit, methods=["POST"])
        return router

    async def stylesheet(self) -> Response:
        return Response(
            STYLESHEET,
            media_type="text/css",
            headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
        )

    async def show(self, challenge_id: str, request: Request) -> Response:
        language = _language(request)
        async with self.pool.acquire() as conn:
            challenge = await ChallengeRepository(conn).get(challenge_id)
        if challenge is None:
            return self._message(language, "not_found", 404)
        if not challenge.pending:
            return self._done(language, challenge)
        if challenge.expires_at <= self.handlers.clock():
            return self._message(language, "expired", 410)
        nonce = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
        response = self._form(language, challenge, nonce, error=None)
        self._set_cookie(response, nonce)
        return response

    async def submit(self, challenge_id: str, request: Request) -> Response:
        language = _language(request)
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return self._message(language, "forbidden", 413)
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        nonce = request.cookies.get(CSRF_COOKIE)
        if nonce is None or not hmac.compare_digest(
            form.get("csrf_token", ""), self._csrf_token(challenge_id, nonce)
        ):
            log.warning("ACS form refused: CSRF token missing or wrong")
            return self._message(language, "forbidden", 403)
        async with unit_of_work(self.pool, producer="authorization") as uow:
            if form.get("action") == "cancel":
                challenge = await self.handlers.abandon_challenge(uow, challenge_id)
            else:
                code = form.get("code", "")[:16]
                challenge = await self.handlers.answer_challenge(uow, challenge_id, code)
        if challenge is None:
            return self._message(language, "not_found", 404)
        if challenge.pending:
            left = MESSAGES[language]["wrong_code"].format(left=challenge.attempts_left)
            response = self._form(language, challenge, nonce, error=left)
            response.status_code = 422
            return response
        if challenge.return_url:
            return RedirectResponse(
                _with_payment_id(challenge.return_url, str(challenge.payment_id)),
                status_code=303,
                headers=_headers(None),
            )
        return self._done(language, challenge)

    # --- pages ------------------------------------------------------------------------

    def _csrf_token(self, challenge_id: str, nonce: str) -> str:
        message = f"csrf:{challenge_id}:{nonce}".encode()
        return hmac.new(self.handlers.acs.key, message, hashlib.sha256).hexdigest()

    def _set_cookie(self, response: Response, nonce: str) -> None:
        response.set_cookie(
            CSRF_COOKIE,
            nonce,
            httponly=True,
            samesite="strict",
            secure=self.secure_cookie,
            path="/acs/",
            max_age=3600,
        )

    def _form(
        self, language: Language, challenge: Challenge, nonce: str, *, error: str | None
    ) -> HTMLResponse:
        t = MESSAGES[language]
        scored = challenge.scored
        assert scored is not None
        amount = format_amount(
            scored.amount, scored.currency, currency_exponent(scored.currency), language
        )
        cid = html.escape(challenge.challenge_id)
        dev = ""
        if self.handlers.acs.show_code:
            code = challenge_code(self.handlers.acs.key, challenge.challenge_id)
            dev = f'<p class="dev" id="dev-code">{_e(t["dev_code"].format(code=code))}</p>'
        problem = f'<p class="error" id="code-error" role="alert">{_e(error)}</p>' if error else ""
        described = "code-hint code-error" if error else "code-hint"
        expires = t["expires"].format(time=challenge.expires_at.strftime("%H:%M"))
        other: Language = "en" if language == "tr" else "tr"
        body = f"""<h1>{_e(t["title"])}</h1>
<p>{_e(t["intro"])}</p>
<dl><dt>{_e(t["merchant"])}</dt><dd>{_e(scored.merchant_id)}</dd>
<dt>{_e(t["amount"])}</dt><dd>{_e(amount)}</dd>
<dt>{_e(t["card"])}</dt><dd>•••• {_e(scored.card.last4)}</dd></dl>
<p>{_e(expires)}</p>
{dev}
<form method="post" action="/acs/challenges/{cid}?lang={language}">
<input type="hidden" name="csrf_token" value="{self._csrf_token(challenge.challenge_id, nonce)}">
<label for="code">{_e(t["code_label"])}</label>
<p id="code-hint">{_e(t["code_hint"])}</p>
<input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="6"
 pattern="[0-9]{{6}}" required aria-describedby="{described}"{' aria-invalid="true"' if error else ""}>
{problem}
<div><button type="submit" name="action" value="submit">{_e(t["submit"])}</button>
<button type="submit" name="action" value="cancel" formnovalidate>{_e(t["cancel"])}</button></div>
</form>
<p><a href="/acs/challenges/{cid}?lang={other}" lang="{other}">{_e(t["switch"])}</a></p>"""
        return _page(language, t["title"], body, 200, challenge.return_url)

    def _done(self, language: Language, challenge: Challenge) -> HTMLResponse:
        t = MESSAGES[language]
        text = t.get(f"done_{challenge.status}", t["done_failed"])
        back = ""
        if challenge.return_url:
            url = _with_payment_id(challenge.return_url, str(challenge.payment_id))
            back = f'<p><a href="{_e(url)}">{_e(t["back"])}</a></p>'
        body = f'<h1>{_e(t["title"])}</h1>\n<p id="result">{_e(text)}</p>\n{back}'
        return _page(language, t["title"], body, 200, None)

    def _message(self, language: Language, key: str, status: int) -> HTMLResponse:
        t = MESSAGES[language]
        body = f'<h1>{_e(t["title"])}</h1>\n<p id="result">{_e(t[key])}</p>'
        return _page(language, t["title"], body, status, None)


def _e(text: str | None) -> str:
    return html.escape(text or "")


def _language(request: Request) -> Language:
    return pick_language(request.query_params.get("lang"), request.headers.get("accept-language"))


def _origin(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def _headers(return_url: str | None) -> dict[str, str]:
    # Browsers apply form-action to the redirect after the post too: the return URL's
    # origin is allowed there, nothing else.
    form_action = " ".join(filter(None, ("'self'", _origin(return_url))))
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'self'; img-src 'self'; form-action {form_action}; "
            "frame-ancestors 'none'; base-uri 'none'"
        ),
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
    }


def _page(
    language: Language, title: str, body: str, status: int, return_url: str | None
) -> HTMLResponse:
    document = f"""<!doctype html>
<html lang="{language}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title><link rel="stylesheet" href="/acs/static/acs.css"></head>
<body><main>
{body}
</main></body>
</html>
"""
    return HTMLResponse(document, status_code=status, headers=_headers(return_url))


def _with_payment_id(url: str, payment_id: str) -> str:
    parts = urlsplit(url)
    query = parts.query + ("&" if parts.query else "") + urlencode({"payment_id": payment_id})
    return urlunsplit(parts._replace(query=query))
