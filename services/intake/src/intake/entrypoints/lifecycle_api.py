"""Capture, void, refunds and fraud reports on an existing payment, and the idempotent
answering every merchant POST shares. All scoped to the calling merchant: another merchant's
payment id is 404, never 403."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from intake.domain.payment import AmountTooLarge, OperationNotAllowed
from intake.entrypoints.deps import AppContainer, Merchant
from intake.entrypoints.problems import Problem
from intake.entrypoints.schemas import (
    CapturePaymentRequest,
    FraudReportOut,
    FraudReportRequest,
    PaymentOut,
    RefundList,
    RefundOut,
    RefundPaymentRequest,
)
from intake.service_layer import lifecycle
from intake.service_layer.idempotency import (
    IdempotencyConflict,
    IdempotencyKeyInProgress,
    IdempotencyScope,
    Response,
    Work,
    request_hash,
    run_in_transaction,
)
from sanalpos_common.db import UnitOfWork

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Makes the POST safe to retry: the same key with the same body replays the "
        "first response (with `Idempotent-Replayed: true`); with another body it is refused "
        "(422); while the first request runs, others get 409 and may retry. Kept 24 hours, "
        "scoped to the merchant.",
    ),
]

_COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such payment for this merchant"},
    409: {"description": "Wrong state, or a request with this Idempotency-Key is in progress"},
    422: {"description": "Invalid request, or Idempotency-Key reused with another body"},
}


def idempotency_scope(
    merchant_id: str, key: str | None, request: Request, compared: Mapping[str, Any]
) -> IdempotencyScope | None:
    """The key's scope: merchant, key, this operation (method and path) and the body."""
    if key is None:
        return None
    endpoint = f"{request.method} {request.url.path}"
    return IdempotencyScope(merchant_id, key, endpoint, request_hash(compared))


def idempotency_problem(exc: IdempotencyConflict | IdempotencyKeyInProgress) -> Problem:
    if isinstance(exc, IdempotencyConflict):
        return Problem(
            422,
            "idempotency-key-reused",
            "Idempotency-Key reused with a different request",
            "this key was first used with another body or operation; use a new key for a new "
            "request",
        )
    return Problem(
        409,
        "idempotency-key-in-progress",
        "A request with this Idempotency-Key is in progress",
        "another request with this key has not finished; retry it shortly to get its response",
    )


def http_response(response: Response, headers: Mapping[str, str] | None = None) -> JSONResponse:
    extra = dict(headers or {})
    if response.replayed:
        extra["Idempotent-Replayed"] = "true"
    return JSONResponse(response.body, status_code=response.status, headers=extra)


async def respond_idempotently(
    c: AppContainer, scope: IdempotencyScope | None, work: Work
) -> Response:
    """Runs `work` in one transaction, exactly once per Idempotency-Key."""
    try:
        return await run_in_transaction(c.pool, scope, work)
    except (IdempotencyConflict, IdempotencyKeyInProgress) as exc:
        raise idempotency_problem(exc) from None


@contextmanager
def lifecycle_problems(payment_id: uuid.UUID) -> Iterator[None]:
    """Domain refusals as problem details."""
    try:
        yield
    except lifecycle.PaymentNotFound:
        raise _not_found(payment_id) from None
    except OperationNotAllowed as exc:
        raise Problem(
            409,
            "payment-state-conflict",
            f"Cannot {exc.operation.value} a payment that is {exc.current_state}",
            exc.detail,
            current_state=exc.current_state,
            operation=exc.operation.value,
        ) from None


def _not_found(payment_id: uuid.UUID) -> Problem:
    return Problem(404, "not-found", "No such payment", f"payment {payment_id} not found")


def router() -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["payments"])

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

        async def work(uow: UnitOfWork) -> Response:
            try:
                return await lifecycle.capture_payment(uow, merchant_id, payment_id, amount)
            except AmountTooLarge as exc:
                raise Problem(
                    422,
                    "validation-error",
                    "Request is invalid",
                    "invalid: amount",
                    errors=[{"field": "amount", "message": exc.detail, "code": "too_large"}],
                ) from None

        scope = idempotency_scope(merchant_id, idempotency_key, request, {"amount": amount})
        with lifecycle_problems(payment_id):
            return http_response(await respond_idempotently(c, scope, work))

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

        async def work(uow: UnitOfWork) -> Response:
            return await lifecycle.void_payment(uow, merchant_id, payment_id)

        scope = idempotency_scope(merchant_id, idempotency_key, request, {})
        with lifecycle_problems(payment_id):
            return http_response(await respond_idempotently(c, scope, work))

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

        async def work(uow: UnitOfWork) -> Response:
            try:
                return await lifecycle.refund_payment(
                    uow, merchant_id, payment_id, body.amount, body.reason
                )
            except AmountTooLarge as exc:
                raise Problem(
                    409,
                    "refund-exceeds-captured",
                    "Refund exceeds the refundable amount",
                    exc.detail,
                    available_amount=exc.available,
                    errors=[{"field": "amount", "message": exc.detail, "code": "too_large"}],
                ) from None

        scope = idempotency_scope(merchant_id, idempotency_key, request, body.model_dump())
        with lifecycle_problems(payment_id):
            response = await respond_idempotently(c, scope, work)
        location = f"/v1/payments/{payment_id}/refunds/{response.body['id']}"
        return http_response(response, {"Location": location})

    @router.get(
        "/payments/{payment_id}/refunds",
        response_model=RefundList,
        responses={404: _COMMON_ERRORS[404]},
        summary="List the payment's refunds",
    )
    async def refunds(
        payment_id: uuid.UUID, merchant_id: Merchant, c: AppContainer
    ) -> JSONResponse:
        """Every refund of the payment, oldest first, with its status (pending, succeeded,
        failed)."""
        async with c.pool.acquire() as conn:
            with lifecycle_problems(payment_id):
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
            except lifecycle.PaymentNotFound:
                raise Problem(
                    404, "not-found", "No such refund", f"refund {refund_id} not found"
                ) from None
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

        async def work(uow: UnitOfWork) -> Response:
            return await lifecycle.report_fraud(uow, merchant_id, payment_id, body.reason)

        scope = idempotency_scope(merchant_id, idempotency_key, request, body.model_dump())
        with lifecycle_problems(payment_id):
            return http_response(await respond_idempotently(c, scope, work))

    return router
