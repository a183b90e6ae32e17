"""BIN table rows and scheme detection from number ranges (domain.bins)."""

from __future__ import annotations

import pytest

from intake.adapters.bins import SEED_FILE, read_bin_file
from intake.domain.bins import (
    BadBinRow,
    BinRecord,
    CardType,
    describe_bin,
    lookup_prefixes,
    parse_bin_row,
    scheme_for,
)


@pytest.mark.parametrize(
    ("digits", "scheme"),
    [
        ("4111111111111111", "visa"),
        ("400000", "visa"),
        ("510000", "mastercard"),
        ("559999", "mastercard"),
        ("222100", "mastercard"),  # 2-series starts at 2221
        ("272099", "mastercard"),  # and ends at 2720
        ("222099", "unknown"),
        ("272100", "unknown"),
        ("340000", "amex"),
        ("378282", "amex"),
        ("979200", "troy"),
        ("97920300", "troy"),
        ("979300", "unknown"),
        ("601100", "discover"),
        ("644000", "discover"),
        ("650000", "discover"),
        ("352800", "jcb"),
        ("358999", "jcb"),
        ("620000", "unionpay"),
        ("810000", "unionpay"),
        ("501800", "maestro"),
        ("676770", "maestro"),
        ("300000", "diners"),
        ("360000", "diners"),
        ("220000", "mir"),
        ("100000", "unknown"),
    ],
)
def test_scheme_from_number_ranges(digits: str, scheme: str) -> None:
    assert scheme_for(digits) == scheme


def test_scheme_refuses_non_digits() -> None:
    with pytest.raises(ValueError, match="digits"):
        scheme_for("4111-1111")


def test_eight_digit_rows_win_over_six() -> None:
    assert lookup_prefixes("45260310") == ["45260310", "452603"]
    assert lookup_prefixes("452603") == ["452603"]


def test_unknown_bin_gets_its_scheme_and_an_unknown_type() -> None:
    info = describe_bin("97929999", None)
    assert (info.scheme, info.card_type, info.known, info.issuer) == (
        "troy",
        CardType.UNKNOWN,
        False,
        None,
    )


def test_known_bin_carries_issuer_programme_and_its_limit() -> None:
    record = BinRecord("45260310", "visa", CardType.CREDIT, "Garanti BBVA", "Bonus", "TR", 12)
    info = describe_bin("45260310", record)
    assert (info.issuer, info.programme, info.country, info.programme_max_installments) == (
        "Garanti BBVA",
        "Bonus",
        "TR",
        12,
    )
    assert info.known


def test_seed_file_loads_and_agrees_with_the_ranges() -> None:
    records = read_bin_file(SEED_FILE)
    assert len(records) >= 20
    assert len({r.prefix for r in records}) == len(records)
    for record in records:
        assert scheme_for(record.prefix) == record.scheme, record.prefix
    kinds = {r.card_type for r in records}
    assert kinds == {CardType.CREDIT, CardType.DEBIT, CardType.PREPAID}
    programmes = {r.programme for r in records}
    assert {"Bonus", "World", "Maximum", "Axess", "CardFinans", "Paraf"} <= programmes


def test_seed_keeps_the_repository_test_cards_payable_in_installments() -> None:
    by_prefix = {r.prefix: r for r in read_bin_file(SEED_FILE)}
    for number in ("4111111111111111", "5555555555554444", "4242424242424242"):
        record = by_prefix[number[:8]]
        assert record.card_type == CardType.CREDIT
        assert record.max_installments is None


GOOD = {
    "prefix": "45260310",
    "scheme": "visa",
    "card_type": "credit",
    "issuer": "Garanti BBVA",
    "programme": "Bonus",
    "country": "tr",
    "max_installments": "9",
}


def test_a_good_row_is_normalised() -> None:
    record = parse_bin_row(GOOD, 2)
    assert (record.country, record.max_installments, record.card_type) == ("TR", 9, CardType.CREDIT)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("prefix", "4526031"),
        ("prefix", "45260310x"),
        ("scheme", "visaa"),
        ("card_type", "charge"),
        ("country", "TUR"),
        ("max_installments", "13"),
        ("max_installments", "0"),
    ],
)
def test_a_bad_row_names_its_line_and_field(field: str, value: str) -> None:
    with pytest.raises(BadBinRow, match=rf"line 7: {field}"):
        parse_bin_row({**GOOD, field: value}, 7)
