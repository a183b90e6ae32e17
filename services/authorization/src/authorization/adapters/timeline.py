"""Authorization's records of one payment for `sanalpos trace`."""

from __future__ import annotations

import uuid

from sanalpos_common.db import Connection
from sanalpos_common.timeline import Entry, describe


async def payment_timeline(conn: Connection, payment_id: uuid.UUID) -> list[Entry]:
    row = await conn.fetchrow(
        "SELECT created_at, updated_at, status, response_code, captured_amount, currency "
        "FROM authorizations WHERE payment_id = $1",
        payment_id,
    )
    if row is None:
        return []
    entries = [
        Entry(
            row["created_at"],
            "issuer answered",
            describe(code=row["response_code"], now=row["status"]),
        )
    ]
    if row["updated_at"] > row["created_at"]:
        entries.append(
            Entry(
                row["updated_at"],
                f"last change: {row['status']}",
                describe(captured=f"{row['captured_amount']} {row['currency']}"),
            )
        )
    return entries
