"""Where a payment's score and its review resolution meet: the lock that serialises them, and
whether the payment was scored already (authorized or declined, in review, or in a 3-D
Secure challenge), read across those three tables in one statement (for a score, in the
same round trip as the lock)."""

from __future__ import annotations

from dataclasses import dataclass

from sanalpos_common.db import Connection
from sanalpos_common.schemas.events import ReviewResolved

_SCORED = (
    "EXISTS (SELECT FROM authorizations WHERE payment_id = $1) "
    "OR EXISTS (SELECT FROM reviews WHERE payment_id = $1) "
    "OR EXISTS (SELECT FROM three_ds_challenges WHERE payment_id = $1)"
)


@dataclass(frozen=True)
class ScoreArrival:
    already_scored: bool
    early_resolution: ReviewResolved | None
    """The resolution read before this score, taken (deleted); None when already scored."""


class PaymentGate:
    """The lock is the same advisory lock (a transaction's, on the payment id) in `lock` and
    in `score_arrived`."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def lock(self, payment_id: object) -> None:
        """Serializes this payment's score and resolution until the transaction ends: each
        then sees what the other committed (an early resolution and the score that takes it
        cannot pass each other unseen). Its own statement, so that the reads after it take
        their snapshot once the lock is held."""
        await self.conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1::text, 7301))", str(payment_id)
        )

    async def already_scored(self, payment_id: object) -> bool:
        return bool(await self.conn.fetchval(f"SELECT {_SCORED}", payment_id))

    async def score_arrived(self, payment_id: object) -> ScoreArrival:
        """`lock`, then whether the payment was scored already and, when it was not, the
        resolution kept for it (taken once: deleted). One round trip: a function (migration
        0008) whose reads take their snapshot once the lock is held."""
        row = await self.conn.fetchrow(
            "SELECT * FROM authorization_score_arrived($1)", str(payment_id)
        )
        assert row is not None
        early = None
        if row["early_merchant_id"] is not None:
            early = ReviewResolved.model_validate(
                {
                    "payment_id": payment_id,
                    "merchant_id": row["early_merchant_id"],
                    "decision": row["early_decision"],
                    "resolved_by": row["early_resolved_by"],
                }
            )
        return ScoreArrival(bool(row["already_scored"]), early)
