"""Monthly statements against the real intake database: settlement.ledger-day.v1 applied as
intake's consumer does (inbox included, the newest version of a day winning), then
GET /v1/statements/{month} as JSON, CSV (by Accept) and PDF (by format, read back with pypdf);
another merchant sees only its own days; a bad month or format is a problem with its field."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pypdf import PdfReader

from intake.bootstrap import CONSUMER
from intake.service_layer.consumed import CONSUMER_HANDLERS
from sanalpos_common import topics
from sanalpos_common.messaging.idempotent import idempotent
from sanalpos_common.money import format_money
from sanalpos_common.schemas.codec import new_envelope
from sanalpos_common.schemas.events import LedgerDaySummarized
from sanalpos_common.service import Platform

from .conftest import http_client, private_intake
from .test_balance_api import new_merchant

LINES = ("sales", "refunds", "fees", "fx", "disputes", "payouts", "other")


@pytest.fixture(scope="module")
async def platform() -> AsyncIterator[Platform]:
    async with private_intake() as platform:
        yield platform


@pytest.fixture(scope="module")
async def http(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(platform) as client:
        yield client


def ledger_day(
    merchant_id: str, on: date, opening: int, version: int = 1, **lines: int
) -> LedgerDaySummarized:
    figures = {name: lines.get(name, 0) for name in LINES}
    return LedgerDaySummarized(
        merchant_id=merchant_id,
        currency="TRY",
        day=on,
        time_zone="UTC",
        opening_balance=opening,
        **figures,
        closing_balance=opening + sum(figures.values()),
        capture_count=1 if figures["sales"] else 0,
        reversal_count=0,
        refund_count=1 if figures["refunds"] else 0,
        payout_count=1 if figures["payouts"] else 0,
        version=version,
        computed_at=datetime(2026, 12, 1, 3, version, tzinfo=UTC),
    )


async def apply(platform: Platform, day: LedgerDaySummarized) -> None:
    handle = idempotent(platform.pool, CONSUMER, CONSUMER_HANDLERS, producer=CONSUMER)
    envelope = new_envelope(topics.LEDGER_DAY, day, correlation_id=None, producer="settlement")
    await handle(topics.LEDGER_DAY, envelope)


async def test_the_statement_adds_up_the_month_in_json_csv_and_pdf(
    http: httpx.AsyncClient, platform: Platform
) -> None:
    merchant_id, key = await new_merchant(http)
    other_id, other_key = await new_merchant(http)
    october = ledger_day(merchant_id, date(2026, 10, 31), 0, sales=40_000, fees=-800)
    nov2 = ledger_day(merchant_id, date(2026, 11, 2), 39_200, sales=25_000, fees=-500)
    nov3 = ledger_day(merchant_id, date(2026, 11, 3), 63_700, refunds=-7_000, payouts=-39_200)
    nov3_late = ledger_day(
        merchant_id, date(2026, 11, 3), 63_700, version=2, refunds=-7_500, payouts=-39_200
    )
    for day in (october, nov2, nov3, nov3_late, nov3):  # the older version again: ignored
        await apply(platform, day)
    await apply(platform, ledger_day(other_id, date(2026, 11, 2), 0, sales=99_999))

    response = await http.get("/v1/statements/2026-11", headers=key)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["object"], body["month"], body["time_zone"]) == ("statement", "2026-11", "UTC")
    [try_] = body["currencies"]
    assert {k: try_[k] for k in ("opening_balance", *LINES, "closing_balance")} == {
        "opening_balance": 39_200,
        "sales": 25_000,
        "refunds": -7_500,
        "fees": -500,
        "fx": 0,
        "disputes": 0,
        "payouts": -39_200,
        "other": 0,
        "closing_balance": 17_000,
    }
    assert try_["reconciled"] is True
    assert [d["date"] for d in try_["days"]] == ["2026-11-02", "2026-11-03"]
    assert try_["counts"] == {"captures": 1, "reversals": 0, "refunds": 1, "payouts": 1}

    as_csv = await http.get("/v1/statements/2026-11", headers={**key, "Accept": "text/csv"})
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    [month_row] = [r for r in csv.DictReader(io.StringIO(as_csv.text)) if r["date"] == "2026-11"]
    assert Decimal(month_row["closing_balance"]) == Decimal("170.00")
    assert Decimal(month_row["refunds"]) == Decimal("-75.00")

    as_pdf = await http.get("/v1/statements/2026-11?format=pdf", headers=key)
    assert as_pdf.status_code == 200
    assert as_pdf.headers["content-type"] == "application/pdf"
    assert 'filename="statement-2026-11.pdf"' in as_pdf.headers["content-disposition"]
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(as_pdf.content)).pages)
    for amount in (39_200, 25_000, -7_500, -500, -39_200, 17_000):
        assert format_money(amount, "TRY") in text
    assert merchant_id in text and other_id not in text

    theirs = (await http.get("/v1/statements/2026-11", headers=other_key)).json()
    [their_try] = theirs["currencies"]
    assert (their_try["opening_balance"], their_try["closing_balance"]) == (0, 99_999)
    later = (await http.get("/v1/statements/2027-01", headers=key)).json()
    [carried] = later["currencies"]
    assert (carried["opening_balance"], carried["closing_balance"], carried["days"]) == (
        17_000,
        17_000,
        [],
    )
    before = (await http.get("/v1/statements/2026-09", headers=key)).json()
    assert before["currencies"] == []


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/statements/2026-13", "month"),
        ("/v1/statements/2026-1", "month"),
        ("/v1/statements/2026-11?format=xml", "format"),
    ],
)
async def test_a_bad_month_or_format_is_a_problem_naming_the_field(
    http: httpx.AsyncClient, path: str, field: str
) -> None:
    _, key = await new_merchant(http)
    response = await http.get(path, headers=key)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    assert [e["field"] for e in problem["errors"]] == [field]


async def test_a_statement_needs_an_api_key(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/statements/2026-11")
    assert response.status_code == 401
