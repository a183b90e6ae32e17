"""Answering an authenticated merchant request that arrived on Kafka, exactly once.

The entry point (intake.entrypoints.kafka) has parsed and validated the request into a
`Prepared` operation that calls the same service-layer functions as HTTP; here it runs, its
refusals become problem details from the one table (intake.service_layer.errors), and its
answer is stored (for resends) and replied through the outbox. See
docs/kafka-entry-point.md for the contract and what "exactly once" means here.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg

from intake import PRODUCER
from intake.adapters import kafka_requests as answers
from intake.domain.request_signing import MERCHANT_HEADER, REQUEST_ID_HEADER
from intake.service_layer.card_protection import CardProtection
from intake.service_layer.client_encryption import ClientEncryption
from intake.service_layer.errors import refused_under
from intake.service_layer.idempotency import IdempotencyConflict, IdempotencyKeyInProgress
from intake.service_layer.problems import ProblemDetails, Refused
from sanalpos_common import topics
from sanalpos_common.db import UnitOfWork, unit_of_work

log = logging.getLogger(__name__)

FIELDS_UNDER = "body."
"""Field paths of refusals are relative to the message value, where the body is `body`."""


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

    @classmethod
    def refusal(cls, request_id: str, operation: str | None, problem: ProblemDetails) -> Reply:
        return cls(request_id, operation, problem.status, problem=problem.document())


@dataclass(frozen=True)
class KafkaRequestDeps:
    pool: asyncpg.Pool
    protection: CardProtection
    client_encryption: ClientEncryption
    consumer: str


@dataclass(frozen=True)
class Prepared:
    """A request that passed validation: its operation, what it is compared by between
    retries, and how it runs: `in_transaction` inside the reply's own transaction (state
    change, stored answer, reply and inbox row commit together), or `execute` in
    transactions of its own. Both return (status, result)."""

    operation: str
    digest: str
    execute: Callable[[], Awaitable[tuple[int, dict[str, Any]]]] | None = None
    in_transaction: Callable[[UnitOfWork], Awaitable[tuple[int, dict[str, Any]]]] | None = None


class RequestInProgress(TimeoutError):
    """Another execution holds this request id (a concurrent message with the same id, or one
    that crashed mid-way and whose claim has not expired yet). Unlike HTTP there is nobody to
    tell "retry later": the consumer loop retries it as a transient failure, with backoff,
    until the other execution has finished (its answer is then replayed) or its claim has
    expired (the request then runs)."""


REQUEST_ID_REUSED = ProblemDetails(
    422,
    "request-id-reused",
    "Request id reused with a different request",
    "this request id was first used with another request; use a new request id for a new request",
)


async def refuse(
    deps: KafkaRequestDeps,
    merchant_id: str,
    request_id: str,
    delivery_id: uuid.UUID,
    operation: str | None,
    problem: ProblemDetails,
) -> Reply | None:
    """Answer a request the entry point refused (unparsable, invalid); None when this very
    delivery was answered already. Refusals are not stored: a corrected request may be sent
    again under the same request id."""
    refusal = Reply.refusal(request_id, operation, problem)
    return await _send(deps, merchant_id, delivery_id, refusal)


async def answer(
    deps: KafkaRequestDeps,
    merchant_id: str,
    request_id: str,
    delivery_id: uuid.UUID,
    prepared: Prepared,
) -> Reply | None:
    """Answer one authenticated, validated request; None when this very delivery was
    answered already.

    `delivery_id` identifies the signed message (merchant, request id, timestamp, value): a
    redelivery after a crash is answered once; a merchant's resend (new timestamp) is answered
    again, from the stored answer when the request had succeeded. Only successes are stored.
    """
    processed, previous = await answers.processed_or_answered(
        deps.pool, deps.consumer, delivery_id, merchant_id, request_id
    )
    if processed:
        return None
    try:
        with _kafka_refusals():
            if prepared.in_transaction is not None:
                return await _run_with_reply(deps, merchant_id, request_id, delivery_id, prepared)
            if previous is not None:
                reply, replayed = _earlier_answer(previous, request_id, prepared)
                return await _send(deps, merchant_id, delivery_id, reply, replayed=replayed)
            assert prepared.execute is not None
            status, result = await prepared.execute()
    except Refused as exc:
        return await refuse(
            deps, merchant_id, request_id, delivery_id, prepared.operation, exc.problem
        )
    reply = Reply(request_id, prepared.operation, status, result=result)
    return await _send(deps, merchant_id, delivery_id, reply, digest=prepared.digest)


def _earlier_answer(
    previous: asyncpg.Record, request_id: str, prepared: Prepared
) -> tuple[Reply, bool]:
    """(the reply, replayed?) for a request id answered before: its stored answer for the
    same request, `request-id-reused` for another."""
    if previous["request_hash"] != prepared.digest:
        return Reply.refusal(request_id, prepared.operation, REQUEST_ID_REUSED), False
    return Reply.from_value(json.loads(previous["reply"])), True


@contextmanager
def _kafka_refusals() -> Iterator[None]:
    """The table's refusals, fields under `body.`; the request id is the idempotency key, so
    its conflicts are told in those words, and "in progress" is retried by the consumer."""
    with refused_under(FIELDS_UNDER):
        try:
            yield
        except IdempotencyConflict:
            raise Refused(REQUEST_ID_REUSED) from None
        except IdempotencyKeyInProgress:
            raise RequestInProgress from None


async def _run_with_reply(
    deps: KafkaRequestDeps,
    merchant_id: str,
    request_id: str,
    delivery_id: uuid.UUID,
    prepared: Prepared,
) -> Reply | None:
    """The request id's claim, the operation, its stored answer, its reply and the inbox row:
    one transaction. Another delivery of the request id (a resend, or a copy under another
    key running at the same moment) finds the claim, waits for it to commit and replays its
    answer without acting. A refusal raised by the operation rolls all of it back, claim
    included (the caller answers it; the request id stays unused)."""
    assert prepared.in_transaction is not None
    async with unit_of_work(deps.pool, PRODUCER) as uow:
        if not await uow.mark_processed(deps.consumer, delivery_id, topics.MERCHANT_REQUESTS):
            return None  # answered by a concurrent delivery of the same message
        if await answers.claim(
            uow.conn, merchant_id, request_id, prepared.operation, prepared.digest
        ):
            status, result = await prepared.in_transaction(uow)
            reply, replayed = Reply(request_id, prepared.operation, status, result=result), False
            await answers.complete(uow.conn, merchant_id, request_id, status, reply.value())
        else:
            previous = await answers.find_answer(uow.conn, merchant_id, request_id)
            if previous is None:  # purged between the two statements: take it again
                raise RequestInProgress(request_id)
            reply, replayed = _earlier_answer(previous, request_id, prepared)
        await _store_and_emit(uow, merchant_id, reply, None, replayed=replayed)
    _log(reply, replayed=replayed)
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
    async with unit_of_work(deps.pool, PRODUCER) as uow:
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
