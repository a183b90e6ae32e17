"""Rules of a merchant record: what each editable field may hold. Pure."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import time
from functools import cache
from typing import Any, Final
from zoneinfo import available_timezones

from intake.domain.checkout import LOCALES, check_frame_ancestors
from sanalpos_common.fees import FEE_PLANS
from sanalpos_common.money import payable_currencies

MERCHANT_ID_PATTERN: Final = r"^mer_[A-Za-z0-9_]{3,40}$"
CUTOFF_PATTERN: Final = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
MAX_PAYOUT_DELAY_DAYS: Final = 30
PAYOUT_PLANS: Final = ("batch", "per_installment")
EDITABLE: Final = frozenset(
    {
        "name",
        "settlement_currency",
        "time_zone",
        "cutoff_time",
        "fee_plan",
        "max_installments",
        "payout_delay_days",
        "payout_plan",  # installment payouts (issue 13)
        # 3-D Secure
        "always_three_d_secure",
    }
    # --- hosted payment page (issue 11) ---
    | {"checkout_locale", "checkout_frame_ancestors"}
    # --- multi-currency (issue 13, fx) ---
    | {"currency_settlement", "fx_markup_bps", "fx_no_rate"}
)
CURRENCY_SETTLEMENT_CHOICES: Final = ("convert", "in_currency")
FX_NO_RATE_CHOICES: Final = ("in_currency", "refuse")
MAX_FX_MARKUP_BPS: Final = 1000


class InvalidMerchantField(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


@cache
def _currencies() -> frozenset[str]:
    return frozenset(payable_currencies())


def parse_cutoff(text: str) -> time:
    if not re.match(CUTOFF_PATTERN, text):
        raise InvalidMerchantField("cutoff_time", "HH:MM, 24-hour local time")
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def check_field(field: str, value: Any) -> Any:
    """The value as stored, or InvalidMerchantField naming the field."""
    if field not in EDITABLE:
        raise InvalidMerchantField(field, "not an editable merchant field")
    if field == "name":
        if not isinstance(value, str) or not 1 <= len(value.strip()) <= 200:
            raise InvalidMerchantField(field, "1 to 200 characters")
        return value.strip()
    if field == "settlement_currency":
        if value not in _currencies():
            raise InvalidMerchantField(field, "a supported ISO 4217 currency code")
        return value
    if field == "time_zone":
        if value not in _zones():
            raise InvalidMerchantField(field, "an IANA time zone such as Europe/Istanbul")
        return value
    if field == "cutoff_time":
        return value if isinstance(value, time) else parse_cutoff(str(value))
    if field == "fee_plan":
        if value not in FEE_PLANS:
            raise InvalidMerchantField(field, f"one of {', '.join(sorted(FEE_PLANS))}")
        return value
    if field == "payout_delay_days":
        return _integer(field, value, 0, MAX_PAYOUT_DELAY_DAYS)
    if field == "payout_plan":
        if value not in PAYOUT_PLANS:
            raise InvalidMerchantField(field, "batch or per_installment")
        return value
    if field == "always_three_d_secure":
        if not isinstance(value, bool):
            raise InvalidMerchantField(field, "true or false")
        return value
    # --- hosted payment page (issue 11) ---
    if field == "checkout_locale":
        if value not in LOCALES:
            raise InvalidMerchantField(field, "tr or en")
        return value
    if field == "checkout_frame_ancestors":
        try:
            if not isinstance(value, list):
                raise ValueError("a list of origins")
            return check_frame_ancestors(value)
        except ValueError as exc:
            raise InvalidMerchantField(field, str(exc)) from None
    # --- multi-currency (issue 13, fx) ---
    if field == "currency_settlement":
        return _currency_settlement(value)
    if field == "fx_markup_bps":
        return _integer(field, value, 0, MAX_FX_MARKUP_BPS)
    if field == "fx_no_rate":
        if value not in FX_NO_RATE_CHOICES:
            raise InvalidMerchantField(field, "in_currency or refuse")
        return value
    return _integer(field, value, 1, 12)


def _currency_settlement(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise InvalidMerchantField("currency_settlement", "an object of currency: choice")
    for currency, choice in value.items():
        where = f"currency_settlement.{currency}"
        if currency not in _currencies():
            raise InvalidMerchantField(where, "a supported ISO 4217 currency code")
        if choice not in CURRENCY_SETTLEMENT_CHOICES:
            raise InvalidMerchantField(where, "convert or in_currency")
    return dict(sorted(value.items()))


def _integer(field: str, value: Any, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidMerchantField(field, f"{low} to {high}")
    return value


def check_fields(values: dict[str, Any]) -> dict[str, Any]:
    return {field: check_field(field, value) for field, value in values.items()}


def check_merchant_id(merchant_id: str) -> str:
    if not re.match(MERCHANT_ID_PATTERN, merchant_id):
        raise InvalidMerchantField("id", "mer_ followed by 3 to 40 letters, digits or _")
    return merchant_id


_CARD_SHAPED_RUN = re.compile(r"\d{13}")


def new_merchant_id(draw_hex: Callable[[int], str] = secrets.token_hex) -> str:
    """A random merchant id without a run of 13 or more digits: such a run (about 1 id in
    200) is card-shaped, and one in ten of those passes Luhn, so data-loss scanners would
    flag it (the canary scan found `mer_4c1216380949835d`)."""
    while True:
        suffix = draw_hex(8)
        if not _CARD_SHAPED_RUN.search(suffix):
            return f"mer_{suffix}"
