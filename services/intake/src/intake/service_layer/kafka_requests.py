"""Answering an authenticated merchant request that arrived on Kafka.

The request is validated with the very models the HTTP API uses and executed by the same
service-layer functions; its answer goes to the reply topic through the outbox. See
docs/kafka-entry-point.md for the contract and what "exactly once" means here.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import asyncpg
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from intake.adapters import kafka_requests as answers
from intake.domain.request_signing import MERCHANT_HEADER, REQUEST_ID_HEADER
from intake.entrypoints.problems import PROBLEM_BASE
from intake.entrypoints.schemas import CardIn, CreatePaymentRequest
from intake.service_layer.card_protection import CardProtection
from intake.service_layer.client_encryption import ClientEncryption, UnreadableCardPayload
from intake.service_layer.payments import (
    CardTokenNotFound,
    IdempotencyConflict,
    StoredCardExpired,
    create_payment,
    request_hash,
)
from sanalpos_common import topics
from sanalpos_common.db import unit_of_work

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class Reply:
    request_id: str
    operation: str | None
    status: int
    result: dict[str, Any] | None = None
    problem: dict[str, Any] | None = None

    def value(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "request_id": self.request_id,
            "operation": self.operation,
            "status": self.status,
        }
        if self.problem is not None:
            body["problem"] = self.problem
        else:
            body["result"] = self.result
        return body

    @classmethod
    def from_value(cls, value: dict[str, Any]) -> Reply:
        return cls(
            value["request_id"],
            value.get("operation"),
            value["status"],
            value.get("result"),
            value.get("problem"),
        )


class Rejected(Exception):
    """The request is answered with problem details (RFC 9457)."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        errors: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(title)
        self.problem: dict[str, Any] = {
            "type": PROBLEM_BASE + slug,
            "title": title,
            "status": status,
            "detail": detail,
        }
        if errors is not None:
            self.problem["errors"] = errors
        self.status = status


def _field_errors(exc: ValidationError, prefix: tuple[str, ...]) -> list[dict[str, str]]:
    # Never the input: it may hold card data.
    return [
        {
            "field": ".".join([*prefix, *(str(p) for p in err["loc"])]) or "<value>",
            "message": err["msg"],
            "code": err["type"],
        }
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


def invalid(errors: list[dict[str, str]]) -> Rejected:
    return Rejected(
        422,
        "validation-error",
        "Request is invalid",
        "invalid: " + ", ".join(e["field"] for e in errors),
        errors,
    )


def parse_request(value: bytes) -> KafkaPaymentRequest:
    try:
        document = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Rejected(
            400, "malformed-request", "Malformed request", "the message value is not JSON"
        ) from None
    if not isinstance(document, dict):
        raise Rejected(
            400, "malformed-request", "Malformed request", "the message value is not an object"
        )
    body = document.get("body")
    refused = [f for f in CLEAR_CARD_FIELDS if isinstance(body, dict) and f in body]
    if refused:
        raise Rejected(
            422,
            "card-data-not-accepted",
            "Card data in clear is not accepted on Kafka",
            "Kafka requests carry no card number or security code in clear: pay with "
            "card_token (a stored card) or encrypted_card (card data encrypted to the "
            "platform key, security code inside)",
            [
                {
                    "field": f"body.{name}",
                    "message": "not accepted on Kafka; use card_token or encrypted_card",
                    "code": "card_data_in_clear",
                }
                for name in refused
            ],
        )
    try:
        return KafkaPaymentRequest.model_validate(document)
    except ValidationError as exc:
        raise invalid(_field_errors(exc, ())) from None


@dataclass(frozen=True)
class KafkaRequestDeps:
    pool: asyncpg.Pool
    protection: CardProtection
    client_encryption: ClientEncryption
    consumer: str


@dataclass(frozen=True)
class Prepared:
    """A request that passed validation: what it compares by and how it runs."""

    digest: str
    execute: Callable[[], Awaitable[Reply]]


@dataclass
class OperationRegistry:
    """operation name -> preparer (validates the body, returns a Prepared)."""

    preparers: dict[str, Callable[[KafkaRequestDeps, str, str, KafkaPaymentRequest], Prepared]] = (
        field(default_factory=dict)
    )


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
        raise invalid(_field_errors(exc, ("body", "encrypted_card"))) from None


def prepare_create(
    deps: KafkaRequestDeps, merchant_id: str, request_id: str, request: KafkaPaymentRequest
) -> Prepared:
    try:
        body = CreatePaymentRequest.model_validate(request.body)
    except ValidationError as exc:
        raise invalid(_field_errors(exc, ("body",))) from None
    card = (
        _open_encrypted_card(deps, body.encrypted_card.get_secret_value())
        if body.encrypted_card is not None
        else None
    )
    digest = request_hash({"operation": "create", "body": body.fingerprint_for_idempotency()})

    async def execute() -> Reply:
        try:
            response = await create_payment(
                deps.pool, deps.protection, merchant_id, body, f"kafka:{request_id}", card
            )
        except CardTokenNotFound:
            raise Rejected(
                404,
                "card-token-not-found",
                "No such card token",
                "card_token names no stored card of this merchant",
                [
                    {
                        "field": "body.card_token",
                        "message": "no such card token",
                        "code": "not_found",
                    }
                ],
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
        except IdempotencyConflict:
            raise request_id_reused() from None
        return Reply(request_id, "create", response.status, result=response.body)

    return Prepared(digest, execute)


def request_id_reused() -> Rejected:
    return Rejected(
        422,
        "request-id-reused",
        "Request id reused with a different request",
        "this request id was first used with another request; use a new request id for a new "
        "request",
    )


REGISTRY = OperationRegistry({"create": prepare_create})


async def answer(
    deps: KafkaRequestDeps,
    merchant_id: str,
    request_id: str,
    delivery_id: uuid.UUID,
    value: bytes,
    registry: OperationRegistry = REGISTRY,
) -> Reply | None:
    """Answer one authenticated request; None when this very delivery was answered already.

    `delivery_id` identifies the signed message (merchant, request id, timestamp, value): a
    redelivery after a crash is answered once; a merchant's resend (new timestamp) is answered
    again, from the stored answer when the request had already run.
    """
    if await answers.already_processed(deps.pool, deps.consumer, delivery_id):
        return None
    operation: str | None = None
    try:
        request = parse_request(value)
        operation = request.operation
        preparer = registry.preparers.get(request.operation)
        if preparer is None:
            raise Rejected(
                501,
                "operation-not-supported",
                "Operation not supported on Kafka yet",
                f"{request.operation} is not served on Kafka yet; use the HTTP API",
            )
        prepared = preparer(deps, merchant_id, request_id, request)
    except Rejected as exc:
        reply = Reply(request_id, operation, exc.status, problem=exc.problem)
        return await _send(deps, merchant_id, delivery_id, reply)
    previous = await answers.find_answer(deps.pool, merchant_id, request_id)
    if previous is not None:
        if previous["request_hash"] != prepared.digest:
            rejected = request_id_reused()
            reply = Reply(request_id, operation, rejected.status, problem=rejected.problem)
            return await _send(deps, merchant_id, delivery_id, reply)
        stored = Reply.from_value(json.loads(previous["reply"]))
        return await _send(deps, merchant_id, delivery_id, stored, replayed=True)
    try:
        reply = await prepared.execute()
    except Rejected as exc:
        reply = Reply(request_id, operation, exc.status, problem=exc.problem)
    return await _send(deps, merchant_id, delivery_id, reply, digest=prepared.digest)


async def _send(
    deps: KafkaRequestDeps,
    merchant_id: str,
    delivery_id: uuid.UUID,
    reply: Reply,
    *,
    digest: str | None = None,
    replayed: bool = False,
) -> Reply | None:
    """Inbox row, stored answer (when the request ran) and outbox reply in one transaction."""
    async with unit_of_work(deps.pool) as uow:
        if not await uow.mark_processed(deps.consumer, delivery_id, topics.MERCHANT_REQUESTS):
            return None  # answered by a concurrent delivery of the same message
        if digest is not None:
            await answers.save_answer(
                uow.conn,
                merchant_id,
                reply.request_id,
                reply.operation or "",
                digest,
                reply.status,
                reply.value(),
            )
        headers = [
            (MERCHANT_HEADER, merchant_id),
            (REQUEST_ID_HEADER, reply.request_id),
            ("content-type", "application/json"),
        ]
        if replayed:
            headers.append(("sanalpos-replayed", "true"))
        await answers.emit_reply(uow.conn, reply.request_id, reply.value(), headers)
    log.info(
        "kafka request answered: %s %d%s",
        reply.operation or "-",
        reply.status,
        " (replayed)" if replayed else "",
    )
    return reply
