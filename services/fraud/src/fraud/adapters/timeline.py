"""Fraud's records of one payment for `sanalpos trace`: its decision (and review)."""

from __future__ import annotations

import uuid

from sanalpos_common.db import Connection
from sanalpos_common.timeline import Entry, describe


async def payment_timeline(conn: Connection, payment_id: uuid.UUID) -> list[Entry]:
    entries = []
    decision = await conn.fetchrow(
        "SELECT created_at, score, decision, reasons FROM fraud_decisions WHERE payment_id = $1",
        payment_id,
    )
    if decision is not None:
        entries.append(
            Entry(
                decision["created_at"],
                f"scored: {decision['decision']}",
                describe(score=decision["score"], reasons=",".join(decision["reasons"]) or None),
            )
        )
    review = await conn.fetchrow(
        "SELECT resolved_at FROM fraud_review_resolutions WHERE payment_id = $1", payment_id
    )
    if review is not None:
        entries.append(Entry(review["resolved_at"], "review resolved"))
    return entries
