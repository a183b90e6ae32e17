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
from intake.service_layer.card_protection import CardProtection
from intake.service_layer.client_encryption import ClientEncryption
from sanalpos_common import topics
from sanalpos_common.db import UnitOfWork, unit_of_work

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


def field_errors(exc: ValidationError, prefix: tuple[str, ...]) -> list[dict[str, str]]:
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
        raise invalid(field_errors(exc, ())) from None


@dataclass(frozen=True)
class KafkaRequestDeps:
    pool: asyncpg.Pool
    protection: CardProtection
    client_encryption: ClientEncryption
    consumer: str


@dataclass(frozen=True)
class Prepared:
    """A request that passed validation: what it is compared by between retries, and how it
    runs: `in_transaction` inside the reply's own transaction (state change, stored answer,
    reply and inbox row commit together), or `execute` in transactions of its own."""

    digest: str
    execute: Callable[[], Awaitable[Reply]] | None = None
    in_transaction: Callable[[UnitOfWork], Awaitable[Reply]] | None = None


Preparer = Callable[[KafkaRequestDeps, str, str, KafkaPaymentRequest], Prepared]


@dataclass(frozen=True)
class OperationRegistry:
    """operation name -> preparer (validates the body and says how the request runs)."""

    preparers: dict[str, Preparer] = field(default_factory=dict)


def request_id_reused() -> Rejected:
    return Rejected(
        422,
        "request-id-reused",
        "Request id reused with a different request",
        "this request id was first used with another request; use a new request id for a new "
        "request",
    )


def _refusal(request_id: str, operation: str | None, exc: Rejected) -> Reply:
    return Reply(request_id, operation, exc.status, problem=exc.problem)


async def answer(
    deps: KafkaRequestDeps,
    registry: OperationRegistry,
    merchant_id: str,
    request_id: str,
    delivery_id: uuid.UUID,
    value: bytes,
) -> Reply | None:
    """Answer one authenticated request; None when this very delivery was answered already.

    `delivery_id` identifies the signed message (merchant, request id, timestamp, value): a
    redelivery after a crash is answered once; a merchant's resend (new timestamp) is answered
    again, from the stored answer when the request had succeeded. Only successes are stored:
    a refused request may be corrected and sent again under the same request id.
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
                "Operation not supported on Kafka",
                f"{request.operation} is not served on Kafka; use the HTTP API",
            )
        prepared = preparer(deps, merchant_id, request_id, request)
    except Rejected as exc:
        return await _send(deps, merchant_id, delivery_id, _refusal(request_id, operation, exc))
    previous = await answers.find_answer(deps.pool, merchant_id, request_id)
    if previous is not None:
        if previous["request_hash"] != prepared.digest:
            reused = _refusal(request_id, operation, request_id_reused())
            return await _send(deps, merchant_id, delivery_id, reused)
        stored = Reply.from_value(json.loads(previous["reply"]))
        return await _send(deps, merchant_id, delivery_id, stored, replayed=True)
    try:
        if prepared.in_transaction is not None:
            return await _run_with_reply(deps, merchant_id, delivery_id, prepared)
        assert prepared.execute is not None
        reply = await prepared.execute()
    except Rejected as exc:
        return await _send(deps, merchant_id, delivery_id, _refusal(request_id, operation, exc))
    return await _send(deps, merchant_id, delivery_id, reply, digest=prepared.digest)


async def _run_with_reply(
    deps: KafkaRequestDeps, merchant_id: str, delivery_id: uuid.UUID, prepared: Prepared
) -> Reply | None:
    """The operation, its stored answer, its reply and the inbox row: one transaction. A
    refusal raised by the operation rolls all of it back (the caller answers it)."""
    assert prepared.in_transaction is not None
    async with unit_of_work(deps.pool) as uow:
        if not await uow.mark_processed(deps.consumer, delivery_id, topics.MERCHANT_REQUESTS):
            return None  # answered by a concurrent delivery of the same message
        reply = await prepared.in_transaction(uow)
        await _store_and_emit(uow, merchant_id, reply, prepared.digest, replayed=False)
    _log(reply, replayed=False)
    return reply


async def _send(
    deps: KafkaRequestDeps,
    merchant_id: str,
    delivery_id: uuid.UUID,
    reply: Reply,
    *,
    digest: str | None = None,
    replayed: bool = False,
) -> Reply | None:
    """Inbox row, stored answer (for a success) and outbox reply in one transaction."""
    async with unit_of_work(deps.pool) as uow:
        if not await uow.mark_processed(deps.consumer, delivery_id, topics.MERCHANT_REQUESTS):
            return None  # answered by a concurrent delivery of the same message
        await _store_and_emit(uow, merchant_id, reply, digest, replayed=replayed)
    _log(reply, replayed=replayed)
    return reply


async def _store_and_emit(
    uow: UnitOfWork, merchant_id: str, reply: Reply, digest: str | None, *, replayed: bool
) -> None:
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


def _log(reply: Reply, *, replayed: bool) -> None:
    log.info(
        "kafka request answered: %s %d%s",
        reply.operation or "-",
        reply.status,
        " (replayed)" if replayed else "",
    )
