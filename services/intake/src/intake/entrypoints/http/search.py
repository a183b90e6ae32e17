"""Search, CSV export and the summary report. Included before /v1/payments/{payment_id} so
that /v1/payments/export is not taken for a payment id."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.types import Receive, Scope, Send

from intake.domain.queries import PaymentFilterQuery, PaymentSearchQuery, ReportQuery
from intake.entrypoints.http.deps import AppContainer, Merchant
from intake.entrypoints.http.search_schemas import PaymentList, ReportSummary
from intake.service_layer.export import export_csv
from intake.service_layer.reports import summary_report
from intake.service_layer.search import filters_from, search_payments
from sanalpos_common.http import Problem

CSV_EXAMPLE = (
    "id,created_at,updated_at,status,amount_minor,amount,currency,capture,installments,"
    "order_id,description,card_brand,card_number,response_code,auth_code,decline_reason,"
    "fee_amount_minor,net_amount_minor\r\n"
)


router = APIRouter(prefix="/v1")


@router.get("/payments", summary="Search payments", response_model=PaymentList, tags=["payments"])
async def search(
    query: Annotated[PaymentSearchQuery, Query()], merchant_id: Merchant, c: AppContainer
) -> JSONResponse:
    """Your payments, newest first, filtered; pages follow `next_cursor`."""
    page = await search_payments(
        c.pool, merchant_id, filters_from(query), query.limit, query.cursor
    )
    return JSONResponse(page)


@router.get(
    "/payments/export",
    summary="Export payments as CSV",
    response_class=StreamingResponse,
    tags=["payments"],
    responses={
        200: {
            "description": "CSV (RFC 4180), newest first; amounts in minor units and in "
            "the currency's major unit; card numbers masked",
            "content": {"text/csv": {"schema": {"type": "string"}, "example": CSV_EXAMPLE}},
        },
        503: {
            "description": "As many exports as this server streams at once are running; "
            "retry after `Retry-After` seconds"
        },
    },
)
async def export(
    query: Annotated[PaymentFilterQuery, Query()], merchant_id: Merchant, c: AppContainer
) -> StreamingResponse:
    """Every payment matching the search filters, as CSV, streamed."""
    exports = c.exports
    if not exports.slots.take():
        wait = exports.retry_after_s
        raise Problem(
            503,
            "export-capacity",
            "Too many exports running",
            f"this server streams {exports.slots.limit} exports at once; retry after {wait} s",
            headers={"Retry-After": str(wait)},
        )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return SlotStreamingResponse(
        export_csv(exports.pool, merchant_id, filters_from(query)),
        release=exports.slots.give_back,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="payments-{stamp}.csv"'},
    )


class SlotStreamingResponse(StreamingResponse):
    """A streamed response that gives its export slot back however it ends: sent whole, the
    client gone mid-way, or never started."""

    def __init__(self, content: AsyncIterator[str], *, release: Callable[[], None], **kw: Any):
        super().__init__(content, **kw)
        self._content, self._release = content, release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()
            aclose = getattr(self._content, "aclose", None)
            if aclose is not None:
                await aclose()


@router.get(
    "/reports/summary",
    summary="Summarize payments over a period",
    response_model=ReportSummary,
    tags=["reports"],
)
async def summary(
    query: Annotated[ReportQuery, Query()], merchant_id: Merchant, c: AppContainer
) -> JSONResponse:
    """Counts, volumes, approval and fraud-decline rates, decline reasons, refunds,
    average ticket and fees of the payments created in [from, to), per group and
    currency."""
    return JSONResponse(await summary_report(c.pool, merchant_id, query))
