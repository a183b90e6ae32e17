"""Checkout sessions of the hosted payment page: ids, amounts as a shopper reads them, the
session's derived status, what the page tells the shopper, where the browser goes back to,
and the string the result signature covers. Pure: no I/O, no clock of its own."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Final, Literal

from sanalpos_common.money import currency_exponent

SESSION_ID_PATTERN: Final = r"^cs_[A-Za-z0-9_-]{32}$"
_SESSION_ID = re.compile(SESSION_ID_PATTERN)
LOCALES: Final = ("tr", "en")
Locale = Literal["tr", "en"]
MAX_FRAME_ANCESTORS: Final = 10
ORIGIN_PATTERN: Final = r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$"
_ORIGIN = re.compile(ORIGIN_PATTERN)


def new_session_id() -> str:
    """`cs_` and 24 random bytes: the page's URL is the only credential a shopper has."""
    return "cs_" + secrets.token_urlsafe(24)


def is_session_id(text: str) -> bool:
    return _SESSION_ID.match(text) is not None


def check_frame_ancestors(origins: Iterable[str]) -> list[str]:
    """Origins allowed to frame the page (CSP frame-ancestors), or ValueError."""
    found = list(origins)
    if len(found) > MAX_FRAME_ANCESTORS:
        raise ValueError(f"at most {MAX_FRAME_ANCESTORS} origins")
    for origin in found:
        if not isinstance(origin, str) or not _ORIGIN.match(origin):
            raise ValueError("origins like https://shop.example or https://shop.example:8443")
    return sorted(set(found))


# --- amounts -------------------------------------------------------------------------------


def _grouped(digits: str, separator: str) -> str:
    head = len(digits) % 3 or 3
    parts = [digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)]
    return separator.join(parts)


def format_amount(amount: int, currency: str, locale: str) -> str:
    """Minor units as a shopper reads them: tr `1.250,00 TL`, en `TRY 1,250.00`."""
    exponent = currency_exponent(currency)
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), 10**exponent)
    if locale == "tr":
        text = _grouped(str(whole), ".")
        if exponent:
            text += "," + str(fraction).zfill(exponent)
        return f"{sign}{text} {'TL' if currency == 'TRY' else currency}"
    text = _grouped(str(whole), ",")
    if exponent:
        text += "." + str(fraction).zfill(exponent)
    return f"{currency} {sign}{text}"


def to_decimal(amount: int, currency: str) -> Decimal:
    return Decimal(amount).scaleb(-currency_exponent(currency))


@dataclass(frozen=True)
class InstallmentRow:
    count: int
    monthly: int
    """Each installment in minor units; the first carries the remainder of the division."""
    first: int
    total: int


def installment_rows(amount: int, counts: Iterable[int]) -> list[InstallmentRow]:
    """The shopper's table. The commission of the merchant's fee plan is the merchant's (the
    acquirer finances the installments), so the shopper's total is the amount itself."""
    rows = []
    for count in sorted(set(counts)):
        monthly, remainder = divmod(amount, count)
        rows.append(InstallmentRow(count, monthly, monthly + remainder, amount))
    return rows


# --- status --------------------------------------------------------------------------------


class SessionStatus(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"
    EXPIRED = "expired"


SUCCEEDED = frozenset(
    {"authorized", "captured", "settled", "partially_refunded", "refunded", "voided"}
)
"""Payment statuses reached only after the issuer approved (a void or refund comes later)."""
IN_FLIGHT = frozenset({"pending", "requires_action"})
FAILED = frozenset({"declined", "expired"})


def session_status(expires_at: datetime, now: datetime, payment_statuses: Iterable[str]) -> str:
    statuses = set(payment_statuses)
    if statuses & SUCCEEDED:
        return SessionStatus.COMPLETED.value
    if now >= expires_at:
        return SessionStatus.EXPIRED.value
    return SessionStatus.OPEN.value


def attempts_left(max_attempts: int, payment_statuses: Iterable[str]) -> int:
    return max(0, max_attempts - sum(1 for s in payment_statuses if s in FAILED))


# Shopper-safe reasons, keys of the message catalogues: never fraud scores or rules.
_REASONS_BY_CODE: Final = {
    "51": "insufficient_funds",
    "54": "expired_card",
    "14": "invalid_card",
    "N7": "wrong_cvc",
    "82": "wrong_cvc",
    "57": "not_permitted",
    "62": "not_permitted",
    "61": "limit_exceeded",
    "65": "limit_exceeded",
}


def decline_reason(response_code: str | None, declined_by: str | None) -> str:
    if declined_by == "authentication":
        return "authentication_failed"
    if declined_by == "issuer" or declined_by is None:
        return _REASONS_BY_CODE.get(response_code or "", "declined")
    return "declined"  # fraud or the platform: the shopper is not told why


@dataclass(frozen=True)
class ShopperView:
    """What GET /checkout/{id}/status answers the page."""

    state: Literal["open", "pending", "requires_action", "succeeded", "declined", "expired"]
    attempts_left: int
    next_action_url: str | None = None
    reason: str | None = None
    final: bool = False
    """The page should go back to the shop (success, no attempts left, or expired)."""

    def document(self) -> dict[str, object]:
        out: dict[str, object] = {
            "status": self.state,
            "attempts_left": self.attempts_left,
            "final": self.final,
        }
        if self.next_action_url is not None:
            out["next_action_url"] = self.next_action_url
        if self.reason is not None:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True)
class LatestPayment:
    status: str
    response_code: str | None = None
    declined_by: str | None = None
    next_action_url: str | None = None
    """Filled from payment.action-required.v1 where intake records it; None otherwise."""


def shopper_view(
    status: str, latest: LatestPayment | None, left: int, expired: bool = False
) -> ShopperView:
    """The page's state from the session's status and its latest payment."""
    if status == SessionStatus.COMPLETED:
        return ShopperView("succeeded", left, final=True)
    if latest is not None and latest.status in IN_FLIGHT:
        if latest.status == "requires_action" and latest.next_action_url:
            return ShopperView("requires_action", left, next_action_url=latest.next_action_url)
        return ShopperView("pending", left)  # requires_action without a URL yet: keep polling
    if status == SessionStatus.EXPIRED or expired:
        return ShopperView("expired", 0, final=True)
    if latest is not None and latest.status in FAILED:
        reason = decline_reason(latest.response_code, latest.declined_by)
        return ShopperView("declined", left, reason=reason, final=left == 0)
    return ShopperView("open", left)


@dataclass(frozen=True)
class ReturnTo:
    """Where /checkout/{id}/return sends the browser: the shop (`url`, with a result) or,
    while the shopper may still act, back to the page (`url` None)."""

    outcome: Literal["succeeded", "declined", "expired", "canceled"] | None
    url: str | None


def return_target(
    view: ShopperView, success_url: str, failure_url: str, canceled: bool = False
) -> ReturnTo:
    if view.state == "succeeded":
        return ReturnTo("succeeded", success_url)
    if view.state == "expired":
        return ReturnTo("expired", failure_url)
    if view.state == "declined" and view.final:
        return ReturnTo("declined", failure_url)
    if canceled and view.state == "declined":  # gave up after a decline: that is the result
        return ReturnTo("declined", failure_url)
    if canceled and view.state == "open":
        return ReturnTo("canceled", failure_url)
    return ReturnTo(None, None)


SIGNATURE_VERSION: Final = "sanalpos-checkout-v1"


def signed_text(
    merchant_id: str, session_id: str, payment_id: str, status: str, timestamp: int, key_id: str
) -> bytes:
    """The canonical string the result signature covers: its fields, one a line."""
    fields = [SIGNATURE_VERSION, key_id, merchant_id, session_id, payment_id, status, timestamp]
    return "\n".join(str(f) for f in fields).encode()
