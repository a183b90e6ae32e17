"""Card BINs (the first 6 or 8 digits): which scheme a number belongs to, what the BIN table
says about its card, and how many installments that card may be paid in. Pure: no I/O."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

BIN_PATTERN: Final = r"^[0-9]{6}([0-9]{2})?$"
_BIN = re.compile(BIN_PATTERN)


class CardType(StrEnum):
    CREDIT = "credit"
    DEBIT = "debit"
    PREPAID = "prepaid"
    UNKNOWN = "unknown"


SCHEME_NAMES: Final[dict[str, str]] = {
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
    "unknown": "Unknown",
}

# (first, last, scheme) over the leading digits of the number, both ends inclusive, compared on
# len(first) digits. Checked in order: narrower ranges come before the wide ones they sit in.
_RANGES: Final[tuple[tuple[str, str, str], ...]] = (
    ("9792", "9792", "troy"),
    ("34", "34", "amex"),
    ("37", "37", "amex"),
    ("3528", "3589", "jcb"),
    ("300", "305", "diners"),
    ("3095", "3095", "diners"),
    ("36", "36", "diners"),
    ("38", "39", "diners"),
    ("2200", "2204", "mir"),
    ("2221", "2720", "mastercard"),
    ("51", "55", "mastercard"),
    ("4", "4", "visa"),
    ("6011", "6011", "discover"),
    ("644", "649", "discover"),
    ("65", "65", "discover"),
    ("62", "62", "unionpay"),
    ("81", "81", "unionpay"),
    ("50", "50", "maestro"),
    ("56", "58", "maestro"),
    ("6", "6", "maestro"),
)


def scheme_for(digits: str) -> str:
    """The card scheme from the number's leading digits (a BIN or a whole number)."""
    if not digits.isdigit():
        raise ValueError("digits expected")
    for first, last, scheme in _RANGES:
        head = digits[: len(first)]
        if len(head) == len(first) and first <= head <= last:
            return scheme
    return "unknown"


def is_bin(text: str) -> bool:
    return _BIN.match(text) is not None


def lookup_prefixes(bin_digits: str) -> list[str]:
    """The BIN-table keys a card's BIN may match, longest (most specific) first."""
    return [bin_digits[:8], bin_digits[:6]] if len(bin_digits) >= 8 else [bin_digits[:6]]


@dataclass(frozen=True)
class BinRecord:
    """One row of the BIN table."""

    prefix: str
    scheme: str
    card_type: CardType
    issuer: str | None = None
    programme: str | None = None
    country: str | None = None
    max_installments: int | None = None
    """The card programme's own ceiling, when it has one."""


@dataclass(frozen=True)
class BinInfo:
    """What is known about a BIN: the table's row when there is one, else the scheme alone."""

    bin: str
    scheme: str
    card_type: CardType
    issuer: str | None
    programme: str | None
    country: str | None
    programme_max_installments: int | None
    known: bool


def describe_bin(bin_digits: str, record: BinRecord | None) -> BinInfo:
    if record is None:
        return BinInfo(
            bin_digits, scheme_for(bin_digits), CardType.UNKNOWN, None, None, None, None, False
        )
    return BinInfo(
        bin_digits,
        record.scheme,
        record.card_type,
        record.issuer,
        record.programme,
        record.country,
        record.max_installments,
        True,
    )


CSV_COLUMNS: Final = (
    "prefix",
    "scheme",
    "card_type",
    "issuer",
    "programme",
    "country",
    "max_installments",
)


class BadBinRow(ValueError):
    """A BIN file row that cannot be loaded; the message names the line and the field."""


def parse_bin_row(row: dict[str, str], line: int) -> BinRecord:
    def fail(field: str, why: str) -> BadBinRow:
        return BadBinRow(f"line {line}: {field}: {why}")

    prefix = (row.get("prefix") or "").strip()
    if not is_bin(prefix):
        raise fail("prefix", "6 or 8 digits expected")
    scheme = (row.get("scheme") or "").strip().lower()
    if scheme not in SCHEME_NAMES or scheme == "unknown":
        raise fail("scheme", f"one of {', '.join(s for s in SCHEME_NAMES if s != 'unknown')}")
    kind = (row.get("card_type") or "").strip().lower()
    if kind not in {CardType.CREDIT, CardType.DEBIT, CardType.PREPAID}:
        raise fail("card_type", "credit, debit or prepaid")
    country = (row.get("country") or "").strip().upper() or None
    if country is not None and not re.fullmatch(r"[A-Z]{2}", country):
        raise fail("country", "ISO 3166 alpha-2 code expected")
    limit_text = (row.get("max_installments") or "").strip()
    limit = None
    if limit_text:
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= 12:
            raise fail("max_installments", "1 to 12, or empty")
        limit = int(limit_text)
    return BinRecord(
        prefix=prefix,
        scheme=scheme,
        card_type=CardType(kind),
        issuer=(row.get("issuer") or "").strip() or None,
        programme=(row.get("programme") or "").strip() or None,
        country=country,
        max_installments=limit,
    )


def parse_bin_rows(rows: Iterable[dict[str, str]]) -> Iterator[BinRecord]:
    """Rows of a csv.DictReader; lines count from 2 (line 1 is the header)."""
    for line, row in enumerate(rows, start=2):
        yield parse_bin_row(row, line)


# --- installments --------------------------------------------------------------------------


@dataclass(frozen=True)
class InstallmentLimits:
    """Everything that caps the installment count of one payment."""

    card_type: CardType
    merchant_max: int
    fee_plan_max: int
    programme_max: int | None = None
    programme: str | None = None


def max_installments(limits: InstallmentLimits) -> int:
    # Installments are a credit product: debit and prepaid cards pay in one go. A card the BIN
    # table does not know is not refused here; its issuer still decides at authorization.
    if limits.card_type in {CardType.DEBIT, CardType.PREPAID}:
        return 1
    caps = [limits.merchant_max, limits.fee_plan_max]
    if limits.programme_max is not None:
        caps.append(limits.programme_max)
    return max(1, min(caps))


def refusal(limits: InstallmentLimits, requested: int) -> str | None:
    """Why `requested` installments are not allowed, or None when they are."""
    if requested <= 1:
        return None
    if limits.card_type in {CardType.DEBIT, CardType.PREPAID}:
        return f"{limits.card_type} cards pay in a single installment (installments=1)"
    if requested > limits.merchant_max:
        return f"this merchant allows at most {limits.merchant_max} installments"
    if requested > limits.fee_plan_max:
        return f"the merchant's fee plan allows at most {limits.fee_plan_max} installments"
    if limits.programme_max is not None and requested > limits.programme_max:
        name = limits.programme or "this card's programme"
        return f"{name} allows at most {limits.programme_max} installments"
    return None
