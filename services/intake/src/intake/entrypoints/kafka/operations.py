"""The operations a Kafka request may ask for: each body validated with the model HTTP uses
and run by the service-layer function HTTP calls. Refusals are the same problem details
HTTP answers with (field paths relative to the message value: `body.amount`)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from intake.domain.commands import (
    CapturePaymentRequest,
    CardIn,
    CreatePaymentRequest,
    RefundPaymentRequest,
)
from intake.entrypoints.kafka.messages import KafkaPaymentRequest
from intake.service_layer import lifecycle, operations
from intake.service_layer.cards import OpenedCard, open_encrypted_card
from intake.service_layer.errors import refused_under
from intake.service_layer.idempotency import request_hash
from intake.service_layer.payments import create_payment
from intake.service_layer.problems import Refused, field_errors, invalid
from intake.service_layer.request_answers import FIELDS_UNDER, KafkaRequestDeps, Prepared
from sanalpos_common.db import UnitOfWork

M = TypeVar("M", bound=BaseModel)
Result = tuple[int, dict[str, Any]]
Preparer = Callable[[KafkaRequestDeps, str, str, KafkaPaymentRequest], Prepared]


class VoidBody(BaseModel):
    """POST /v1/payments/{id}/void takes no body: nothing may be in it here either."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _body(model: type[M], request: KafkaPaymentRequest) -> M:
    try:
        return model.model_validate(request.body)
    except ValidationError as exc:
        raise Refused(invalid(*field_errors(exc, ("body",)))) from None


def _digest(request: KafkaPaymentRequest, compared: object) -> str:
    return request_hash(
        {"operation": request.operation, "payment_id": str(request.payment_id), "body": compared}
    )


def _payment_id(request: KafkaPaymentRequest) -> uuid.UUID:
    assert request.payment_id is not None  # KafkaPaymentRequest requires it for these
    return request.payment_id


def prepare_create(
    deps: KafkaRequestDeps, merchant_id: str, request_id: str, request: KafkaPaymentRequest
) -> Prepared:
    body = _body(CreatePaymentRequest, request)
    opened: OpenedCard[CardIn] | None = None
    if body.encrypted_card is not None:
        with refused_under(FIELDS_UNDER):
            opened = open_encrypted_card(
                deps.client_encryption, body.encrypted_card, CardIn, merchant_id
            )

    async def execute() -> Result:
        # Its own transactions (card protection, idempotency claim): the payment completes
        # the key `kafka:<request id>`, so a redelivery after a crash finds the same payment.
        response = await create_payment(
            deps.pool,
            deps.protection,
            merchant_id,
            body,
            f"kafka:{request_id}",
            opened.card if opened else None,
            opened.use if opened else None,
        )
        return response.status, response.body

    return Prepared("create", _digest(request, body.fingerprint_for_idempotency()), execute)


# --- capture, void, refund: in the reply's own transaction ----------------------------------


def prepare_capture(
    deps: KafkaRequestDeps, merchant_id: str, request_id: str, request: KafkaPaymentRequest
) -> Prepared:
    body, payment_id = _body(CapturePaymentRequest, request), _payment_id(request)

    async def run(uow: UnitOfWork) -> Result:
        response = await operations.capture(uow, merchant_id, payment_id, body.amount)
        return response.status, response.body

    return Prepared("capture", _digest(request, body.model_dump()), in_transaction=run)


def prepare_void(
    deps: KafkaRequestDeps, merchant_id: str, request_id: str, request: KafkaPaymentRequest
) -> Prepared:
    _body(VoidBody, request)
    payment_id = _payment_id(request)

    async def run(uow: UnitOfWork) -> Result:
        response = await lifecycle.void_payment(uow, merchant_id, payment_id)
        return response.status, response.body

    return Prepared("void", _digest(request, {}), in_transaction=run)


def prepare_refund(
    deps: KafkaRequestDeps, merchant_id: str, request_id: str, request: KafkaPaymentRequest
) -> Prepared:
    body, payment_id = _body(RefundPaymentRequest, request), _payment_id(request)

    async def run(uow: UnitOfWork) -> Result:
        response = await operations.refund(uow, merchant_id, payment_id, body.amount, body.reason)
        return response.status, response.body

    return Prepared("refund", _digest(request, body.model_dump()), in_transaction=run)


REGISTRY: dict[str, Preparer] = {
    "create": prepare_create,
    "capture": prepare_capture,
    "void": prepare_void,
    "refund": prepare_refund,
}
"""operation name -> preparer (validates the body and says how the request runs)."""
