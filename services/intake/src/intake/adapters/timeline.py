"""Intake's records of one payment for `sanalpos trace`: the payment and its event timeline."""

from __future__ import annotations

import uuid

from sanalpos_common.db import Connection
from sanalpos_common.timeline import Entry, describe


async def payment_timeline(conn: Connection, payment_id: uuid.UUID) -> list[Entry]:
    payment = await conn.fetchrow(
        "SELECT created_at, amount, currency, capture, status FROM payments WHERE id = $1",
        payment_id,
    )
    if payment is None:
        return []
    entries = [
        Entry(
            payment["created_at"],
            "payment accepted",
            describe(
                amount=f"{payment['amount']} {payment['currency']}",
                capture=payment["capture"],
                now=payment["status"],
            ),
        )
    ]
    for row in await conn.fetch(
        "SELECT type, occurred_at FROM payment_events WHERE payment_id = $1 ORDER BY occurred_at",
        payment_id,
    ):
        entries.append(Entry(row["occurred_at"], f"timeline: {row['type']}"))
    return entries
