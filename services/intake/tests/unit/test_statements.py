"""The monthly statement from ledger days: opening from the last day before the month, lines
summed, closing = opening + lines = the last day's closing; a missing day shows; CSV and PDF
carry the same figures (the PDF read back with pypdf, its chart's bars checked)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pypdf import PdfReader

from intake.adapters.statement_pdf import chart_series, daily_chart
from intake.domain.statements import LINES, BadMonth, Month, build_statement
from intake.service_layer.statements import statement_csv, statement_json, statement_pdf
from sanalpos_common.money import format_money

NOV = Month(2026, 11)
SHOP_NAME = "\u00d6rnek Ma\u011fazac\u0131l\u0131k \u015e.A."  # dotless i: Turkish


def day(
    currency: str, on: date, opening: int, closing: int | None = None, **lines: int
) -> dict[str, Any]:
    figures = {name: lines.get(name, 0) for name in LINES}
    return {
        "currency": currency,
        "day": on,
        "opening_balance": opening,
        **figures,
        "closing_balance": opening + sum(figures.values()) if closing is None else closing,
        "capture_count": lines.get("sales", 0) and 1,
        "reversal_count": 0,
        "refund_count": 1 if lines.get("refunds") else 0,
        "payout_count": 1 if lines.get("payouts") else 0,
        "computed_at": datetime(2026, 12, 1, tzinfo=UTC),
    }


ROWS = [
    day("TRY", date(2026, 10, 30), 0, sales=50_000, fees=-1_000),  # closing 49_000
    day("TRY", date(2026, 11, 2), 49_000, sales=100_000, fees=-2_000),
    day("TRY", date(2026, 11, 3), 147_000, refunds=-5_000, payouts=-49_000),
    day("TRY", date(2026, 11, 30), 93_000, sales=12_345, fees=-247, fx=-100, disputes=-3_000),
    day("EUR", date(2026, 11, 15), 0, sales=2_000, fees=-40),
    day("TRY", date(2026, 12, 1), 101_998, sales=1),  # after the month: not in it
]


def loaded(rows: list[dict[str, Any]], month: Month = NOV) -> dict[str, Any]:
    return {
        "month": month,
        "merchant": ("mer_42", SHOP_NAME),
        "time_zone": "Europe/Istanbul",
        "statements": build_statement(month, rows),
        "as_of": datetime(2026, 12, 1, tzinfo=UTC),
    }


def test_months_parse_and_bad_ones_are_refused() -> None:
    assert (NOV.first, NOV.after_last, NOV.days) == (date(2026, 11, 1), date(2026, 12, 1), 30)
    assert Month.parse("2026-12").after_last == date(2027, 1, 1)
    assert Month.parse("2028-02").days == 29
    assert Month.parse("2999-12").after_last == date(3000, 1, 1)
    for bad in ("2026-13", "2026-00", "2026-1", "26-01", "0000-01", "9999-12", "2026-01-01"):
        with pytest.raises(BadMonth):
            Month.parse(bad)


def test_the_month_opens_on_the_last_closing_before_it_and_closes_on_its_last_day() -> None:
    eur, try_ = build_statement(NOV, ROWS)
    assert (try_.currency, try_.opening) == ("TRY", 49_000)
    assert try_.lines == {
        "sales": 112_345,
        "refunds": -5_000,
        "fees": -2_247,
        "fx": -100,
        "disputes": -3_000,
        "payouts": -49_000,
        "other": 0,
    }
    assert try_.closing == 49_000 + 112_345 - 5_000 - 2_247 - 100 - 3_000 - 49_000
    assert try_.closing == try_.days[-1].closing and try_.reconciled
    assert [d.day.day for d in try_.days] == [2, 3, 30]
    assert try_.counts == {
        "capture_count": 2,
        "reversal_count": 0,
        "refund_count": 1,
        "payout_count": 1,
    }
    assert (eur.opening, eur.closing, eur.reconciled) == (0, 1_960, True)


def test_a_quiet_month_carries_the_balance_and_a_missing_day_is_not_reconciled() -> None:
    [quiet] = build_statement(Month(2026, 10), [*ROWS[:1], ROWS[1]])
    assert (quiet.opening, quiet.closing, quiet.days[0].day) == (0, 49_000, date(2026, 10, 30))
    assert build_statement(Month(2026, 9), ROWS[:1]) == [], "nothing posted yet"
    [later] = build_statement(Month(2027, 1), ROWS[:2])
    assert (later.opening, later.closing, later.days, later.reconciled) == (
        147_000,
        147_000,
        (),
        True,
    )
    gap = [r for r in ROWS if r["day"] != date(2026, 11, 3)]
    _, try_ = build_statement(NOV, gap)
    assert try_.reconciled is False, "3 November has not arrived: the chain is broken"


def test_json_csv_and_pdf_show_the_same_figures() -> None:
    data = loaded(ROWS)
    body = statement_json(data)
    assert (body["month"], body["from"], body["to"]) == ("2026-11", "2026-11-01", "2026-12-01")
    by_currency = {c["currency"]: c for c in body["currencies"]}
    assert by_currency["TRY"]["closing_balance"] == 101_998
    first_day = by_currency["TRY"]["days"][0]
    assert first_day["counts"]["captures"] == 1 and first_day["sales"] == 100_000
    assert by_currency["TRY"]["days"][1]["refunds"] == -5_000, "an amount, not the count"
    assert by_currency["TRY"]["counts"]["payouts"] == 1

    rows = list(csv.DictReader(io.StringIO(statement_csv(data))))
    month_rows = {r["currency"]: r for r in rows if r["date"] == "2026-11"}
    assert Decimal(month_rows["TRY"]["closing_balance"]) * 100 == 101_998
    assert Decimal(month_rows["TRY"]["fees"]) == Decimal("-22.47")
    assert Decimal(month_rows["EUR"]["sales"]) == Decimal("20.00")
    assert [r["date"] for r in rows if r["currency"] == "TRY"] == [
        "2026-11-02",
        "2026-11-03",
        "2026-11-30",
        "2026-11",
    ]

    pdf = statement_pdf(data, datetime(2026, 12, 2, 8, 0, tzinfo=UTC))
    assert pdf.startswith(b"%PDF")
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "Monthly statement 2026-11" in text
    assert SHOP_NAME in text, "Turkish letters print"
    for amount in (49_000, 112_345, -5_000, -2_247, -100, -3_000, -49_000, 101_998):
        assert format_money(amount, "TRY") in text
    assert format_money(1_960, "EUR") in text
    assert (
        "2026-11-30" in text and "Daily sales volume (TRY)" in text and "Daily fees (TRY)" in text
    )


def test_the_chart_draws_each_days_volume_and_fees() -> None:
    _, try_ = build_statement(NOV, ROWS)
    volume, fees = chart_series(try_, NOV)
    assert len(volume) == len(fees) == 30
    assert (volume[1], volume[29], fees[1], fees[29]) == (100_000, 12_345, 2_000, 247)
    assert sum(volume) == try_.lines["sales"] and -sum(fees) == try_.lines["fees"]
    volume_bars, fee_bars = daily_chart(try_, NOV).contents[:2]
    assert volume_bars.data[0][1] == 1000.0 and volume_bars.data[0][29] == 123.45
    assert fee_bars.data[0][1] == 20.0 and fee_bars.data[0][29] == 2.47
    assert volume_bars.categoryAxis.categoryNames == [str(n) for n in range(1, 31)]


def test_an_empty_statement_still_renders() -> None:
    data = loaded([], Month(2026, 1))
    assert statement_json(data)["currencies"] == []
    assert statement_csv(data).strip() == (
        "currency,date,opening_balance,sales,refunds,fees,fx,disputes,payouts,other,closing_balance"
    )
    text = PdfReader(io.BytesIO(statement_pdf(data))).pages[0].extract_text()
    assert "No postings" in text
