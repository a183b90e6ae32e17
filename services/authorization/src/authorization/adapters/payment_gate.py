"""Where a payment's score and its review resolution meet: the lock that serialises them, and
whether the payment was scored already (authorized or declined, in review, or in a 3-D
Secure challenge), read across those three tables in one statement."""

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
        """Whether the payment was scored already and, when it was not, the resolution kept
        for it (taken once: deleted)."""
        row = await self.conn.fetchrow(
            f"WITH scored AS (SELECT {_SCORED} AS already), "  # noqa: S608 - constant
            "taken AS (DELETE FROM review_resolutions_before_score "
            "WHERE payment_id = $1 AND NOT (SELECT already FROM scored) "
            "RETURNING payment_id, merchant_id, decision, resolved_by) "
            "SELECT scored.already, taken.* FROM scored LEFT JOIN taken ON true",
            payment_id,
        )
        assert row is not None
        early = None
        if row["payment_id"] is not None:
            early = ReviewResolved.model_validate(
                {k: row[k] for k in ("payment_id", "merchant_id", "decision", "resolved_by")}
            )
        return ScoreArrival(bool(row["already"]), early)
