"""Synchronous answers (`Prefer: wait=N` on POST /v1/payments) without polling.

The consumer that applies an outcome to the read model also sends
`pg_notify('payment_outcomes', <payment id>)` in its transaction when the event type ends a
wait (its `ends_wait` in intake.domain.outcomes), so PostgreSQL delivers it
at commit, to every intake replica. Each replica keeps one LISTEN connection
(adapters.outcome_listener) that wakes the local requests waiting on that payment id. A woken
request reads the payment row once. Whichever replica consumed the outcome, the request
waiting on another replica learns of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from intake.domain.outcomes import status_answers_wait
from intake.domain.payment import PaymentStatus
from sanalpos_common.db import Connection

OUTCOME_CHANNEL = "payment_outcomes"

_WAIT = re.compile(r'^\s*wait\s*=\s*"?(\d{1,6}(?:\.\d{1,3})?)"?\s*$', re.IGNORECASE)
_RESPOND_ASYNC = re.compile(r"^\s*respond-async\s*$", re.IGNORECASE)


def requested_wait(prefer: str | None, maximum_s: float) -> float | None:
    """Seconds to wait from RFC 7240 `Prefer` header values (`wait=N`), capped at
    `maximum_s`; None when no positive wait is asked for, or `respond-async` is. Anything
    unrecognised is ignored, as RFC 7240 asks."""
    if not prefer:
        return None
    wait: float | None = None
    for preference in prefer.split(","):
        token = preference.split(";", 1)[0]
        if _RESPOND_ASYNC.match(token):
            return None
        found = _WAIT.match(token)
        if found is not None and wait is None:
            wait = float(found.group(1))
    if wait is None or wait <= 0:
        return None
    return min(wait, maximum_s)


def format_wait(seconds: float) -> str:
    return str(int(seconds)) if seconds == int(seconds) else f"{seconds:g}"


def reached_outcome(row: Mapping[str, Any]) -> bool:
    """An outcome the shopper can be told: declined, requires_action, authorized (for a
    pre-authorization), captured (for a sale), or anything after those."""
    return status_answers_wait(PaymentStatus(row["status"]), is_sale=row["capture"])


@dataclass
class OutcomeWaiters:
    """Requests of this process waiting for an outcome, by payment id."""

    _waiting: dict[uuid.UUID, set[asyncio.Event]] = field(default_factory=dict)
    listening: bool = False
    """Whether the LISTEN connection is up: while it is down nobody could wake a waiter, so
    new requests are answered at once (202) instead of waiting."""

    @contextlib.contextmanager
    def register(self, payment_id: uuid.UUID) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._waiting.setdefault(payment_id, set()).add(event)
        try:
            yield event
        finally:
            events = self._waiting.get(payment_id)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._waiting[payment_id]

    def wake(self, payment_id: uuid.UUID) -> int:
        events = self._waiting.get(payment_id, ())
        for event in events:
            event.set()
        return len(events)

    def wake_all(self) -> int:
        """After a (re)connect: notifications sent while not listening are lost, so every
        waiter reads its row once more."""
        return sum(self.wake(payment_id) for payment_id in list(self._waiting))

    def __len__(self) -> int:
        return sum(len(events) for events in self._waiting.values())


ReadRow = Callable[[], Awaitable[Any]]
"""Reads the payment row (a mapping with `status` and `capture`), or None."""


async def wait_for_outcome(
    waiters: OutcomeWaiters, payment_id: uuid.UUID, timeout_s: float, read_row: ReadRow
) -> tuple[Any, bool]:
    """(the last row read, whether it shows an outcome). Registers first, then reads once:
    an outcome committed before the registration is in that read, one committed after it
    wakes us, so no wake-up is lost."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    with waiters.register(payment_id) as woken:
        row = await read_row()
        while row is None or not reached_outcome(row):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return row, False
            try:
                await asyncio.wait_for(woken.wait(), timeout=remaining)
            except TimeoutError:
                return row, False
            woken.clear()
            row = await read_row()
        return row, True


async def notify_outcome(conn: Connection, payment_id: uuid.UUID) -> None:
    """Call inside the transaction that applies the outcome: delivered only at commit."""
    await conn.execute("SELECT pg_notify($1, $2)", OUTCOME_CHANNEL, str(payment_id))


async def remember_answer(
    conn: Connection | asyncpg.Pool, merchant_id: str, idempotency_key: str, body: Mapping[str, Any]
) -> None:
    """A retry with the same Idempotency-Key replays what the first request answered: after a
    synchronous 201, that is the outcome rather than the 202 stored at creation."""
    await conn.execute(
        "UPDATE idempotency_keys SET response_status = 201, response_body = $3::jsonb "
        "WHERE merchant_id = $1 AND key = $2 AND response_status = 202",
        merchant_id,
        idempotency_key,
        json.dumps(body),
    )
