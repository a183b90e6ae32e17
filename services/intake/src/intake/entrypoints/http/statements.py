"""The monthly statement: JSON, CSV or PDF, by `format` or the Accept header."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from intake.domain.statements import MONTH, Month
from intake.entrypoints.http.deps import AppContainer, Merchant
from intake.service_layer.statements import load, statement_csv, statement_json, statement_pdf

Format = Literal["json", "csv", "pdf"]
MEDIA = {"json": "application/json", "csv": "text/csv", "pdf": "application/pdf"}

LINES_EXAMPLE: dict[str, Any] = {
    "opening_balance": 150_000,
    "sales": 1_250_000,
    "refunds": -30_000,
    "fees": -22_375,
    "fx": 0,
    "disputes": 0,
    "payouts": -1_100_000,
    "other": 0,
    "closing_balance": 247_625,
}
COUNTS_EXAMPLE = {"captures": 120, "reversals": 2, "refunds": 3, "payouts": 18}
DAY_EXAMPLE: dict[str, Any] = {"date": "2026-11-27", **LINES_EXAMPLE, "counts": COUNTS_EXAMPLE}
CURRENCY_EXAMPLE: dict[str, Any] = {
    "currency": "TRY",
    **LINES_EXAMPLE,
    "counts": COUNTS_EXAMPLE,
    "reconciled": True,
    "days": [DAY_EXAMPLE],
}
CSV_EXAMPLE = (
    "currency,date,opening_balance,sales,refunds,fees,fx,disputes,payouts,other,"
    "closing_balance\r\n"
    "TRY,2026-11-27,1500.00,12500.00,-300.00,-223.75,0.00,0.00,-11000.00,0.00,2476.25\r\n"
    "TRY,2026-11,1500.00,12500.00,-300.00,-223.75,0.00,0.00,-11000.00,0.00,2476.25\r\n"
)


class StatementLines(BaseModel):
    opening_balance: int = Field(
        description="Your balance with us at the start (the closing of the last posting "
        "day before), minor units",
        examples=[150_000],
    )
    sales: int = Field(
        description="Captured amounts less reversals (before fees), minor units",
        examples=[1_250_000],
    )
    refunds: int = Field(description="Refunds, negative, minor units", examples=[-30_000])
    fees: int = Field(
        description="Commission on sales, negative (reversed sales give it back), minor units",
        examples=[-22_375],
    )
    fx: int = Field(description="Currency conversions and FX markups, minor units", examples=[0])
    disputes: int = Field(
        description="Dispute holds, releases, losses and dispute fees, minor units",
        examples=[0],
    )
    payouts: int = Field(
        description="Payouts to your bank, negative (returned ones come back), minor units",
        examples=[-1_100_000],
    )
    other: int = Field(description="Any other posting (normally 0), minor units", examples=[0])
    closing_balance: int = Field(
        description="opening_balance plus the lines: what we owe you at the end, minor units",
        examples=[247_625],
    )


class StatementCounts(BaseModel):
    captures: int = Field(description="Captures posted", examples=[120])
    reversals: int = Field(description="Captures cancelled before their batch closed", examples=[2])
    refunds: int = Field(description="Refunds posted", examples=[3])
    payouts: int = Field(
        description="Payouts made (a returned one is not counted again)", examples=[18]
    )


class StatementDay(StatementLines):
    date: str = Field(description="Posting day, your local date", examples=["2026-11-27"])
    counts: StatementCounts = Field(
        description="Postings of the day by kind", examples=[COUNTS_EXAMPLE]
    )


class CurrencyStatementOut(StatementLines):
    currency: str = Field(
        description="ISO 4217; money is never summed across currencies", examples=["TRY"]
    )
    counts: StatementCounts = Field(
        description="Postings of the month by kind", examples=[COUNTS_EXAMPLE]
    )
    reconciled: bool = Field(
        description="Every posting day has reached intake: the closing balance is the "
        "ledger's (false for a moment after a late posting)",
        examples=[True],
    )
    days: list[StatementDay] = Field(
        description="The days with postings, in order", examples=[[DAY_EXAMPLE]]
    )


class StatementOut(BaseModel):
    object: str = Field(
        default="statement", description="Always `statement`", examples=["statement"]
    )
    month: str = Field(description="The month, yyyy-mm", examples=["2026-11"])
    from_: str = Field(alias="from", description="First day (inclusive)", examples=["2026-11-01"])
    to: str = Field(description="Day after the last (exclusive)", examples=["2026-12-01"])
    time_zone: str = Field(
        description="Posting days are local dates in this zone", examples=["Europe/Istanbul"]
    )
    as_of: str | None = Field(
        description="When settlement last computed a day of the month",
        examples=["2026-12-01T03:00:12+00:00"],
    )
    currencies: list[CurrencyStatementOut] = Field(
        description="One per currency with postings up to the month's end",
        examples=[[CURRENCY_EXAMPLE]],
    )


router = APIRouter(prefix="/v1", tags=["statements"])


def chosen(format_: Format | None, accept: str | None) -> Format:
    if format_ is not None:
        return format_
    accepted = (accept or "").lower()
    if "application/pdf" in accepted:
        return "pdf"
    if "text/csv" in accepted:
        return "csv"
    return "json"


@router.get(
    "/statements/{month}",
    summary="Read a monthly statement",
    response_model=StatementOut,
    responses={
        200: {
            "description": "The statement: JSON (default), CSV or PDF",
            "content": {
                "text/csv": {"schema": {"type": "string"}, "example": CSV_EXAMPLE},
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def statement(
    month: Annotated[
        str,
        Path(
            pattern=MONTH.pattern,
            description="The month as yyyy-mm, in your time zone",
            examples=["2026-11"],
        ),
    ],
    merchant_id: Merchant,
    c: AppContainer,
    format_: Annotated[
        Format | None,
        Query(alias="format", description="json, csv or pdf; else by the Accept header"),
    ] = None,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """Per currency: the opening balance, sales, refunds, fees, FX, disputes and payouts of
    the month's posting days, and the closing balance, which is your payable balance in our
    ledger at the end of the month. The PDF adds a chart of daily sales volume and fees."""
    loaded = await load(c.pool, merchant_id, Month.parse(month))
    kind = chosen(format_, accept)
    if kind == "json":
        return JSONResponse(statement_json(loaded))
    name = f"statement-{month}.{kind}"
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    if kind == "csv":
        return Response(statement_csv(loaded), media_type="text/csv", headers=disposition)
    return Response(statement_pdf(loaded), media_type=MEDIA["pdf"], headers=disposition)
