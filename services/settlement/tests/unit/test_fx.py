from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from settlement.domain.fx import (
    RateFileError,
    RateSource,
    convert,
    inverse,
    markup,
    parse_ecb,
    parse_tcmb,
    pick_rate,
    rate_id,
    stored,
)

SAMPLES = Path(__file__).resolve().parents[2] / "src" / "settlement" / "rate_samples"


def test_tcmb_sample_gives_currency_per_try_per_unit() -> None:
    quotes = {q.base: q for q in parse_tcmb((SAMPLES / "today.xml").read_bytes())}
    assert quotes["EUR"].quote == "TRY"
    assert quotes["EUR"].rate == Decimal("47.8912")
    assert quotes["EUR"].source is RateSource.TCMB
    # JPY is quoted per 100 yen: one yen buys 0.264315 lira
    assert quotes["JPY"].rate == Decimal("0.264315")
    # 15:30 Istanbul (UTC+3) on 2 December 2026
    assert quotes["USD"].as_of == datetime(2026, 12, 2, 12, 30, tzinfo=UTC)
    assert "XDR" not in quotes  # not a payable currency


def test_tcmb_currency_without_forex_buying_is_skipped() -> None:
    raw = (
        b'<Tarih_Date Tarih="01.12.2026" Date="12/01/2026"><Currency CurrencyCode="USD">'
        b"<Unit>1</Unit><ForexBuying></ForexBuying></Currency><Currency CurrencyCode='EUR'>"
        b"<Unit>1</Unit><ForexBuying>40.5</ForexBuying></Currency></Tarih_Date>"
    )
    assert [(q.base, q.rate) for q in parse_tcmb(raw)] == [("EUR", Decimal("40.5"))]


def test_ecb_sample_gives_euro_rates() -> None:
    quotes = {q.quote: q for q in parse_ecb((SAMPLES / "eurofxref-daily.xml").read_bytes())}
    assert quotes["TRY"].base == "EUR"
    assert quotes["TRY"].rate == Decimal("47.9120")
    assert quotes["JPY"].rate == Decimal("181.19")
    assert quotes["USD"].as_of == datetime(2026, 12, 2, 15, 0, tzinfo=UTC)  # 16:00 CET


@pytest.mark.parametrize(
    "raw",
    [b"not xml", b"<root/>", b'<Tarih_Date Date="12/01/2026"></Tarih_Date>'],
)
def test_tcmb_rejects_what_is_not_a_rate_file(raw: bytes) -> None:
    with pytest.raises(RateFileError):
        parse_tcmb(raw)


def test_ecb_rejects_a_file_without_rates() -> None:
    with pytest.raises(RateFileError):
        parse_ecb(b"<Envelope><Cube/></Envelope>")


def test_entity_expansion_is_refused() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><Tarih_Date Date="12/01/2026">&b;</Tarih_Date>'
    )
    with pytest.raises(RateFileError):
        parse_tcmb(bomb)


@pytest.mark.parametrize(
    ("amount", "source", "target", "rate", "expected"),
    [
        (10_000, "EUR", "TRY", Decimal("36.5012"), 365_012),  # 100.00 EUR -> 3650.12 TRY
        (1, "EUR", "TRY", Decimal("0.005"), 0),  # 0.01 * 0.005 = 0.00005 TRY: rounds to 0
        (100, "EUR", "TRY", Decimal("0.005"), 1),  # exactly half a kuruş rounds up
        (1_000, "JPY", "TRY", Decimal("0.2345"), 23_450),  # exponent 0 -> 2
        (12_345, "TRY", "JPY", Decimal("3.7"), 457),  # 123.45 * 3.7 = 456.765 yen -> 457
        (1_000, "KWD", "TRY", Decimal("134.2219"), 13_422),  # 1.000 KWD, exponent 3 -> 2
        (999, "TRY", "KWD", Decimal("0.0074502"), 74),  # 9.99 * 0.0074502 = 0.07443 KWD
    ],
)
def test_convert_rounds_half_up_once_in_target_minor_units(
    amount: int, source: str, target: str, rate: Decimal, expected: int
) -> None:
    assert convert(amount, source, target, rate) == expected


def test_convert_refuses_a_non_positive_rate() -> None:
    with pytest.raises(ValueError, match="positive"):
        convert(100, "EUR", "TRY", Decimal(0))


def test_inverse_has_ten_places() -> None:
    assert inverse(Decimal("47.8912")) == Decimal("0.0208806628")
    assert inverse(Decimal(4)) == Decimal("0.25")


def test_markup_is_basis_points_of_the_converted_amount() -> None:
    assert markup(365_012, 150) == 5_475  # 1.5 % of 3650.12 = 54.7518 -> 54.75
    assert markup(365_012, 0) == 0
    with pytest.raises(ValueError):
        markup(100, 1001)


def _rate(base: str, quote: str, value: str, as_of: datetime, hours: int = 24) -> object:
    from settlement.domain.fx import Quote

    q = Quote(base, quote, Decimal(value), RateSource.MANUAL, as_of)
    return stored(q, timedelta(hours=hours), uuid.uuid4())


def test_pick_rate_takes_the_newest_fresh_rate_and_never_a_stale_one() -> None:
    t0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    old = _rate("EUR", "TRY", "36", t0 - timedelta(hours=30))
    new = _rate("EUR", "TRY", "37", t0 - timedelta(hours=1))
    future = _rate("EUR", "TRY", "38", t0 + timedelta(hours=1))
    picked = pick_rate([old, new, future], "EUR", "TRY", t0)  # type: ignore[list-item]
    assert picked is not None and picked.rate_value == Decimal(37)
    assert pick_rate([old], "EUR", "TRY", t0) is None  # type: ignore[list-item]
    assert pick_rate([new], "USD", "TRY", t0) is None  # type: ignore[list-item]


def test_pick_rate_inverts_the_opposite_pair() -> None:
    t0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    eur_try = _rate("EUR", "TRY", "40", t0 - timedelta(hours=1))
    picked = pick_rate([eur_try], "TRY", "EUR", t0)  # type: ignore[list-item]
    assert picked is not None and picked.rate_value == Decimal("0.025")


def test_rate_id_is_stable_for_the_same_published_rate() -> None:
    quotes = parse_tcmb((SAMPLES / "today.xml").read_bytes())
    again = parse_tcmb((SAMPLES / "today.xml").read_bytes())
    assert [rate_id(q) for q in quotes] == [rate_id(q) for q in again]
    assert len({rate_id(q) for q in quotes}) == len(quotes)
