"""Search filters, cursors and the export's CSV rows (no database)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from intake.adapters.payment_search import PaymentFilters, where_clause
from intake.domain.queries import PaymentSearchQuery
from intake.service_layer.export import csv_row, major_units, masked_card, spreadsheet_safe
from intake.service_layer.search import (
    EARLIEST,
    LATEST,
    BadCursor,
    decode_cursor,
    encode_cursor,
    filters_from,
    utc_instant,
)


def test_where_clause_binds_every_value() -> None:
    created = datetime(2026, 11, 1, tzinfo=UTC)
    filters = PaymentFilters(
        statuses=("captured", "settled"),
        created_gte=created,
        amount_lte=5000,
        card_last4="4242",
    )
    after = (datetime(2026, 11, 2, tzinfo=UTC), uuid.uuid4())
    sql, args = where_clause("mer_a", filters, after)
    assert sql == (
        "p.merchant_id = $1 AND p.status = ANY($2::text[]) AND p.created_at >= $3 "
        "AND p.amount <= $4 AND p.card_last4 = $5 AND (p.created_at, p.id) < ($6, $7)"
    )
    assert args == ["mer_a", ["captured", "settled"], created, 5000, "4242", *after]


def test_no_filters_is_the_merchant_only() -> None:
    assert where_clause("mer_a", PaymentFilters()) == ("p.merchant_id = $1", ["mer_a"])


def test_cursor_round_trips() -> None:
    row = {"created_at": datetime(2026, 11, 27, 2, 30, 0, 123456, tzinfo=UTC), "id": uuid.uuid4()}
    assert decode_cursor(encode_cursor(row)) == (row["created_at"], row["id"])


@pytest.mark.parametrize("cursor", ["garbage!", "bm90LWEtY3Vyc29y", "MjAyNi0xMS0yN3x4"])
def test_foreign_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(BadCursor):
        decode_cursor(cursor)


def test_query_maps_to_filters() -> None:
    query = PaymentSearchQuery.model_validate(
        {"status": ["declined"], "currency": "TRY", "order_id": "o-1", "limit": 5}
    )
    assert filters_from(query) == PaymentFilters(
        statuses=("declined",), currency="TRY", order_id="o-1"
    )


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": ["lost"]}, "status"),
        ({"created_gte": "2026-11-01T00:00:00"}, "created_gte"),  # no offset
        ({"created_lt": "0.5"}, "created_lt"),  # not read as a Unix time
        ({"created_lt": 1700000000}, "created_lt"),
        ({"card_last4": "42a2"}, "card_last4"),
        ({"currency": "XYZ"}, "currency"),
        ({"limit": 101}, "limit"),
        ({"limit": 0}, "limit"),
        ({"stauts": "captured"}, "stauts"),  # a misspelt filter is refused, not ignored
    ],
)
def test_bad_filters_name_their_field(query: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        PaymentSearchQuery.model_validate(query)
    assert [e["loc"][0] for e in caught.value.errors()] == [field]


def test_masked_card_shows_bin_and_last4_only() -> None:
    assert masked_card("45436012", "4111") == "454360******4111"


@pytest.mark.parametrize(
    ("text", "safe"),
    [("=HYPERLINK(1)", "'=HYPERLINK(1)"), ("-2", "'-2"), ("order 7", "order 7"), (None, "")],
)
def test_spreadsheet_formulas_are_neutralised(text: str | None, safe: str) -> None:
    assert spreadsheet_safe(text) == safe


def test_major_units_follow_the_currency_exponent() -> None:
    assert major_units(12345, "TRY") == "123.45"
    assert major_units(500, "JPY") == "500"
    assert major_units(1234, "KWD") == "1.234"


def test_csv_row_carries_no_card_data_beyond_the_mask() -> None:
    row = {
        "id": uuid.uuid4(),
        "created_at": datetime(2026, 11, 27, tzinfo=UTC),
        "updated_at": datetime(2026, 11, 27, tzinfo=UTC),
        "status": "captured",
        "amount": 1999,
        "currency": "TRY",
        "capture": True,
        "installments": 3,
        "order_id": "o-9",
        "description": None,
        "card_brand": "visa",
        "card_bin": "411111",
        "card_last4": "1111",
        "response_code": "00",
        "auth_code": "A1B2C3",
        "decline_reason": None,
        "fee_amount": 40,
        "net_amount": 1959,
    }
    out = csv_row(row)
    assert "411111******1111" in out
    assert out[4:7] == [1999, "19.99", "TRY"]
    assert not any("4111111" in str(value) for value in out if value != "411111******1111")


def test_instants_at_the_edge_of_the_calendar_are_clamped_not_crashed() -> None:
    query = PaymentSearchQuery.model_validate(
        {"created_gte": "0001-01-01T00:00:00+03:00", "created_lt": "9999-12-31T23:00:00-05:00"}
    )
    filters = filters_from(query)
    assert (filters.created_gte, filters.created_lt) == (EARLIEST, LATEST)
    moment = datetime(2026, 11, 1, 3, 0, tzinfo=ZoneInfo("Europe/Istanbul"))
    assert utc_instant(moment) == datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
