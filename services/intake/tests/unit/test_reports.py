"""Report arithmetic: rates, averages, periods, per-currency totals (no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from intake.domain.queries import ReportQuery
from intake.service_layer.reports import (
    average,
    groups,
    rate,
    resolve_period,
    totals_per_currency,
)

ISTANBUL = ZoneInfo("Europe/Istanbul")


@pytest.mark.parametrize(
    ("part", "whole", "expected"),
    [
        (1, 3, ("0.3333", 3333)),
        (2, 3, ("0.6667", 6667)),
        (1, 8, ("0.1250", 1250)),
        (1, 20000, ("0.0001", 1)),  # 0.5 bp rounds half up
        (0, 5, ("0.0000", 0)),
        (5, 5, ("1.0000", 10000)),
        (0, 0, (None, None)),
    ],
)
def test_rate_is_exact_and_rounds_half_up(
    part: int, whole: int, expected: tuple[str | None, int | None]
) -> None:
    assert rate(part, whole) == expected


def test_average_ticket_is_integer_minor_units() -> None:
    assert average(1000, 3) == 333
    assert average(1001, 2) == 501  # 500.5 rounds half up
    assert average(0, 0) is None


def test_dates_are_midnight_in_the_merchant_time_zone() -> None:
    start, end = resolve_period(date(2026, 11, 1), date(2026, 11, 2), ISTANBUL)
    assert start == datetime(2026, 10, 31, 21, 0, tzinfo=UTC)
    assert end == datetime(2026, 11, 1, 21, 0, tzinfo=UTC)


def test_instants_are_taken_as_given() -> None:
    given = datetime(2026, 11, 1, 12, 0, tzinfo=ZoneInfo("America/New_York"))
    start, _ = resolve_period(given, date(2026, 11, 3), ISTANBUL)
    assert start == given


def test_a_period_ending_before_it_starts_is_empty_not_an_error() -> None:
    start, end = resolve_period(date(2026, 11, 2), date(2026, 11, 1), ISTANBUL)
    assert end < start  # created_at >= start AND created_at < end matches nothing


def test_report_query_takes_dates_or_instants_with_offsets() -> None:
    query = ReportQuery.model_validate(
        {"from": "2026-11-01", "to": "2026-11-02T00:00:00Z", "group_by": "currency"}
    )
    assert query.from_ == date(2026, 11, 1)
    assert query.to == datetime(2026, 11, 2, tzinfo=UTC)
    with pytest.raises(ValidationError) as caught:
        ReportQuery.model_validate({"from": "2026-11-01T00:00:00", "to": "2026-11-02"})
    assert [e["loc"][0] for e in caught.value.errors()] == ["from"]
    with pytest.raises(ValidationError):
        ReportQuery.model_validate({"from": "2026-11-01", "to": "2026-11-02", "group_by": "week"})


def counts(key: str, currency: str, **values: int) -> dict[str, Any]:
    base = dict.fromkeys(
        (
            "payments",
            "volume",
            "approved_count",
            "approved_volume",
            "declined_count",
            "fraud_declined_count",
            "captured_volume",
            "refund_count",
            "refunded_amount",
            "settled_count",
            "fee_amount",
            "net_amount",
        ),
        0,
    )
    return {"key": key, "currency": currency, **base, **values}


ROWS = [
    counts("2026-11-01", "TRY", payments=4, volume=4000, approved_count=3, approved_volume=3000,
           declined_count=1, fraud_declined_count=1, fee_amount=90, net_amount=2910,
           settled_count=3),
    counts("2026-11-01", "USD", payments=1, volume=500, approved_count=1, approved_volume=500),
    counts("2026-11-02", "TRY", payments=3, volume=3000, approved_count=1, approved_volume=1000,
           declined_count=1, refund_count=1, refunded_amount=400),
]  # fmt: skip
REASONS = [
    {"key": "2026-11-01", "currency": "TRY", "reason": "fraud", "count": 1},
    {"key": "2026-11-02", "currency": "TRY", "reason": "insufficient funds", "count": 1},
]


def test_groups_carry_their_own_rates_and_reasons() -> None:
    first, usd, second = groups(ROWS, REASONS)
    assert first["key"] == "2026-11-01" and first["currency"] == "TRY"
    assert (first["approval_rate"], first["approval_rate_bps"]) == ("0.7500", 7500)
    assert (first["fraud_decline_rate"], first["fraud_decline_rate_bps"]) == ("0.2500", 2500)
    assert first["decline_reasons"] == [{"reason": "fraud", "count": 1}]
    assert first["average_ticket"] == 1000
    assert usd["decline_reasons"] == [] and usd["approval_rate"] == "1.0000"
    assert second["pending_count"] == 1


def test_totals_never_add_currencies_together() -> None:
    try_total, usd_total = totals_per_currency(ROWS, REASONS)
    assert try_total["currency"] == "TRY" and usd_total["currency"] == "USD"
    assert try_total["payments"] == 7 and try_total["volume"] == 7000
    assert try_total["approved_volume"] == 4000 and usd_total["approved_volume"] == 500
    assert (try_total["approval_rate"], try_total["approval_rate_bps"]) == ("0.6667", 6667)
    assert try_total["refunded_amount"] == 400 and try_total["refund_count"] == 1
    assert try_total["average_ticket"] == 1000
    assert try_total["decline_reasons"] == [
        {"reason": "fraud", "count": 1},
        {"reason": "insufficient funds", "count": 1},
    ]
