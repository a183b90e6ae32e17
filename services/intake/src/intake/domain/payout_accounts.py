"""Payout bank accounts: IBAN validation and the currencies each country's IBAN may receive.
Pure (schwifty holds the IBAN registry as data).

Supported combinations (anything else is refused, naming the `iban` field):
- TRY: Turkish IBANs only (domestic EFT/FAST).
- EUR: IBANs of the SEPA zone, and Turkish IBANs (Turkish banks keep EUR accounts).
- USD: Turkish IBANs only (FX accounts at Turkish banks; no SWIFT payouts abroad).
- GBP: British and Turkish IBANs.
Other currencies are not paid out at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from schwifty import IBAN
from schwifty.exceptions import SchwiftyException

PAYOUT_CURRENCIES = ("EUR", "GBP", "TRY", "USD")


class InvalidPayoutAccount(ValueError):
    def __init__(self, field: str, message: str, code: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.code = code


@dataclass(frozen=True)
class ValidIban:
    compact: str
    country: str
    in_sepa_zone: bool


def parse_iban(text: str) -> ValidIban:
    """The IBAN in compact form; refused when its checksum, length or bank code is wrong."""
    try:
        iban = IBAN(text)
    except SchwiftyException as exc:
        raise InvalidPayoutAccount("iban", f"not a valid IBAN: {exc}", "invalid_iban") from None
    return ValidIban(iban.compact, iban.country_code, bool(iban.in_sepa_zone))


def accepts(iban: ValidIban, currency: str) -> bool:
    if currency == "TRY":
        return iban.country == "TR"
    if currency == "EUR":
        return iban.in_sepa_zone or iban.country == "TR"
    if currency == "USD":
        return iban.country == "TR"
    if currency == "GBP":
        return iban.country in {"GB", "TR"}
    return False


def validated_account(iban_text: str, currency: str) -> ValidIban:
    if currency not in PAYOUT_CURRENCIES:
        raise InvalidPayoutAccount(
            "currency",
            f"payouts are made in {', '.join(PAYOUT_CURRENCIES)} only",
            "unsupported_currency",
        )
    iban = parse_iban(iban_text)
    if not accepts(iban, currency):
        raise InvalidPayoutAccount(
            "iban",
            f"an IBAN of country {iban.country} cannot receive {currency} payouts",
            "unsupported_country_currency",
        )
    return iban


def mask_iban(iban: str) -> str:
    """For logs: every character but the last four hidden."""
    compact = iban.replace(" ", "")
    return "*" * max(0, len(compact) - 4) + compact[-4:]
