"""Capture, void, refunds and fraud reports on an existing payment. All scoped to the calling
merchant: another merchant's payment id is 404, never 403."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from intake.domain.commands import CapturePaymentRequest, FraudReportRequest, RefundPaymentRequest
from intake.domain.read_models import FraudReportOut, PaymentOut, RefundList, RefundOut
from intake.entrypoints.http.deps import AppContainer, IdempotencyKey, Merchant
from intake.entrypoints.http.responses import endpoint_of, http_response
from intake.service_layer import lifecycle, operations
from intake.service_layer.idempotency import idempotency_scope, run_in_transaction
from intake.service_layer.problems import Refused, not_found

router = APIRouter(prefix="/v1", tags=["payments"])

_COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such payment for this merchant"},
    409: {"description": "Wrong state, or a request with this Idempotency-Key is in progress"},
    422: {"description": "Invalid request, or Idempotency-Key reused with another body"},
}


@router.post(
    "/payments/{payment_id}/capture",
    status_code=202,
    response_model=PaymentOut,
    responses=_COMMON_ERRORS,
    summary="Capture an authorized pre-authorization",
)
async def capture(
    payment_id: uuid.UUID,
    request: Request,
    merchant_id: Merchant,
    c: AppContainer,
    body: CapturePaymentRequest | None = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Captures all (no `amount`) or part of the hold; the rest of the hold is released.
    Only an `authorized` pre-authorization (`capture: false`) can be captured."""
    amount = None if body is None else body.amount
    scope = idempotency_scope(
        merchant_id, idempotency_key, endpoint_of(request), {"amount": amount}
    )
    work = partial(
        operations.capture, merchant_id=merchant_id, payment_id=payment_id, amount=amount
    )
    return http_response(await run_in_transaction(c.pool, scope, work))


@router.post(
    "/payments/{payment_id}/void",
    status_code=202,
    response_model=PaymentOut,
    responses=_COMMON_ERRORS,
    summary="Void (cancel) a payment",
)
async def void(
    payment_id: uuid.UUID,
    request: Request,
    merchant_id: Merchant,
    c: AppContainer,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Before capture it releases the hold. After capture it reverses the sale with no
    refund line, only until the merchant's end-of-day cut-off for the capture's batch;
    after that the answer is 409: refund instead."""
    scope = idempotency_scope(merchant_id, idempotency_key, endpoint_of(request), {})
    work = partial(lifecycle.void_payment, merchant_id=merchant_id, payment_id=payment_id)
    return http_response(await run_in_transaction(c.pool, scope, work))


@router.post(
    "/payments/{payment_id}/refunds",
    status_code=202,
    response_model=RefundOut,
    responses=_COMMON_ERRORS,
    summary="Refund part or all of a captured payment",
)
async def refund(
    payment_id: uuid.UUID,
    body: RefundPaymentRequest,
    request: Request,
    merchant_id: Merchant,
    c: AppContainer,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Several partial refunds are allowed while their total (failed ones aside) stays
    within the captured amount; beyond it the answer is 409. The refund starts `pending`
    and becomes `succeeded` or `failed` when authorization has executed it."""
    scope = idempotency_scope(merchant_id, idempotency_key, endpoint_of(request), body.model_dump())
    work = partial(
        operations.refund,
        merchant_id=merchant_id,
        payment_id=payment_id,
        amount=body.amount,
        reason=body.reason,
    )
    response = await run_in_transaction(c.pool, scope, work)
    location = f"/v1/payments/{payment_id}/refunds/{response.body['id']}"
    return http_response(response, {"Location": location})


@router.get(
    "/payments/{payment_id}/refunds",
    response_model=RefundList,
    responses={404: _COMMON_ERRORS[404]},
    summary="List the payment's refunds",
)
async def refunds(payment_id: uuid.UUID, merchant_id: Merchant, c: AppContainer) -> JSONResponse:
    """Every refund of the payment, oldest first, with its status (pending, succeeded,
    failed)."""
    async with c.pool.acquire() as conn:
        data = await lifecycle.list_refunds(conn, merchant_id, payment_id)
    return JSONResponse({"object": "list", "data": data})


@router.get(
    "/payments/{payment_id}/refunds/{refund_id}",
    response_model=RefundOut,
    responses={404: {"description": "No such refund of this merchant's payment"}},
    summary="Read one refund",
)
async def read_refund(
    payment_id: uuid.UUID, refund_id: uuid.UUID, merchant_id: Merchant, c: AppContainer
) -> JSONResponse:
    """One refund of the payment: amount, reason and status (a failed one says why)."""
    async with c.pool.acquire() as conn:
        try:
            refund = await lifecycle.get_refund(conn, merchant_id, payment_id, refund_id)
        except lifecycle.PaymentNotFound:  # the payment or the refund: either way, no refund
            raise Refused(not_found("refund", str(refund_id))) from None
    return JSONResponse(refund)


@router.post(
    "/payments/{payment_id}/fraud-report",
    status_code=202,
    response_model=FraudReportOut,
    responses={404: _COMMON_ERRORS[404], 409: _COMMON_ERRORS[409], 422: _COMMON_ERRORS[422]},
    summary="Report the payment as fraudulent",
)
async def fraud_report(
    payment_id: uuid.UUID,
    body: FraudReportRequest,
    request: Request,
    merchant_id: Merchant,
    c: AppContainer,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Feeds fraud scoring: the card's fingerprint goes on its watch lists and the payment
    becomes a labeled fraud example. Any payment of the merchant may be reported."""
    scope = idempotency_scope(merchant_id, idempotency_key, endpoint_of(request), body.model_dump())
    work = partial(
        lifecycle.report_fraud, merchant_id=merchant_id, payment_id=payment_id, reason=body.reason
    )
    return http_response(await run_in_transaction(c.pool, scope, work))
