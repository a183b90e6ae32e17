"""Idempotency keys for every merchant POST, scoped to the merchant.

1. *Claim* the key in its own short transaction: a row in state `in_progress` with a claim id
   and `locked_until`. A concurrent request with the key finds the claim and is told "in
   progress" (HTTP 409, retry later); a finished key replays its response; a key first used
   for another request (other endpoint or body) is a conflict (HTTP 422).
2. Do the work and *complete* the key (state `done`, the response to replay) in the work's
   own transaction, so the effect and the stored response commit together: exactly once.
3. Work that fails (a refused operation, an error) rolls back and *releases* the claim, so
   the merchant may retry with the same key. A request that crashed leaves its claim behind;
   it becomes reclaimable once `locked_until` has passed.
Keys are kept at least `RETENTION`; `purge_forever` deletes older ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg

from intake import PRODUCER
from intake.adapters.payments import IdempotencyRepository
from sanalpos_common.db import Connection, UnitOfWork, unit_of_work

log = logging.getLogger(__name__)

LOCK_FOR = timedelta(seconds=60)
RETENTION = timedelta(hours=24)
_CLAIM_ATTEMPTS = 5


@dataclass(frozen=True)
class Response:
    status: int
    body: dict[str, Any]
    replayed: bool = False
    stored: dict[str, Any] | None = None
    """What is kept for replays when it differs from `body` (a secret in it sealed); the
    endpoint's `reopen` turns it back into the body."""


@dataclass(frozen=True)
class IdempotencyScope:
    merchant_id: str
    key: str
    endpoint: str  # e.g. "POST /v1/payments/<id>/capture": one key, one operation
    digest: str  # request_hash of the body as compared between retries


class IdempotencyConflict(Exception):
    """Same Idempotency-Key, different request (body or endpoint)."""


class IdempotencyKeyInProgress(Exception):
    """Another request with this key is executing; retry once it has finished."""


class _ClaimLost(Exception):
    """Our claim expired and another request took the key over."""


def request_hash(body: Mapping[str, Any]) -> str:
    """What a retry is compared by (its body as compared, never card secrets)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def idempotency_scope(
    merchant_id: str, key: str | None, endpoint: str, compared: Mapping[str, Any]
) -> IdempotencyScope | None:
    """The key's scope: merchant, key, operation (e.g. "POST /v1/payments/<id>/capture") and
    the body as compared; None without a key."""
    if key is None:
        return None
    return IdempotencyScope(merchant_id, key, endpoint, request_hash(compared))


Execute = Callable[[uuid.UUID], Awaitable[Response]]
Work = Callable[[UnitOfWork], Awaitable[Response]]
Reopen = Callable[[dict[str, Any]], dict[str, Any]]


async def run_idempotent(
    pool: asyncpg.Pool, scope: IdempotencyScope, execute: Execute, lock_for: timedelta = LOCK_FOR
) -> Response:
    """Runs `execute(claim_id)` at most once per key. `execute` must complete the key in its
    own transaction (`complete`, or `IdempotencyRepository.save` for payment creation)."""
    for _ in range(_CLAIM_ATTEMPTS):
        claim_id = uuid.uuid4()
        replay = await claim(pool, scope, claim_id, lock_for)
        if replay is not None:
            return replay
        try:
            return await execute(claim_id)
        except _ClaimLost:
            continue  # the next claim replays the other request's response or says in progress
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.shield(release(pool, scope, claim_id))
            raise
    raise IdempotencyKeyInProgress(scope.key)


async def run_in_transaction(
    pool: asyncpg.Pool, scope: IdempotencyScope | None, work: Work, reopen: Reopen | None = None
) -> Response:
    """`work` in one unit of work; with a key, exactly once, its response completing the key
    in the same transaction. A replayed answer goes through `reopen` (see Response.stored)."""
    if scope is None:
        async with unit_of_work(pool, PRODUCER) as uow:
            return await work(uow)

    async def execute(claim_id: uuid.UUID) -> Response:
        async with unit_of_work(pool, PRODUCER) as uow:
            response = await work(uow)
            await complete(uow.conn, scope, claim_id, response)
        return response

    response = await run_idempotent(pool, scope, execute)
    if response.replayed and reopen is not None:
        return Response(response.status, reopen(response.body), replayed=True)
    return response


async def claim(
    pool: asyncpg.Pool, scope: IdempotencyScope, claim_id: uuid.UUID, lock_for: timedelta
) -> Response | None:
    """None when this request now holds the key; the stored response when it is done."""
    keys = IdempotencyRepository(pool)
    for _ in range(_CLAIM_ATTEMPTS):
        if await keys.claim(
            scope.merchant_id,
            scope.key,
            scope.endpoint,
            scope.digest,
            claim_id,
            lock_for.total_seconds(),
        ):
            return None
        existing = await keys.lookup(scope.merchant_id, scope.key)
        if existing is None:
            continue  # released between our two statements: try to claim again
        if existing["endpoint"] != scope.endpoint or existing["request_hash"] != scope.digest:
            raise IdempotencyConflict(scope.key)
        if existing["state"] == "done":
            body = existing["response_body"]
            return Response(
                existing["response_status"],
                json.loads(body) if isinstance(body, str) else body,
                replayed=True,
            )
        raise IdempotencyKeyInProgress(scope.key)
    raise IdempotencyKeyInProgress(scope.key)


async def complete(
    conn: Connection, scope: IdempotencyScope, claim_id: uuid.UUID, response: Response
) -> None:
    """In the work's transaction: store the response; refuses (rolling the work back) when
    the claim was lost to another request after it expired."""
    if not await IdempotencyRepository(conn).complete(
        scope.merchant_id,
        scope.key,
        claim_id,
        response.status,
        response.body if response.stored is None else response.stored,
    ):
        raise _ClaimLost(scope.key)


async def release(pool: asyncpg.Pool, scope: IdempotencyScope, claim_id: uuid.UUID) -> None:
    await IdempotencyRepository(pool).release(scope.merchant_id, scope.key, claim_id)


async def purge_forever(
    pool: asyncpg.Pool, stop: asyncio.Event, every_s: float = 600.0, keep: timedelta = RETENTION
) -> None:
    """Deletes keys older than `keep` (at least 24 hours), every `every_s` seconds."""
    while not stop.is_set():
        try:
            await purge_once(pool, keep)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("idempotency key purge failed: %s", type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every_s)


async def purge_once(pool: asyncpg.Pool, keep: timedelta = RETENTION) -> int:
    purged = await IdempotencyRepository(pool).purge(keep.total_seconds())
    if purged:
        log.info("purged %d idempotency keys older than %s", purged, keep)
    return purged
