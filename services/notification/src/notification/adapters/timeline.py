"""Notification's records of one payment for `sanalpos trace`: webhook deliveries, shopper
emails and their attempts (never an address or a body)."""

from __future__ import annotations

import uuid

from sanalpos_common.db import Connection
from sanalpos_common.timeline import Entry, describe


async def payment_timeline(conn: Connection, payment_id: uuid.UUID) -> list[Entry]:
    entries = []
    for row in await conn.fetch(
        "SELECT d.event_type, d.status, d.created_at, a.attempt, a.attempted_at, a.status_code, "
        "a.error, a.duration_ms FROM webhook_deliveries d "
        "LEFT JOIN webhook_attempts a ON a.delivery_id = d.id "
        "WHERE d.payment_id = $1 ORDER BY d.created_at, a.attempt",
        payment_id,
    ):
        if row["attempt"] is None or row["attempt"] == 1:
            entries.append(
                Entry(row["created_at"], f"webhook queued: {row['event_type']}", row["status"])
            )
        if row["attempt"] is not None:
            entries.append(
                Entry(
                    row["attempted_at"],
                    f"webhook attempt {row['attempt']}: {row['event_type']}",
                    describe(
                        status=row["status_code"],
                        error=(row["error"] or "")[:60],
                        took=f"{row['duration_ms']} ms",
                    ),
                )
            )
    for row in await conn.fetch(
        "SELECT e.kind, e.locale, e.status, e.created_at, a.attempt, a.attempted_at, "
        "a.smtp_code, a.error, a.duration_ms FROM shopper_emails e "
        "LEFT JOIN shopper_email_attempts a ON a.email_id = e.id "
        "WHERE e.payment_id = $1 ORDER BY e.created_at, a.attempt",
        payment_id,
    ):
        if row["attempt"] is None or row["attempt"] == 1:
            entries.append(
                Entry(
                    row["created_at"],
                    f"shopper email queued: {row['kind']} ({row['locale']})",
                    row["status"],
                )
            )
        if row["attempt"] is not None:
            entries.append(
                Entry(
                    row["attempted_at"],
                    f"shopper email attempt {row['attempt']}: {row['kind']}",
                    describe(
                        smtp=row["smtp_code"],
                        error=(row["error"] or "")[:60],
                        took=f"{row['duration_ms']} ms",
                    ),
                )
            )
    return sorted(entries, key=lambda e: e.at)
