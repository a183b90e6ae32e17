"""Card number helpers: Luhn, brand, fingerprint and masking. No PAN leaves here in clear."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator, Mapping

FINGERPRINT_PREFIX = "fp1_"
"""Prefix of fingerprints made with fingerprint key version 1 (all fingerprints before
versioning). In general the prefix is `fp<key version>_`: `fp2_...` for version 2, and so on.
The algorithm is fixed: HMAC-SHA256 over the ASCII PAN, lower-case hex."""
_FINGERPRINT = re.compile(r"^fp([1-9][0-9]*)_([0-9a-f]{64})$")


def luhn_valid(number: str) -> bool:
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return False
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def luhn_check_digit(partial: str) -> str:
    for digit in "0123456789":
        if luhn_valid(partial + digit):
            return digit
    raise ValueError("no check digit")  # unreachable for digit strings


def card_brand(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"34", "37"}:
        return "amex"
    two, four = int(number[:2]), int(number[:4])
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return "mastercard"
    if number.startswith("9792"):
        return "troy"
    return "unknown"


def fingerprint(key: bytes, number: str, *, version: int = 1) -> str:
    """Keyed HMAC-SHA256 of the PAN: stable per card, useless without the key.

    `version` is the fingerprint key's version and becomes the prefix (`fp1_` for version 1).
    """
    if version < 1:
        raise ValueError("fingerprint key versions start at 1")
    digest = hmac.new(key, number.encode(), hashlib.sha256).hexdigest()
    return f"fp{version}_{digest}"


def fingerprint_version(value: str) -> int:
    """Key version a fingerprint was made with."""
    match = _FINGERPRINT.match(value)
    if match is None:
        raise ValueError("not a fingerprint")
    return int(match.group(1))


def fingerprints(keys: Mapping[int, bytes], number: str) -> dict[int, str]:
    """The card's fingerprint under every given key version: during a fingerprint key rotation,
    match on all of them until the velocity windows made with the old version have aged out."""
    return {version: fingerprint(key, number, version=version) for version, key in keys.items()}


def bin_of(number: str) -> str:
    return number[:8] if len(number) >= 16 else number[:6]


def mask(number: str, *, first: int = 6) -> str:
    """First 6 (or 8) and last 4 only; at least 3 middle digits are always hidden.

    The first 8 are shown only for PANs of 16 digits or more (PCI DSS: BIN + last 4 at most;
    an 8-digit BIN only where the PAN has at least 16 digits). Numbers too short for that show
    fewer leading digits, never more.
    """
    if first not in (6, 8):
        raise ValueError("first must be 6 or 8")
    if len(number) < 16:
        first = 6
    last, min_hidden = 4, 3
    if len(number) < last + min_hidden:
        return "*" * len(number)
    shown_first = max(0, min(first, len(number) - last - min_hidden))
    hidden = len(number) - shown_first - last
    return number[:shown_first] + "*" * hidden + number[-last:]


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_SEPARATORS = frozenset(" -.")
_PAN_LENGTHS = range(13, 20)
_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)  # Luhn: 2*d, minus 9 when over 9


def _digit_runs(text: str) -> Iterator[list[int]]:
    """Maximal runs of digits, a single space, dash or dot allowed between two of them."""
    run: list[int] = []
    last = len(text) - 1
    for index, char in enumerate(text):
        if char.isdecimal():
            run.append(int(char))
        elif char in _SEPARATORS and run and index < last and text[index + 1].isdecimal():
            continue
        elif run:
            yield run
            run = []
    if run:
        yield run


def _has_luhn_window(digits: list[int]) -> bool:
    """Some 13-19 consecutive digits of the run, the first not 0, pass the Luhn check (no
    card number starts with 0, the ISO/IEC 7812 industry digit reserved for ISO/TC 68; and a
    run of zeros would otherwise pass). Linear: two prefix sums (every even-indexed digit
    doubled; every odd-indexed one) give each window's checksum in constant time, since Luhn
    doubles the digits whose parity differs from the last one's."""
    if len(digits) < _PAN_LENGTHS.start:
        return False
    even_doubled, odd_doubled = [0], [0]
    for index, digit in enumerate(digits):
        even, odd = (_DOUBLED[digit], digit) if index % 2 == 0 else (digit, _DOUBLED[digit])
        even_doubled.append(even_doubled[-1] + even)
        odd_doubled.append(odd_doubled[-1] + odd)
    for end in range(_PAN_LENGTHS.start - 1, len(digits)):
        sums = odd_doubled if end % 2 == 0 else even_doubled
        for length in _PAN_LENGTHS:
            start = end - length + 1
            if start < 0:
                break
            if digits[start] != 0 and (sums[end + 1] - sums[start]) % 10 == 0:
                return True
    return False


def holds_card_number(text: str) -> bool:
    """Free text that is stored, emitted or shown must not carry a card number: any 13-19
    consecutive digits passing the Luhn check (not starting with 0), also inside a longer run of digits and with
    single spaces, dashes or dots between them. UUIDs are not digit runs (their digit-only
    groups would otherwise look like one). Linear in the text's length, no regex backtracking.
    """
    return any(_has_luhn_window(run) for run in _digit_runs(_UUID.sub("-uuid-", text)))
