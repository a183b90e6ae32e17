"""Settlement's records of one payment for `sanalpos trace`: ledger postings and its batch."""

from __future__ import annotations

import uuid

from sanalpos_common.db import Connection
from sanalpos_common.timeline import Entry, describe


async def payment_timeline(conn: Connection, payment_id: uuid.UUID) -> list[Entry]:
    entries = [
        Entry(row["created_at"], f"ledger: {row['kind']}", describe(currency=row["currency"]))
        for row in await conn.fetch(
            "SELECT kind, currency, created_at FROM ledger_transactions "
            "WHERE payment_id = $1 ORDER BY created_at",
            payment_id,
        )
    ]
    batch = await conn.fetchrow(
        "SELECT p.status, p.fee_amount, b.id, b.closed_at FROM settlement_payments p "
        "JOIN settlement_batches b ON b.id = p.batch_id WHERE p.payment_id = $1",
        payment_id,
    )
    if batch is not None and batch["closed_at"] is not None:
        entries.append(
            Entry(
                batch["closed_at"],
                "batch closed",
                describe(batch=batch["id"], fee=batch["fee_amount"], now=batch["status"]),
            )
        )
    return entries
