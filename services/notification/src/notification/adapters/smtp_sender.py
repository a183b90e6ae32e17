"""Sends one shopper email over SMTP with aiosmtplib, one session per message.

The MIME message is built here from the stored row: multipart/alternative with the text and
the HTML part, both UTF-8 quoted-printable, a Message-ID derived from the email's id (the same
on every retry, so a receiver can drop a duplicate) and a Date from when it was queued.

The MIME boundary is set here too. Python's own is fifteen '=' and a random 19-digit number,
which is Luhn-valid one time in ten: card scanners (ours, and a receiver's DLP) would take it
for a card number in every receipt.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Literal

import aiosmtplib

from notification.adapters.shopper_emails import ClaimedEmail
from sanalpos_common.observability import redact

TlsMode = Literal["none", "starttls", "tls"]

_DIGITS_AS_LETTERS = str.maketrans("0123456789", "ghijklmnop")


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    tls: TlsMode = "none"
    username: str | None = None
    password: str | None = None
    from_address: str = "sanalpos <no-reply@sanalpos.local>"
    timeout_s: float = 30.0


@dataclass(frozen=True)
class SmtpResult:
    ok: bool
    code: int | None
    """The server's reply code to what failed (or 250), None when there was no answer."""
    error: str | None
    duration_ms: int
    permanent: bool = False
    """The server refused this recipient or message for good (5xx): retrying cannot help."""


def build_message(email: ClaimedEmail, from_address: str) -> EmailMessage:
    from_name, from_addr = parseaddr(from_address)
    message = EmailMessage()
    message["From"] = Address(display_name=from_name, addr_spec=from_addr)
    message["To"] = Address(display_name=email.to_name or "", addr_spec=email.to_address)
    message["Subject"] = email.subject
    message["Date"] = format_datetime(email.created_at)
    domain = from_addr.rpartition("@")[2] or "sanalpos.local"
    message["Message-ID"] = f"<{email.id}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies, please
    message.set_content(email.text_body, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(
        email.html_body, subtype="html", charset="utf-8", cte="quoted-printable"
    )
    message["Content-Language"] = email.locale  # after the content, which clears Content-*
    message.set_boundary(mime_boundary(email.id))
    return message


def mime_boundary(email_id: uuid.UUID) -> str:
    """Letters only, so no digit run; '=_' cannot occur in quoted-printable text."""
    return "=_sanalpos_" + email_id.hex.translate(_DIGITS_AS_LETTERS)


class SmtpSender:
    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    async def send(self, email: ClaimedEmail) -> SmtpResult:
        config = self.config
        started = time.perf_counter()

        def result(
            ok: bool, code: int | None, error: str | None, permanent: bool = False
        ) -> SmtpResult:
            took = int(1000 * (time.perf_counter() - started))
            return SmtpResult(ok, code, redact(error)[:500] if error else None, took, permanent)

        try:
            message = build_message(email, config.from_address)
        except (ValueError, MessageError) as exc:
            # The shopper's address passed the event's pattern yet is no RFC 5322 address
            # (a comma, a quote): no retry can fix it. The error names the class only, as
            # its text quotes the address.
            return result(False, None, f"invalid address ({type(exc).__name__})", True)
        try:
            await aiosmtplib.send(
                message,
                hostname=config.host,
                port=config.port,
                username=config.username or None,
                password=config.password if config.username else None,
                use_tls=config.tls == "tls",
                start_tls=config.tls == "starttls",
                timeout=config.timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            code = codes[0] if codes else None
            return result(False, code, f"recipient refused ({code})", _permanent(code))
        except aiosmtplib.SMTPDataError as exc:
            return result(False, exc.code, f"message refused ({exc.code})", _permanent(exc.code))
        except aiosmtplib.SMTPResponseException as exc:
            # Sender refused, authentication failed and the like: the deployment's settings
            # are wrong, which an operator can fix while the retries go on.
            return result(False, exc.code, f"{type(exc).__name__} ({exc.code}): {exc.message}")
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return result(False, None, f"{type(exc).__name__}: {exc}")
        return result(True, 250, None)


def _permanent(code: int | None) -> bool:
    return code is not None and 500 <= code < 600
