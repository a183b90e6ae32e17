"""Issuer decisions with ISO 8583-style response codes. Pure: no I/O."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class ResponseCode(StrEnum):
    APPROVED = "00"
    DO_NOT_HONOUR = "05"
    INVALID_CARD = "14"
    INSUFFICIENT_FUNDS = "51"
    EXPIRED_CARD = "54"
    SUSPECTED_FRAUD = "59"
    SECURITY_CODE_EXPIRED = "N7"
    """Our own decline, not the issuer's: the security code's key expired before
    authorization (PCI DSS 3.3.1), so the payment cannot be sent with the code it was made with."""
    AUTHENTICATION_FAILED = "N8"
    """Our own decline, not the issuer's: the payment needed 3-D Secure and did not pass it
    (failed, abandoned, or the ACS did not answer); the issuer is never asked."""

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]


_DESCRIPTIONS = {
    ResponseCode.APPROVED: "approved",
    ResponseCode.DO_NOT_HONOUR: "do not honour",
    ResponseCode.INVALID_CARD: "invalid card number",
    ResponseCode.INSUFFICIENT_FUNDS: "insufficient funds",
    ResponseCode.EXPIRED_CARD: "expired card",
    ResponseCode.SUSPECTED_FRAUD: "suspected fraud",
    ResponseCode.SECURITY_CODE_EXPIRED: "security code expired",
    ResponseCode.AUTHENTICATION_FAILED: "3-D Secure authentication failed",
}


class Behaviour(StrEnum):
    """How a simulated card account answers, beyond its limit."""

    APPROVE = "approve"
    EXPIRED = "expired"
    DO_NOT_HONOUR = "do_not_honour"


@dataclass(frozen=True)
class CardAccount:
    card_ref: str
    last4: str
    behaviour: Behaviour
    exp_month: int
    exp_year: int
    limit_major: int


def card_expired(exp_month: int, exp_year: int, today: date) -> bool:
    return (exp_year, exp_month) < (today.year, today.month)


def screen(account: CardAccount, exp_month: int, exp_year: int, today: date) -> ResponseCode | None:
    """Checks before funds: a code to decline with, or None to go on to the limit."""
    if account.behaviour is Behaviour.DO_NOT_HONOUR:
        return ResponseCode.DO_NOT_HONOUR
    if account.behaviour is Behaviour.EXPIRED or card_expired(
        account.exp_month, account.exp_year, today
    ):
        return ResponseCode.EXPIRED_CARD
    if card_expired(exp_month, exp_year, today):
        return ResponseCode.EXPIRED_CARD
    return None


def new_auth_code() -> str:
    alphabet = string.ascii_uppercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(6))


@dataclass(frozen=True)
class SimulatorCard:
    pan: str
    behaviour: Behaviour
    limit_major: int
    exp_month: int = 12
    exp_year: int = 2030
    note: str = ""


# Test ranges: any Luhn-valid number with one of these 8-digit prefixes behaves like the
# documented card, so tests and demos can use fresh numbers (fraud's per-card velocity never
# sees the same card twice).
TEST_RANGES: dict[str, tuple[Behaviour, int]] = {
    "40000099": (Behaviour.APPROVE, 10),  # insufficient funds (51) over 10.00
    "40000002": (Behaviour.DO_NOT_HONOUR, 1_000_000),  # do not honour (05)
    "40000069": (Behaviour.EXPIRED, 1_000_000),  # expired card (54)
}


def behaviour_for_new_card(pan: str, default_limit_major: int) -> tuple[Behaviour, int]:
    return TEST_RANGES.get(pan[:8], (Behaviour.APPROVE, default_limit_major))
