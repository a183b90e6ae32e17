"""Answers to Kafka requests (table kafka_requests) and replies written to the outbox.

Replies are not our event envelope (they are the merchant-facing contract), so they are
inserted into the outbox table directly; the outbox relay publishes them like any other row.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from sanalpos_common import tracing
from sanalpos_common.db import Connection
from sanalpos_common.topics import MERCHANT_REPLIES


async def find_answer(
    conn: Connection | asyncpg.Pool, merchant_id: str, request_id: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT operation, request_hash, reply_status, reply FROM kafka_requests "
        "WHERE merchant_id = $1 AND request_id = $2",
        merchant_id,
        request_id,
    )


async def claim(
    conn: Connection, merchant_id: str, request_id: str, operation: str, request_hash: str
) -> bool:
    """In the operation's transaction, before it acts: take the request id. False when it is
    taken already; a concurrent transaction that took it first makes this wait until that one
    commits (then False: its answer is readable) or rolls back (then True). The claim row
    gets its answer (`complete`) in the same transaction, so no other reads it unanswered."""
    claimed = await conn.fetchval(
        "INSERT INTO kafka_requests (merchant_id, request_id, operation, request_hash, "
        "reply_status, reply) VALUES ($1, $2, $3, $4, 0, 'null'::jsonb) "
        "ON CONFLICT DO NOTHING RETURNING 1",
        merchant_id,
        request_id,
        operation,
        request_hash,
    )
    return claimed is not None


async def complete(
    conn: Connection, merchant_id: str, request_id: str, status: int, reply: dict[str, Any]
) -> None:
    """The answer of a request id this transaction claimed."""
    await conn.execute(
        "UPDATE kafka_requests SET reply_status = $3, reply = $4::jsonb "
        "WHERE merchant_id = $1 AND request_id = $2",
        merchant_id,
        request_id,
        status,
        json.dumps(reply),
    )


async def save_answer(
    conn: Connection,
    merchant_id: str,
    request_id: str,
    operation: str,
    request_hash: str,
    status: int,
    reply: dict[str, Any],
) -> None:
    await conn.execute(
        "INSERT INTO kafka_requests (merchant_id, request_id, operation, request_hash, "
        "reply_status, reply) VALUES ($1, $2, $3, $4, $5, $6::jsonb) ON CONFLICT DO NOTHING",
        merchant_id,
        request_id,
        operation,
        request_hash,
        status,
        json.dumps(reply),
    )


async def processed_or_answered(
    pool: asyncpg.Pool, consumer: str, delivery_id: uuid.UUID, merchant_id: str, request_id: str
) -> tuple[bool, asyncpg.Record | None]:
    """(this delivery handled before?, the request id's stored row as `find_answer` reads
    it, or None), in one statement."""
    row = await pool.fetchrow(
        "SELECT EXISTS (SELECT 1 FROM inbox WHERE consumer = $1 AND message_id = $2) "
        "AS processed, k.merchant_id IS NOT NULL AS found, "
        "k.operation, k.request_hash, k.reply_status, k.reply "
        "FROM (SELECT 1) AS one LEFT JOIN kafka_requests k "
        "ON k.merchant_id = $3 AND k.request_id = $4",
        consumer,
        delivery_id,
        merchant_id,
        request_id,
    )
    assert row is not None  # one row always: the LEFT JOIN keeps it
    return bool(row["processed"]), row if row["found"] else None


async def emit_reply(
    conn: Connection, request_id: str, value: dict[str, Any], headers: list[tuple[str, str]]
) -> uuid.UUID:
    """Outbox row for the reply topic, keyed by the merchant's request id."""
    reply_id = uuid.uuid4()
    if (traceparent := tracing.current_traceparent()) is not None:
        headers = [*headers, (tracing.TRACEPARENT, traceparent)]  # the merchant can follow it
    await conn.execute(
        "INSERT INTO outbox (topic, message_key, message_id, payload, headers) "
        "VALUES ($1, $2, $3, $4, $5::jsonb)",
        MERCHANT_REPLIES,
        request_id,
        reply_id,
        json.dumps(value, separators=(",", ":")).encode(),
        json.dumps([["sanalpos-reply-id", str(reply_id)], *[[k, v] for k, v in headers]]),
    )
    return reply_id


async def purge_answers(pool: asyncpg.Pool, older_than_hours: int) -> int:
    result = await pool.execute(
        "DELETE FROM kafka_requests WHERE created_at < now() - make_interval(hours => $1)",
        older_than_hours,
    )
    return int(result.split()[-1])
