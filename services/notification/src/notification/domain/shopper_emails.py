"""Receipts and notices to the shopper: which event tells the shopper what, and the email's
text and HTML in the shopper's language. Pure: no I/O.

Only the card's brand and last four digits ever reach this module (and the email); the
texts come from the message catalogues in `messages/<locale>.json`.
"""

from __future__ import annotations

import html
import json
import re
import string
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sanalpos_common import topics
from sanalpos_common.money import currency_exponent
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import (
    PaymentAuthorized,
    PaymentCaptured,
    PaymentInitiated,
    PaymentRefunded,
    PaymentVoided,
    event_type,
)

Locale = Literal["tr", "en"]
LOCALES: tuple[Locale, ...] = ("tr", "en")
DEFAULT_TIME_ZONE = "Europe/Istanbul"
_EMAIL_NAMESPACE = uuid.UUID("0b7f3c52-58a4-4a0e-9d7e-3f1f5c2a9e61")

SCHEME_NAMES = {
    "visa": "Visa",
    "mastercard": "Mastercard",
    "amex": "American Express",
    "troy": "Troy",
    "discover": "Discover",
    "jcb": "JCB",
    "unionpay": "UnionPay",
    "maestro": "Maestro",
    "diners": "Diners Club",
    "mir": "Mir",
}


class EmailKind(StrEnum):
    RECEIPT = "receipt"  # a sale was captured
    PREAUTHORIZATION = "preauthorization"  # a pre-authorization placed its hold
    REFUND = "refund"
    VOID = "void"  # a captured sale reversed before the cut-off
    VOID_HOLD = "void_hold"  # a pre-authorization's hold released


# ----------------------------------------------------------------------------- catalogues


@cache
def catalogue(locale: Locale) -> dict[str, str]:
    text = resources.files(__package__).joinpath("messages", f"{locale}.json").read_text("utf-8")
    return cast(dict[str, str], json.loads(text))


def message(locale: Locale, key: str, **values: object) -> str:
    """The catalogue's text for `key`, its {placeholders} filled in (str.format semantics
    on the catalogue text only: the values are never formatted themselves)."""
    return catalogue(locale)[key].format(**values)


# ----------------------------------------------------------------------------- formatting


def _group(units: int, separator: str) -> str:
    return f"{units:,}".replace(",", separator)


def format_amount(amount: int, currency: str, locale: Locale) -> str:
    """Minor units to the locale's way of writing money: tr `1.250,00 TL`, en `TRY 1,250.00`.
    Exact to the currency's exponent (JPY 0, KWD 3); no floats anywhere."""
    exponent = currency_exponent(currency)
    sign = "-" if amount < 0 else ""
    units, minor = divmod(abs(amount), 10**exponent)
    if locale == "tr":
        number = _group(units, ".") + (f",{minor:0{exponent}d}" if exponent else "")
        return f"{sign}{number} {'TL' if currency == 'TRY' else currency}"
    number = _group(units, ",") + (f".{minor:0{exponent}d}" if exponent else "")
    return f"{sign}{currency} {number}"


def mask_card(last4: str) -> str:
    if not re.fullmatch(r"\d{4}", last4):
        raise ValueError("last4 must be four digits")
    return f"**** **** **** {last4}"


def card_label(brand: str, last4: str, locale: Locale) -> str:
    name = SCHEME_NAMES.get(brand.lower()) or message(locale, "card.unknown_brand")
    return f"{name} {mask_card(last4)}"


def installments_label(count: int, locale: Locale) -> str:
    if count <= 1:
        return message(locale, "installments.single")
    return message(locale, "installments.many", count=count)


def zone_of(time_zone: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(time_zone or DEFAULT_TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIME_ZONE)


def format_date(moment: datetime, locale: Locale, time_zone: str | None = None) -> str:
    """In the merchant's time zone (Europe/Istanbul when unknown), with its UTC offset:
    tr `3 Aral\u0131k 2026 10:23 (UTC+03:00)`, en `3 December 2026, 10:23 (UTC+03:00)`."""
    local = moment.astimezone(zone_of(time_zone))
    months = message(locale, "months").split("|")
    text = message(
        locale,
        "date.format",
        day=local.day,
        month=months[local.month - 1],
        year=local.year,
        hour=f"{local.hour:02d}",
        minute=f"{local.minute:02d}",
    )
    offset = local.strftime("%z")
    return f"{text} (UTC{offset[:3]}:{offset[3:]})"


def header_safe(text: str) -> str:
    """A display name for an address header: no control characters, whitespace collapsed."""
    return " ".join("".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in text).split())


# ----------------------------------------------------------------------------- what is known


@dataclass(frozen=True)
class ShopperPayment:
    """What notification keeps of payment.initiated: no card data beyond brand and last 4."""

    payment_id: uuid.UUID
    merchant_id: str
    amount: int
    currency: str
    capture: bool
    installments: int
    card_brand: str
    card_last4: str
    created_at: datetime
    email: str | None = None
    name: str | None = None
    locale: Locale = "tr"

    @classmethod
    def from_initiated(cls, event: PaymentInitiated) -> ShopperPayment:
        shopper = event.shopper
        return cls(
            payment_id=event.payment_id,
            merchant_id=event.merchant_id,
            amount=event.amount,
            currency=event.currency,
            capture=event.capture,
            installments=event.installments,
            card_brand=event.card.brand,
            card_last4=event.card.last4,
            created_at=event.created_at,
            email=shopper.email if shopper else None,
            name=shopper.name if shopper else None,
            locale=shopper.locale if shopper else "tr",
        )


@dataclass(frozen=True)
class Merchant:
    name: str
    time_zone: str = DEFAULT_TIME_ZONE


_AUTHORIZED = event_type(topics.PAYMENT_AUTHORIZED)
_CAPTURED = event_type(topics.PAYMENT_CAPTURED)
_REFUNDED = event_type(topics.PAYMENT_REFUNDED)
_VOIDED = event_type(topics.PAYMENT_VOIDED)


@dataclass(frozen=True)
class Trigger:
    """An outcome event that may tell the shopper something: only the facts the email uses."""

    message_id: uuid.UUID
    event_type: str
    payment_id: uuid.UUID
    merchant_id: str
    occurred_at: datetime
    amount: int
    currency: str
    capture: bool | None = None
    """payment.authorized: a sale (true) or a pre-authorization (false)."""
    after_capture: bool | None = None
    """payment.voided: a captured sale reversed (true) or a hold released (false)."""

    @classmethod
    def from_envelope(cls, envelope: Envelope[Any]) -> Trigger | None:
        """None for an event that never makes an email, whatever the payment."""
        payload = envelope.payload
        common: dict[str, Any] = {
            "message_id": envelope.message_id,
            "event_type": envelope.type,
            "occurred_at": envelope.occurred_at,
        }
        if isinstance(payload, PaymentAuthorized):
            if payload.capture:
                return None  # a sale: its receipt goes out when it is captured
            return cls(**common, **_ref(payload), capture=False)
        if isinstance(payload, PaymentCaptured | PaymentRefunded):
            return cls(**common, **_ref(payload))
        if isinstance(payload, PaymentVoided):
            return cls(**common, **_ref(payload), after_capture=payload.after_capture)
        return None

    def to_json(self) -> str:
        data = asdict(self)
        data["message_id"] = str(self.message_id)
        data["payment_id"] = str(self.payment_id)
        data["occurred_at"] = self.occurred_at.isoformat()
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> Trigger:
        data = json.loads(text)
        data["message_id"] = uuid.UUID(data["message_id"])
        data["payment_id"] = uuid.UUID(data["payment_id"])
        data["occurred_at"] = datetime.fromisoformat(data["occurred_at"])
        return cls(**data)


def _ref(payload: Any) -> dict[str, Any]:
    return {
        "payment_id": payload.payment_id,
        "merchant_id": payload.merchant_id,
        "amount": payload.amount,
        "currency": payload.currency,
    }


def email_kind(payment: ShopperPayment, trigger: Trigger) -> EmailKind | None:
    """Success = captured for a sale, authorized for a pre-authorization; a pre-authorization's
    later capture sends nothing more (the shopper was told at authorization)."""
    if trigger.event_type == _CAPTURED:
        return EmailKind.RECEIPT if payment.capture else None
    if trigger.event_type == _AUTHORIZED:
        return None if payment.capture or trigger.capture else EmailKind.PREAUTHORIZATION
    if trigger.event_type == _REFUNDED:
        return EmailKind.REFUND
    if trigger.event_type == _VOIDED:
        return EmailKind.VOID if trigger.after_capture else EmailKind.VOID_HOLD
    return None


# ----------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


_HTML = string.Template(
    """<!DOCTYPE html>
<html lang="$lang">
<head><meta charset="utf-8"><title>$subject</title></head>
<body style="margin:0;padding:24px;background:#f4f5f7;font-family:Arial,Helvetica,sans-serif;color:#1f2933">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="max-width:560px;margin:0 auto;background:#ffffff;border-radius:6px">
<tr><td style="padding:24px 24px 8px 24px;font-size:18px;font-weight:bold">$merchant</td></tr>
<tr><td style="padding:8px 24px">$greeting</td></tr>
<tr><td style="padding:8px 24px 16px 24px">$intro</td></tr>
<tr><td style="padding:0 24px 16px 24px">
<table role="presentation" width="100%" cellpadding="6" cellspacing="0" style="border-collapse:collapse;font-size:14px">
$rows
</table>
</td></tr>
<tr><td style="padding:16px 24px 24px 24px;font-size:12px;color:#6b7280">$footer</td></tr>
</table>
</body>
</html>
"""
)
_ROW = string.Template(
    '<tr><td style="color:#6b7280;border-top:1px solid #e5e7eb">$label</td>'
    '<td style="text-align:right;border-top:1px solid #e5e7eb">$value</td></tr>'
)


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


def render(
    kind: EmailKind,
    payment: ShopperPayment,
    trigger: Trigger,
    merchant: Merchant | None,
) -> RenderedEmail:
    """The email in the shopper's language, as text and as HTML (every value escaped)."""
    locale = payment.locale
    merchant_name = merchant.name if merchant else payment.merchant_id
    zone = merchant.time_zone if merchant else None
    subject = header_safe(message(locale, f"subject.{kind.value}", merchant=merchant_name))
    name = header_safe(payment.name or "")
    greeting = (
        message(locale, "greeting.named", name=name)
        if name
        else message(locale, "greeting.anonymous")
    )
    intro = message(locale, f"intro.{kind.value}", merchant=merchant_name)
    amount_label = "label.refund_amount" if kind is EmailKind.REFUND else "label.amount"
    rows: list[tuple[str, str]] = [
        (message(locale, "label.merchant"), merchant_name),
        (message(locale, amount_label), format_amount(trigger.amount, trigger.currency, locale)),
    ]
    if kind in (EmailKind.RECEIPT, EmailKind.PREAUTHORIZATION):
        rows.append(
            (
                message(locale, "label.installments"),
                installments_label(payment.installments, locale),
            )
        )
    rows += [
        (message(locale, "label.card"), card_label(payment.card_brand, payment.card_last4, locale)),
        (message(locale, "label.date"), format_date(payment.created_at, locale, zone)),
    ]
    if kind not in (EmailKind.RECEIPT, EmailKind.PREAUTHORIZATION):
        rows.append(
            (message(locale, "label.notice_date"), format_date(trigger.occurred_at, locale, zone))
        )
    rows.append((message(locale, "label.reference"), str(payment.payment_id)))
    footer = message(locale, "footer", merchant=merchant_name)

    width = max(len(label) for label, _ in rows)
    text = "\n".join(
        [
            greeting,
            "",
            intro,
            "",
            *(f"{label + ':':<{width + 2}}{value}" for label, value in rows),
            "",
            "--",
            footer,
            "",
        ]
    )
    body = _HTML.substitute(
        lang=locale,
        subject=_escape(subject),
        merchant=_escape(merchant_name),
        greeting=_escape(greeting),
        intro=_escape(intro),
        rows="\n".join(
            _ROW.substitute(label=_escape(label), value=_escape(value)) for label, value in rows
        ),
        footer=_escape(footer),
    )
    return RenderedEmail(subject=subject, text=text, html=body)


# ----------------------------------------------------------------------------- the email


def email_id(message_id: uuid.UUID) -> uuid.UUID:
    """One email per triggering event: the same for a redelivered event."""
    return uuid.uuid5(_EMAIL_NAMESPACE, f"shopper-email:{message_id}")


@dataclass(frozen=True)
class NewEmail:
    id: uuid.UUID
    message_id: uuid.UUID
    payment_id: uuid.UUID
    merchant_id: str
    kind: EmailKind
    locale: Locale
    to_address: str
    to_name: str | None
    subject: str
    text_body: str
    html_body: str


def plan_email(
    payment: ShopperPayment, trigger: Trigger, merchant: Merchant | None
) -> NewEmail | None:
    """The email this event sends the shopper of this payment, if any: none without an
    address, and none for events that tell the shopper nothing new."""
    if not payment.email or trigger.payment_id != payment.payment_id:
        return None
    kind = email_kind(payment, trigger)
    if kind is None:
        return None
    rendered = render(kind, payment, trigger, merchant)
    return NewEmail(
        id=email_id(trigger.message_id),
        message_id=trigger.message_id,
        payment_id=payment.payment_id,
        merchant_id=payment.merchant_id,
        kind=kind,
        locale=payment.locale,
        to_address=payment.email,
        to_name=header_safe(payment.name) if payment.name else None,
        subject=rendered.subject,
        text_body=rendered.text,
        html_body=rendered.html,
    )
