"""The message value merchants publish on merchant.payment-requests.v1, and its parsing."""

from __future__ import annotations

import json
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from intake.service_layer.problems import (
    FieldError,
    ProblemDetails,
    Refused,
    field_errors,
    invalid,
)

Operation = Literal["create", "capture", "void", "refund"]
CLEAR_CARD_FIELDS = ("card", "cvc")
"""Fields the HTTP API accepts that Kafka refuses: no card data in clear on a topic."""


class KafkaPaymentRequest(BaseModel):
    """The message value on merchant.payment-requests.v1."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    operation: Operation
    payment_id: uuid.UUID | None = Field(
        default=None,
        validate_default=True,
        description="The payment to act on (capture, void, refund only)",
    )
    body: dict[str, Any] = Field(
        default_factory=dict, description="The JSON body the HTTP operation takes"
    )

    @field_validator("payment_id")
    @classmethod
    def _payment_id_only_for_existing_payments(
        cls, value: uuid.UUID | None, info: ValidationInfo
    ) -> uuid.UUID | None:
        operation = info.data.get("operation")
        if operation == "create" and value is not None:
            raise ValueError("create takes no payment_id")
        if operation not in (None, "create") and value is None:
            raise ValueError(f"{operation} needs the payment_id")
        return value


def malformed(detail: str) -> Refused:
    return Refused(ProblemDetails(400, "malformed-request", "Malformed request", detail))


def card_data_refused(names: list[str]) -> Refused:
    return Refused(
        ProblemDetails(
            422,
            "card-data-not-accepted",
            "Card data in clear is not accepted on Kafka",
            "Kafka requests carry no card number or security code in clear: pay with "
            "card_token (a stored card) or encrypted_card (card data encrypted to the "
            "platform key, security code inside)",
            tuple(
                FieldError(
                    f"body.{name}",
                    "not accepted on Kafka; use card_token or encrypted_card",
                    "card_data_in_clear",
                )
                for name in names
            ),
        )
    )


def parse_request(value: bytes) -> KafkaPaymentRequest:
    """The request, or `Refused` naming what is wrong with it (never echoing its input)."""
    try:
        document = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise malformed("the message value is not JSON") from None
    if not isinstance(document, dict):
        raise malformed("the message value is not an object")
    body = document.get("body")
    refused = [f for f in CLEAR_CARD_FIELDS if isinstance(body, dict) and f in body]
    if refused:
        raise card_data_refused(refused)
    try:
        return KafkaPaymentRequest.model_validate(document)
    except ValidationError as exc:
        raise Refused(invalid(*field_errors(exc))) from None
