"""Foreign exchange: rates, their sources' file formats, and converting minor units. Pure.

A rate says how many units of `quote` one unit of `base` buys (major units, e.g. EUR/TRY
36.5012). Rates stay `Decimal` from the file to the database (NUMERIC) and amounts stay
integers: a float never holds either. See docs/fx.md for the rounding and staleness rules.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from fractions import Fraction
from zoneinfo import ZoneInfo

from defusedxml import ElementTree as SafeET

from sanalpos_common.money import UnknownCurrencyError, apply_rate_bps, currency_exponent

RATE_PLACES = 10
"""Decimal places a rate is stored with (an inverse rate is rounded to them)."""
MAX_MARKUP_BPS = 1000
TCMB_ZONE = ZoneInfo("Europe/Istanbul")
TCMB_PUBLISHED_AT = time(15, 30)
"""TCMB announces the day's indicative rates at 15:30 Istanbul time."""
ECB_ZONE = ZoneInfo("Europe/Berlin")
ECB_PUBLISHED_AT = time(16, 0)
"""The ECB publishes its euro reference rates around 16:00 CET."""
ECB_NS = "{http://www.ecb.int/vocabulary/2002-08-01/eurofxref}"


class RateSource(StrEnum):
    TCMB = "tcmb"
    ECB = "ecb"
    MANUAL = "manual"


class RateFileError(ValueError):
    """The file is not a rate file of that source (or holds no usable rate)."""


@dataclass(frozen=True)
class Quote:
    """One rate as a source states it, before it is stored."""

    base: str
    quote: str
    rate: Decimal
    source: RateSource
    as_of: datetime
    """When the source published it (aware)."""


@dataclass(frozen=True)
class Rate:
    """A stored rate: what a converted payment is fixed to."""

    id: uuid.UUID
    base: str
    quote: str
    rate: Decimal
    source: RateSource
    as_of: datetime
    valid_until: datetime
    """A rate is fresh until then (as_of + the service's maximum age)."""

    def fresh_at(self, at: datetime) -> bool:
        return self.as_of <= at < self.valid_until


def check_rate(value: Decimal) -> Decimal:
    if not value.is_finite() or value <= 0:
        raise ValueError("a rate is a positive decimal")
    return value


def inverse(rate: Decimal) -> Decimal:
    """1 / rate to RATE_PLACES places, half up: quote -> base from a base -> quote rate."""
    exact = Fraction(1) / Fraction(rate)
    return Decimal(_round_half_up(exact * 10**RATE_PLACES)).scaleb(-RATE_PLACES)


def _round_half_up(value: Fraction) -> int:
    """Nearest integer, halves away from zero (amounts converted here are positive)."""
    sign = -1 if value < 0 else 1
    magnitude = abs(value)
    whole, remainder = divmod(magnitude.numerator, magnitude.denominator)
    return sign * (whole + (1 if 2 * remainder >= magnitude.denominator else 0))


def convert(amount: int, from_currency: str, to_currency: str, rate: Decimal) -> int:
    """Minor units of `from_currency` into minor units of `to_currency` at `rate` (major
    units of to per major unit of from): exact rational arithmetic, then one rounding, half
    up, to the target's minor unit (each currency's own ISO 4217 exponent: JPY 0, TRY 2,
    KWD 3). 100.00 EUR at 36.5012 -> 3650.12 TRY; 1000 JPY at 0.2345 -> 234.50 TRY."""
    check_rate(rate)
    shift = currency_exponent(to_currency) - currency_exponent(from_currency)
    return _round_half_up(Fraction(amount) * Fraction(rate) * Fraction(10) ** shift)


def markup(converted: int, markup_bps: int) -> int:
    """The merchant's FX markup on a converted amount, in the target's minor units (half up)."""
    if not 0 <= markup_bps <= MAX_MARKUP_BPS:
        raise ValueError(f"markup 0 to {MAX_MARKUP_BPS} basis points")
    return min(apply_rate_bps(converted, markup_bps), converted)


def _decimal(text: str | None) -> Decimal | None:
    if text is None or not text.strip():
        return None
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() and value > 0 else None


def _payable(code: str | None) -> str | None:
    if code is None:
        return None
    code = code.strip().upper()
    try:
        currency_exponent(code)
    except UnknownCurrencyError:
        return None  # e.g. TCMB's XDR (special drawing rights): not a payable currency
    return code


def _parse(raw: bytes, what: str) -> object:
    try:
        return SafeET.fromstring(raw)
    except SafeET.ParseError as exc:
        raise RateFileError(f"{what}: not well-formed XML ({exc})") from None
    except ValueError as exc:  # defusedxml refuses DTDs, entities and external references
        raise RateFileError(f"{what}: refused ({exc})") from None


def parse_tcmb(raw: bytes) -> list[Quote]:
    """TCMB's daily `today.xml` (and its archive files, same format): `<Tarih_Date Tarih=
    "03.12.2026" Date="12/03/2026">` holding `<Currency CurrencyCode="USD"><Unit>1</Unit>
    <ForexBuying>..</ForexBuying><ForexSelling>..</ForexSelling>...`. Each currency gives
    CUR/TRY = ForexBuying / Unit (the bank buys the foreign currency the shopper paid in; JPY
    is quoted per 100). Currencies without a forex buying rate, or not payable, are skipped."""
    root = _parse(raw, "TCMB file")
    if getattr(root, "tag", None) != "Tarih_Date":
        raise RateFileError("TCMB file: the root element is not Tarih_Date")
    day = _tcmb_date(root.get("Date"), root.get("Tarih"))  # type: ignore[attr-defined]
    as_of = datetime.combine(day, TCMB_PUBLISHED_AT, tzinfo=TCMB_ZONE).astimezone(UTC)
    quotes = []
    for node in root.iter("Currency"):  # type: ignore[attr-defined]
        code = _payable(node.get("CurrencyCode") or node.get("Kod"))
        buying = _decimal(node.findtext("ForexBuying"))
        unit = _decimal(node.findtext("Unit")) or Decimal(1)
        if code is None or code == "TRY" or buying is None:
            continue
        exact = Fraction(buying) / Fraction(unit)
        rate = Decimal(_round_half_up(exact * 10**RATE_PLACES)).scaleb(-RATE_PLACES).normalize()
        quotes.append(Quote(code, "TRY", rate, RateSource.TCMB, as_of))
    if not quotes:
        raise RateFileError("TCMB file: no currency with a ForexBuying rate")
    return quotes


def _tcmb_date(us: str | None, turkish: str | None) -> date:
    try:
        if us:
            return datetime.strptime(us, "%m/%d/%Y").date()
        if turkish:
            return datetime.strptime(turkish, "%d.%m.%Y").date()
    except ValueError:
        pass
    raise RateFileError("TCMB file: Tarih_Date has no readable Date or Tarih")


def parse_ecb(raw: bytes) -> list[Quote]:
    """The ECB's `eurofxref-daily.xml`: `<Cube time="2026-12-02"><Cube currency="USD"
    rate="1.0512"/>...` inside a gesmes envelope. Each gives EUR/CUR = rate."""
    root = _parse(raw, "ECB file")
    day_cubes = [
        c
        for c in root.iter(f"{ECB_NS}Cube")  # type: ignore[attr-defined]
        if c.get("time") is not None
    ]
    if not day_cubes:
        raise RateFileError("ECB file: no <Cube time=...> element")
    quotes = []
    for day_cube in day_cubes:
        try:
            day = date.fromisoformat(day_cube.get("time"))
        except ValueError:
            raise RateFileError(f"ECB file: bad time {day_cube.get('time')!r}") from None
        as_of = datetime.combine(day, ECB_PUBLISHED_AT, tzinfo=ECB_ZONE).astimezone(UTC)
        for cube in day_cube.iter(f"{ECB_NS}Cube"):
            code, rate = _payable(cube.get("currency")), _decimal(cube.get("rate"))
            if code is not None and code != "EUR" and rate is not None:
                quotes.append(Quote("EUR", code, rate, RateSource.ECB, as_of))
    if not quotes:
        raise RateFileError("ECB file: no rate")
    return quotes


def parse_rate_file(source: RateSource, raw: bytes) -> list[Quote]:
    if source is RateSource.TCMB:
        return parse_tcmb(raw)
    if source is RateSource.ECB:
        return parse_ecb(raw)
    raise RateFileError(f"{source} rates are set through the admin API, not a file")


def rate_id(quote: Quote) -> uuid.UUID:
    """Deterministic: loading the same file twice stores each rate once."""
    key = f"{quote.source}|{quote.base}|{quote.quote}|{quote.as_of.isoformat()}|{quote.rate}"
    return uuid.uuid5(uuid.NAMESPACE_URL, f"sanalpos:fx:{key}")


def stored(quote: Quote, max_age: timedelta, id_: uuid.UUID | None = None) -> Rate:
    return Rate(
        id=id_ or rate_id(quote),
        base=quote.base,
        quote=quote.quote,
        rate=check_rate(quote.rate),
        source=quote.source,
        as_of=quote.as_of,
        valid_until=quote.as_of + max_age,
    )


@dataclass(frozen=True)
class Conversion:
    """A payment's conversion, fixed at its capture."""

    rate: Rate
    rate_value: Decimal
    """Units of the target per unit of the payment's currency (the rate or its inverse)."""
    from_currency: str
    to_currency: str


def pick_rate(
    rates: Iterable[Rate], from_currency: str, to_currency: str, at: datetime
) -> Conversion | None:
    """The newest rate fresh at `at` for from -> to, direct or inverted; a direct rate wins
    over an inverse of the same age. None when no fresh rate exists: never a stale one."""
    best: tuple[tuple[datetime, int], Conversion] | None = None
    for rate in rates:
        if not rate.fresh_at(at):
            continue
        if (rate.base, rate.quote) == (from_currency, to_currency):
            candidate = Conversion(rate, rate.rate, from_currency, to_currency)
            rank = (rate.as_of, 1)
        elif (rate.base, rate.quote) == (to_currency, from_currency):
            candidate = Conversion(rate, inverse(rate.rate), from_currency, to_currency)
            rank = (rate.as_of, 0)
        else:
            continue
        if best is None or rank > best[0]:
            best = (rank, candidate)
    return None if best is None else best[1]
