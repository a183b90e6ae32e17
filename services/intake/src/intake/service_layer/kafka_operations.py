"""The operations a Kafka request may ask for, each validated with the HTTP API's model and
run by the HTTP API's service-layer function, its refusals turned into the same problem
details HTTP answers with (field paths relative to the message value: `body.amount`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from intake.domain.payment import AmountTooLarge, OperationNotAllowed
from intake.entrypoints.schemas import (
    CapturePaymentRequest,
    CardIn,
    CreatePaymentRequest,
    RefundPaymentRequest,
)
from intake.service_layer import lifecycle
from intake.service_layer.client_encryption import UnreadableCardPayload
from intake.service_layer.idempotency import (
    IdempotencyConflict,
    IdempotencyKeyInProgress,
    request_hash,
)
from intake.service_layer.installments import InstallmentsNotAllowed
from intake.service_layer.kafka_requests import (
    KafkaPaymentRequest,
    KafkaRequestDeps,
    OperationRegistry,
    Prepared,
    Rejected,
    Reply,
    field_errors,
    invalid,
    request_id_reused,
)
from intake.service_layer.payments import CardTokenNotFound, StoredCardExpired, create_payment
from sanalpos_common.db import UnitOfWork

M = TypeVar("M", bound=BaseModel)


class RequestInProgress(TimeoutError):
    """Another execution holds this request id (a concurrent message with the same id, or one
    that crashed mid-way and whose claim has not expired yet). Unlike HTTP there is nobody to
    tell "retry later": the consumer loop retries it as a transient failure, with backoff,
    until the other execution has finished (its answer is then replayed) or its claim has
    expired (the request then runs)."""


class VoidBody(BaseModel):
    """POST /v1/payments/{id}/void takes no body: nothing may be in it here either."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _body(model: type[M], request: KafkaPaymentRequest) -> M:
    try:
        return model.model_validate(request.body)
    except ValidationError as exc:
        raise invalid(field_errors(exc, ("body",))) from None


def _digest(request: KafkaPaymentRequest, compared: object) -> str:
    return request_hash(
        {"operation": request.operation, "payment_id": str(request.payment_id), "body": compared}
    )


# --- create ---------------------------------------------------------------------------------


def _open_encrypted_card(deps: KafkaRequestDeps, jwe: str) -> CardIn:
    try:
        payload = deps.client_encryption.decrypt(jwe)
    except UnreadableCardPayload as exc:
        raise invalid(
            [{"field": "body.encrypted_card", "message": str(exc), "code": "jwe_invalid"}]
        ) from None
    try:
        return CardIn.model_validate(payload)
    except ValidationError as exc:
        raise invalid(field_errors(exc, ("body", "encrypted_card"))) from None


@contextmanager
def _create_refusals() -> Iterator[None]:
    try:
        yield
    except CardTokenNotFound:
        raise Rejected(
            404,
            "card-token-not-found",
            "No such card token",
            "card_token names no stored card of this merchant",
            [{"field": "body.card_token", "message": "no such card token", "code": "not_found"}],
        ) from None
    except StoredCardExpired:
        raise invalid(
            [
                {
                    "field": "body.card_token",
                    "message": "the stored card has expired",
                    "code": "card_expired",
                }
            ]
        ) from None
    except InstallmentsNotAllowed as exc:
        rejected = invalid(
            [{"field": "body.installments", "message": exc.reason, "code": "not_allowed"}]
        )
        rejected.problem["allowed_installments"] = exc.allowed
        raise rejected from None
    except IdempotencyConflict:
        raise request_id_reused() from None
    except IdempotencyKeyInProgress:
        raise RequestInProgress from None


def prepare_create(
    deps: KafkaRequestDeps, merchant_id: str, request_id: str, request: KafkaPaymentRequest
) -> Prepared:
    body = _body(CreatePaymentRequest, request)
    card = (
        _open_encrypted_card(deps, body.encrypted_card.get_secret_value())
        if body.encrypted_card is not None
        else None
    )

    async def execute() -> Reply:
        # Its own transactions (card protection, idempotency claim): the payment completes
        # the key `kafka:<request id>`, so a redelivery after a crash finds the same payment.
        with _create_refusals():
            response = await create_payment(
                deps.pool, deps.protection, merchant_id, body, f"kafka:{request_id}", card
            )
        return Reply(request_id, "create", response.status, result=response.body)

    return Prepared(_digest(request, body.fingerprint_for_idempotency()), execute=execute)


# --- capture, void, refund: in the reply's own transaction ----------------------------------


@contextmanager
def _lifecycle_refusals(payment_id: uuid.UUID, amount_status: int) -> Iterator[None]:
    try:
        yield
    except lifecycle.PaymentNotFound:
        raise Rejected(
            404, "not-found", "No such payment", f"payment {payment_id} not found"
        ) from None
    except OperationNotAllowed as exc:
        rejected = Rejected(
            409,
            "payment-state-conflict",
            f"Cannot {exc.operation.value} a payment that is {exc.current_state}",
            exc.detail,
        )
        rejected.problem.update(current_state=exc.current_state, operation=exc.operation.value)
        raise rejected from None
    except AmountTooLarge as exc:
        error = {"field": "body.amount", "message": exc.detail, "code": "too_large"}
        if amount_status == 422:
            raise invalid([error]) from None
        rejected = Rejected(
            409,
            "refund-exceeds-captured",
            "Refund exceeds the refundable amount",
            exc.detail,
            [error],
        )
        rejected.problem["available_amount"] = exc.available
        raise rejected from None


def _payment_id(request: KafkaPaymentRequest) -> uuid.UUID:
    assert request.payment_id is not None  # KafkaPaymentRequest requires it for these
    return request.payment_id


def prepare_capture(
    deps: KafkaRequestDeps, merchant_id: str, request_id: str, request: KafkaPaymentRequest
) -> Prepared:
    body, payment_id = _body(CapturePaymentRequest, request), _payment_id(request)

    async def run(uow: UnitOfWork) -> Reply:
        with _lifecycle_refusals(payment_id, amount_status=422):
            response = await lifecycle.capture_payment(uow, merchant_id, payment_id, body.amount)
        return Reply(request_id, "capture", response.status, result=response.body)

    return Prepared(_digest(request, body.model_dump()), in_transaction=run)


def prepare_void(
    deps: KafkaRequestDeps, merchant_id: str, request_id: str, request: KafkaPaymentRequest
) -> Prepared:
    _body(VoidBody, request)
    payment_id = _payment_id(request)

    async def run(uow: UnitOfWork) -> Reply:
        with _lifecycle_refusals(payment_id, amount_status=422):
            response = await lifecycle.void_payment(uow, merchant_id, payment_id)
        return Reply(request_id, "void", response.status, result=response.body)

    return Prepared(_digest(request, {}), in_transaction=run)


def prepare_refund(
    deps: KafkaRequestDeps, merchant_id: str, request_id: str, request: KafkaPaymentRequest
) -> Prepared:
    body, payment_id = _body(RefundPaymentRequest, request), _payment_id(request)

    async def run(uow: UnitOfWork) -> Reply:
        with _lifecycle_refusals(payment_id, amount_status=409):
            response = await lifecycle.refund_payment(
                uow, merchant_id, payment_id, body.amount, body.reason
            )
        return Reply(request_id, "refund", response.status, result=response.body)

    return Prepared(_digest(request, body.model_dump()), in_transaction=run)


REGISTRY = OperationRegistry(
    {
        "create": prepare_create,
        "capture": prepare_capture,
        "void": prepare_void,
        "refund": prepare_refund,
    }
)
