"""Checkout sessions: the merchant opens one, the hosted payment page takes the shopper's
encrypted card for it, and the browser goes back to the shop with a signed result.

The page's server side only ever handles the card as the JWE the browser made; it is opened
inside intake's usual decrypt-validate-protect path (create_payment). A submit locks the
session's row, so two submits of one session run one after the other: while a payment of the
session is in flight, another submit answers that payment instead of paying again."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import asyncpg
from pydantic import SecretStr

from intake.adapters.checkout_sessions import CheckoutSessionRepository
from intake.domain.checkout import (
    IN_FLIGHT,
    SUCCEEDED,
    LatestPayment,
    ReturnTo,
    ShopperView,
    attempts_left,
    format_amount,
    installment_rows,
    new_session_id,
    return_target,
    session_status,
    shopper_view,
    signed_text,
)
from intake.domain.commands import CardIn, CreatePaymentRequest
from intake.domain.queries import BadCursor
from intake.domain.rate_limit import Limit, RateLimiter
from intake.service_layer.card_protection import CardProtection
from intake.service_layer.cards import open_encrypted_card
from intake.service_layer.checkout_signing import ResultSigner
from intake.service_layer.client_encryption import ClientEncryption
from intake.service_layer.idempotency import Response, idempotency_scope, run_in_transaction
from intake.service_layer.installments import card_installments
from intake.service_layer.payments import create_payment
from intake.service_layer.problems import FieldError, Refused, invalid
from sanalpos_common.db import UnitOfWork
from sanalpos_common.schemas.events import RiskContext, Shopper, ThreeDSRequest


class CheckoutSessionNotFound(Exception):
    """No session with this id (for this merchant, on the merchant API)."""


class CheckoutSessionExpired(Exception):
    """The session's expiry has passed: it takes no more payments."""


class CheckoutSessionCompleted(Exception):
    """The session was paid already."""


class CheckoutAttemptsExhausted(Exception):
    """The session has refused as many declined card attempts as it allows."""


class CheckoutCsrfRefused(Exception):
    """The submit did not carry the page's token in both its header and its cookie."""


PAGE_LIMIT = Limit(per_second=0.5, burst=20)


class CheckoutPageRateLimited(Exception):
    """Too many BIN lookups or submits for one session."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


def limit_page(settings: CheckoutSettings, session_id: str, now: float) -> None:
    wait = settings.page_limits.check(session_id, now)
    if wait is not None:
        raise CheckoutPageRateLimited(wait)


class CheckoutDisabled(Exception):
    """No result-signing key is configured, so no session can be opened or paid."""


@dataclass(frozen=True)
class CheckoutSettings:
    public_base_url: str
    signer: ResultSigner | None
    max_attempts: int = 3
    submit_slots: asyncio.Semaphore | None = None
    page_limits: RateLimiter = field(
        default_factory=lambda: RateLimiter(PAGE_LIMIT, max_keys=100_000)
    )
    """BIN lookups and submits per session, in this process: against BIN probing and card
    testing through one page (the attempt limit counts declines; this counts requests)."""

    def page_url(self, session_id: str) -> str:
        return f"{self.public_base_url.rstrip('/')}/checkout/{session_id}"

    def require_signer(self) -> ResultSigner:
        if self.signer is None:
            raise CheckoutDisabled
        return self.signer


def _latest(payments: Sequence[Any]) -> LatestPayment | None:
    if not payments:
        return None
    row = payments[-1]
    return LatestPayment(
        status=row["status"],
        response_code=row["response_code"],
        declined_by=row["declined_by"],
        next_action_url=row.get("next_action_url") if hasattr(row, "get") else None,
    )


def _statuses(payments: Sequence[Any]) -> list[str]:
    return [p["status"] for p in payments]


def session_view(
    settings: CheckoutSettings,
    row: Any,
    payments: Sequence[Any],
    now: datetime,
) -> dict[str, Any]:
    statuses = _statuses(payments)
    latest = payments[-1] if payments else None
    shopper = None
    if row["shopper_email"] is not None or row["shopper_name"] is not None:
        shopper = {"email": row["shopper_email"], "name": row["shopper_name"]}
    basket = row["basket"]
    return {
        "id": row["id"],
        "object": "checkout_session",
        "url": settings.page_url(row["id"]),
        "status": session_status(row["expires_at"], now, statuses),
        "amount": row["amount"],
        "currency": row["currency"].strip(),
        "order_id": row["order_id"],
        "basket": basket if isinstance(basket, list) else json.loads(basket),
        "capture": row["capture"],
        "installments": list(row["installments"]),
        "locale": row["locale"],
        "shopper": shopper,
        "success_url": row["success_url"],
        "failure_url": row["failure_url"],
        "attempts_left": attempts_left(row["max_attempts"], statuses),
        "payment": None
        if latest is None
        else {
            "id": str(latest["id"]),
            "status": latest["status"],
            "installments": latest["installments"],
        },
        "expires_at": row["expires_at"].isoformat(),
        "created_at": row["created_at"].isoformat(),
    }


async def create_session(
    pool: asyncpg.Pool,
    settings: CheckoutSettings,
    merchant_id: str,
    body: Any,
    idempotency_key: str | None,
    endpoint: str,
) -> Response:
    """`body`: a CreateCheckoutSession. Idempotent with a key, like every merchant POST."""
    settings.require_signer()
    scope = idempotency_scope(merchant_id, idempotency_key, endpoint, body.model_dump(mode="json"))

    async def work(uow: UnitOfWork) -> Response:
        locale = body.locale or await uow.conn.fetchval(
            "SELECT checkout_locale FROM merchants WHERE id = $1", merchant_id
        )
        now = datetime.now(UTC)
        row: dict[str, Any] = {
            "id": new_session_id(),
            "merchant_id": merchant_id,
            "amount": body.amount,
            "currency": body.currency,
            "order_id": body.order_id,
            "basket": [line.model_dump(mode="json") for line in body.basket],
            "capture": body.capture,
            # A single payment is always offered: a debit card can pay in nothing else.
            "installments": sorted({1, *body.installments}),
            "locale": locale or "tr",
            "shopper_email": body.shopper.email if body.shopper else None,
            "shopper_name": body.shopper.name if body.shopper else None,
            "success_url": body.success_url,
            "failure_url": body.failure_url,
            "csrf_token": secrets.token_urlsafe(32),
            "max_attempts": settings.max_attempts,
            "expires_at": now + timedelta(seconds=body.expires_in_s),
            "created_at": now,
        }
        await CheckoutSessionRepository(uow.conn).add(row)
        return Response(201, session_view(settings, row, [], now))

    return await run_in_transaction(pool, scope, work)


async def read_session(
    pool: asyncpg.Pool, settings: CheckoutSettings, merchant_id: str, session_id: str
) -> dict[str, Any]:
    repo = CheckoutSessionRepository(pool)
    row = await repo.get(merchant_id, session_id)
    if row is None:
        raise CheckoutSessionNotFound(session_id)
    return session_view(settings, row, await repo.payments([session_id]), datetime.now(UTC))


def encode_cursor(row: Any) -> str:
    text = f"{row['created_at'].isoformat()}|{row['id']}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, _, session_id = text.partition("|")
        when = datetime.fromisoformat(created)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadCursor(cursor) from None
    if not session_id.startswith("cs_") or when.tzinfo is None:
        raise BadCursor(cursor)
    return when, session_id


async def list_sessions(
    pool: asyncpg.Pool,
    settings: CheckoutSettings,
    merchant_id: str,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    repo = CheckoutSessionRepository(pool)
    rows = await repo.page(merchant_id, limit + 1, decode_cursor(cursor) if cursor else None)
    page, has_more = rows[:limit], len(rows) > limit
    by_session: dict[str, list[Any]] = {}
    for payment in await repo.payments([r["id"] for r in page]):
        by_session.setdefault(payment["checkout_session_id"], []).append(payment)
    now = datetime.now(UTC)
    return {
        "object": "list",
        "data": [session_view(settings, r, by_session.get(r["id"], []), now) for r in page],
        "has_more": has_more,
        "next_cursor": encode_cursor(page[-1]) if has_more else None,
    }


# --- the page ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageSession:
    row: Any
    merchant_name: str
    frame_ancestors: list[str]
    payments: list[Any]
    view: ShopperView

    @property
    def status(self) -> str:
        return session_status(self.row["expires_at"], datetime.now(UTC), _statuses(self.payments))


async def page_session(pool: asyncpg.Pool, session_id: str) -> PageSession:
    repo = CheckoutSessionRepository(pool)
    row = await repo.find(session_id)
    if row is None:
        raise CheckoutSessionNotFound(session_id)
    merchant = await pool.fetchrow(
        "SELECT name, checkout_frame_ancestors FROM merchants WHERE id = $1", row["merchant_id"]
    )
    assert merchant is not None  # a session's merchant is a foreign key
    payments = await repo.payments([session_id])
    return PageSession(
        row,
        merchant["name"],
        list(merchant["checkout_frame_ancestors"]),
        payments,
        _view(row, payments),
    )


def _view(row: Any, payments: Sequence[Any]) -> ShopperView:
    statuses = _statuses(payments)
    status = session_status(row["expires_at"], datetime.now(UTC), statuses)
    return shopper_view(status, _latest(payments), attempts_left(row["max_attempts"], statuses))


async def page_installments(
    pool: asyncpg.Pool, session: PageSession, bin_digits: str
) -> dict[str, Any]:
    """The installment table for a card's BIN: the counts both the session offers and the
    card and merchant allow (a debit card: one)."""
    found = await card_installments(pool, session.row["merchant_id"], bin_digits)
    offered = set(session.row["installments"])
    counts = [o.count for o in found.options if o.count in offered] or [1]
    amount, currency = session.row["amount"], session.row["currency"].strip()
    locale = session.row["locale"]
    return {
        "scheme": found.card.scheme,
        "card_type": found.card.card_type.value,
        "installments": [
            {
                "count": r.count,
                "monthly": r.monthly,
                "total": r.total,
                "monthly_text": format_amount(r.monthly, currency, locale),
                "total_text": format_amount(r.total, currency, locale),
            }
            for r in installment_rows(amount, counts)
        ],
    }


def check_csrf(row: Any, header: str | None, cookie: str | None) -> None:
    token = row["csrf_token"].encode()
    if not header or not cookie:
        raise CheckoutCsrfRefused
    if not (
        hmac.compare_digest(header.encode(), token) and hmac.compare_digest(cookie.encode(), token)
    ):
        raise CheckoutCsrfRefused


@dataclass(frozen=True)
class PayResult:
    payment_id: str
    created: bool
    """False: a payment of the session was in flight already and is answered instead."""
    view: ShopperView


async def pay(
    pool: asyncpg.Pool,
    protection: Any,
    client_encryption: Any,
    settings: CheckoutSettings,
    session_id: str,
    **kwargs: Any,
) -> PayResult:
    """See `_pay`. A submit holds one connection (the session's lock) while the payment
    takes another: `settings.submit_slots` bounds such submits to half the pool, so each one
    holding a connection can always get its second."""
    slots = settings.submit_slots
    async with slots if slots is not None else contextlib.nullcontext():
        return await _pay(pool, protection, client_encryption, settings, session_id, **kwargs)


async def _pay(
    pool: asyncpg.Pool,
    protection: CardProtection,
    client_encryption: ClientEncryption,
    settings: CheckoutSettings,
    session_id: str,
    *,
    csrf_header: str | None,
    csrf_cookie: str | None,
    encrypted_card: str,
    installments: int,
    customer_ip: str | None = None,
) -> PayResult:
    settings.require_signer()
    async with pool.acquire() as conn, conn.transaction():
        repo = CheckoutSessionRepository(conn)
        row = await repo.find(session_id, for_update=True)  # one submit at a time
        if row is None:
            raise CheckoutSessionNotFound(session_id)
        check_csrf(row, csrf_header, csrf_cookie)
        payments = await repo.payments([session_id])
        statuses = _statuses(payments)
        status = session_status(row["expires_at"], datetime.now(UTC), statuses)
        if status == "completed":
            raise CheckoutSessionCompleted(session_id)
        if status == "expired":
            raise CheckoutSessionExpired(session_id)
        if payments and payments[-1]["status"] in IN_FLIGHT:
            return PayResult(str(payments[-1]["id"]), False, _view(row, payments))
        if attempts_left(row["max_attempts"], statuses) == 0:
            raise CheckoutAttemptsExhausted(session_id)
        if installments not in row["installments"]:
            raise Refused(
                invalid(
                    FieldError("installments", "not offered by this checkout", "not_allowed"),
                    allowed_installments=list(row["installments"]),
                )
            )
        merchant_id = row["merchant_id"]
        opened = open_encrypted_card(
            client_encryption, SecretStr(encrypted_card), CardIn, merchant_id, audience=session_id
        )
        request = CreatePaymentRequest(
            amount=row["amount"],
            currency=row["currency"].strip(),
            encrypted_card=SecretStr(encrypted_card),
            capture=row["capture"],
            installments=installments,
            order_id=row["order_id"],
            three_d_secure=ThreeDSRequest.AUTOMATIC,
            return_url=f"{settings.page_url(session_id)}/return",
            shopper=Shopper(
                email=row["shopper_email"], name=row["shopper_name"], locale=row["locale"]
            ),
            context=RiskContext(customer_ip=customer_ip, customer_email=row["shopper_email"])
            if customer_ip or row["shopper_email"]
            else None,
        )
        # The payment commits in its own transaction while this one holds the session's row:
        # the next submit of the session sees it in flight.
        result = await create_payment(
            pool,
            protection,
            merchant_id,
            request,
            None,
            opened.card,
            opened.use,
            checkout_session_id=session_id,
        )
        payment_id = str(result.body["id"])
        return PayResult(
            payment_id, True, ShopperView("pending", attempts_left(row["max_attempts"], statuses))
        )


async def page_status(pool: asyncpg.Pool, session_id: str) -> ShopperView:
    repo = CheckoutSessionRepository(pool)
    row = await repo.find(session_id)
    if row is None:
        raise CheckoutSessionNotFound(session_id)
    return _view(row, await repo.payments([session_id]))


def result_query(
    signer: ResultSigner,
    row: Any,
    target: ReturnTo,
    payment_id: str,
    now_s: int | None = None,
) -> dict[str, str]:
    """The signed result added to success_url or failure_url."""
    assert target.outcome is not None
    timestamp = int(time.time()) if now_s is None else now_s
    text = signed_text(
        row["merchant_id"], row["id"], payment_id, target.outcome, timestamp, signer.kid
    )
    return {
        "session_id": row["id"],
        "payment_id": payment_id,
        "status": target.outcome,
        "timestamp": str(timestamp),
        "key_id": signer.kid,
        "signature": signer.sign(text),
    }


def with_query(url: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


async def return_location(
    pool: asyncpg.Pool, settings: CheckoutSettings, session_id: str, canceled: bool = False
) -> str:
    """Where /checkout/{id}/return sends the browser: the shop with a signed result once
    there is an outcome, else back to the page (which keeps polling)."""
    signer = settings.require_signer()
    session = await page_session(pool, session_id)
    row = session.row
    target = return_target(session.view, row["success_url"], row["failure_url"], canceled)
    if target.url is None:
        return f"/checkout/{session_id}"
    payment_id = _payment_for(session.payments, target)
    return with_query(target.url, result_query(signer, row, target, payment_id))


def _payment_for(payments: Sequence[Any], target: ReturnTo) -> str:
    if not payments:
        return ""
    if target.outcome == "succeeded":
        for payment in payments:
            if payment["status"] in SUCCEEDED:
                return str(payment["id"])
    return str(payments[-1]["id"])
