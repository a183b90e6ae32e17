"""A payment's timeline as each service's own database records it (for `sanalpos trace`).

Every service holds the same plumbing tables: its outbox (the events it emitted for the
payment, keyed by payment id, with when they were written and published) and its inbox (the
messages it consumed, by message id). Those are read here. A service adds its own domain
records (decision, authorization, ledger, deliveries...) through the entry-point group
`sanalpos.timeline`: service name -> async callable(conn, payment_id) -> list[Entry].
Each query runs on that service's own database only.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sanalpos_common.db import Connection


@dataclass(frozen=True)
class Entry:
    at: datetime
    what: str
    detail: str = ""
    message_id: uuid.UUID | None = None
    """Set on outbox/inbox entries: links an emitted event to where it was consumed."""


@dataclass(frozen=True)
class ServiceEntry:
    service: str
    entry: Entry


DomainTimeline = Callable[[Connection, uuid.UUID], Awaitable[list[Entry]]]


async def emitted(conn: Connection, payment_id: uuid.UUID) -> list[Entry]:
    """The payment's events in this service's outbox (kept for the relay's retention)."""
    rows = await conn.fetch(
        "SELECT topic, message_id, created_at, published_at FROM outbox "
        "WHERE message_key = $1 ORDER BY id",
        str(payment_id),
    )
    entries = []
    for row in rows:
        published = row["published_at"]
        detail = (
            f"published after {_ms(row['created_at'], published):.0f} ms"
            if published is not None
            else "not published yet"
        )
        entries.append(
            Entry(row["created_at"], f"emitted {row['topic']}", detail, row["message_id"])
        )
    return entries


async def consumed(conn: Connection, message_ids: Sequence[uuid.UUID]) -> list[Entry]:
    """Which of these messages this service's consumers recorded in their inbox."""
    if not message_ids:
        return []
    rows = await conn.fetch(
        "SELECT consumer, message_id, topic, processed_at FROM inbox "
        "WHERE message_id = ANY($1::uuid[]) ORDER BY processed_at",
        list(message_ids),
    )
    return [
        Entry(r["processed_at"], f"consumed {r['topic']}", f"by {r['consumer']}", r["message_id"])
        for r in rows
    ]


def _ms(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() * 1000


def ordered(entries: Sequence[ServiceEntry]) -> list[tuple[ServiceEntry, float, float | None]]:
    """Entries by time, each with ms since the first and, for a consumed message, the hop:
    ms from when its producer wrote it to the outbox until the consumer took it."""
    by_time = sorted(entries, key=lambda e: e.entry.at)
    if not by_time:
        return []
    first = by_time[0].entry.at
    written = {
        e.entry.message_id: e.entry.at
        for e in by_time
        if e.entry.message_id is not None and e.entry.what.startswith("emitted ")
    }
    rows: list[tuple[ServiceEntry, float, float | None]] = []
    for item in by_time:
        hop = None
        message = item.entry.message_id
        if item.entry.what.startswith("consumed ") and message in written:
            hop = _ms(written[message], item.entry.at)
        rows.append((item, _ms(first, item.entry.at), hop))
    return rows


def describe(**fields: Any) -> str:
    """`k=v` pairs of the fields that are set, for an entry's detail column."""
    return " ".join(f"{k}={v}" for k, v in fields.items() if v is not None and v != "")
