"""End-of-day batches and the captured payments waiting in them.

Locking: whoever books into a batch holds its row FOR SHARE until commit; closing takes it
FOR UPDATE. So a close waits for bookings in flight, and a booking that waited on a close sees
the batch closed and opens the next one. Both take the batch lock before any payment row.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sanalpos_common.db import Connection
from settlement.adapters.merchants import PROFILE_COLUMNS, profile_of
from settlement.domain.batches import BatchLine, BatchTotals
from settlement.domain.ledger import Direction, Kind, LedgerTransaction
from settlement.domain.merchants import MerchantProfile

_OPEN_BATCH = (
    "SELECT id FROM settlement_batches WHERE merchant_id = $1 AND currency = $2 "
    "AND batch_date = $3 AND status = 'open' FOR SHARE"
)


@dataclass(frozen=True)
class BatchCounts:
    payments: int
    refunds: int
    reversals: int


class BatchRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def open_batch(
        self, merchant_id: str, currency: str, day: date, closes_at: datetime
    ) -> uuid.UUID:
        """The open batch of that merchant, currency and date, opened if there is none."""
        while True:
            found = await self.conn.fetchval(_OPEN_BATCH, merchant_id, currency, day)
            if found is not None:
                return found
            created = await self.conn.fetchval(
                "INSERT INTO settlement_batches (id, merchant_id, currency, batch_date, "
                "closes_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING id",
                uuid.uuid4(),
                merchant_id,
                currency,
                day,
                closes_at,
            )
            if created is not None:
                return created
            # another transaction opened it between our two statements: take that one

    async def lock_if_open(self, batch_id: uuid.UUID) -> bool:
        found = await self.conn.fetchval(
            "SELECT 1 FROM settlement_batches WHERE id = $1 AND status = 'open' FOR SHARE",
            batch_id,
        )
        return found is not None

    async def open_batches_of(self, merchant_id: str) -> list[tuple[uuid.UUID, date]]:
        rows = await self.conn.fetch(
            "SELECT id, batch_date FROM settlement_batches "
            "WHERE merchant_id = $1 AND status = 'open'",
            merchant_id,
        )
        return [(r["id"], r["batch_date"]) for r in rows]

    async def reschedule(self, schedule: list[tuple[uuid.UUID, datetime]]) -> None:
        await self.conn.executemany(
            "UPDATE settlement_batches SET closes_at = $2 WHERE id = $1 AND status = 'open'",
            schedule,
        )

    async def lock_for_close(self, batch_id: uuid.UUID) -> Any | None:
        """The open batch, locked against bookings; None when it is (already) closed."""
        return await self.conn.fetchrow(
            "SELECT id, merchant_id, currency, batch_date FROM settlement_batches "
            "WHERE id = $1 AND status = 'open' FOR UPDATE",
            batch_id,
        )

    async def lines(self, batch_id: uuid.UUID) -> list[BatchLine]:
        rows = await self.conn.fetch(
            "SELECT t.kind, e.account, e.direction, sum(e.amount) AS amount "
            "FROM ledger_transactions t JOIN ledger_entries e ON e.transaction_id = t.id "
            "JOIN settlement_batches b ON b.id = t.batch_id "
            # a converted payment's lines in its own currency are not the batch's money
            "WHERE t.batch_id = $1 AND e.currency = b.currency "
            "GROUP BY t.kind, e.account, e.direction",
            batch_id,
        )
        return [
            BatchLine(Kind(r["kind"]), r["account"], Direction(r["direction"]), int(r["amount"]))
            for r in rows
        ]

    async def transaction_counts(self, batch_id: uuid.UUID) -> dict[Kind, int]:
        rows = await self.conn.fetch(
            "SELECT kind, count(*) AS n FROM ledger_transactions WHERE batch_id = $1 GROUP BY kind",
            batch_id,
        )
        return {Kind(r["kind"]): r["n"] for r in rows}

    async def mark_closed(
        self,
        batch_id: uuid.UUID,
        *,
        totals: BatchTotals,
        counts: BatchCounts,
        value_date: date,
        reason: str,
        closed_at: datetime,
    ) -> None:
        await self.conn.execute(
            "UPDATE settlement_batches SET status = 'closed', closed_at = $2, close_reason = $3, "
            "value_date = $4, gross_amount = $5, fee_amount = $6, refund_amount = $7, "
            "reversal_amount = $8, net_amount = $9, payment_count = $10, refund_count = $11, "
            "reversal_count = $12 WHERE id = $1",
            batch_id,
            closed_at,
            reason,
            value_date,
            totals.gross,
            totals.fees,
            totals.refunds,
            totals.reversals,
            totals.net,
            counts.payments,
            counts.refunds,
            counts.reversals,
        )

    async def due(self, now: datetime, limit: int = 100) -> list[uuid.UUID]:
        rows = await self.conn.fetch(
            "SELECT id FROM settlement_batches WHERE status = 'open' AND closes_at <= $1 "
            "ORDER BY closes_at LIMIT $2",
            now,
            limit,
        )
        return [r["id"] for r in rows]

    async def open_ids(self, merchant_id: str | None) -> list[uuid.UUID]:
        rows = await self.conn.fetch(
            "SELECT id FROM settlement_batches WHERE status = 'open' "
            "AND ($1::text IS NULL OR merchant_id = $1) ORDER BY closes_at",
            merchant_id,
        )
        return [r["id"] for r in rows]

    async def by_ids(self, batch_ids: list[uuid.UUID]) -> list[dict[str, Any]]:
        rows = await self.conn.fetch(
            "SELECT * FROM settlement_batches WHERE id = ANY($1::uuid[])", batch_ids
        )
        return [dict(r) for r in rows]

    async def listing(
        self, merchant_id: str | None, status: str | None, limit: int
    ) -> list[dict[str, Any]]:
        rows = await self.conn.fetch(
            "SELECT * FROM settlement_batches WHERE ($1::text IS NULL OR merchant_id = $1) "
            "AND ($2::text IS NULL OR status = $2) "
            "ORDER BY batch_date DESC, opened_at DESC LIMIT $3",
            merchant_id,
            status,
            limit,
        )
        return [dict(r) for r in rows]


@dataclass(frozen=True)
class CapturedPayment:
    payment_id: uuid.UUID
    merchant_id: str
    currency: str
    batch_id: uuid.UUID
    capture_transaction_id: uuid.UUID
    gross: int
    fee: int
    status: str
    installments: int = 1


class PaymentRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def add_captured(self, payment: CapturedPayment) -> None:
        await self.conn.execute(
            "INSERT INTO settlement_payments (payment_id, merchant_id, currency, batch_id, "
            "capture_transaction_id, gross_amount, fee_amount, status, installments) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            payment.payment_id,
            payment.merchant_id,
            payment.currency,
            payment.batch_id,
            payment.capture_transaction_id,
            payment.gross,
            payment.fee,
            payment.status,
            payment.installments,
        )

    async def get(self, payment_id: uuid.UUID) -> CapturedPayment | None:
        row = await self.conn.fetchrow(
            "SELECT * FROM settlement_payments WHERE payment_id = $1", payment_id
        )
        return None if row is None else _payment(row)

    async def mark_voided(self, payment_id: uuid.UUID) -> None:
        await self.conn.execute(
            "UPDATE settlement_payments SET status = 'voided', updated_at = now() "
            "WHERE payment_id = $1",
            payment_id,
        )

    async def settle_batch(self, batch_id: uuid.UUID) -> list[CapturedPayment]:
        """Every payment still captured in the batch becomes settled."""
        rows = await self.conn.fetch(
            "UPDATE settlement_payments SET status = 'settled', updated_at = now() "
            "WHERE batch_id = $1 AND status = 'captured' RETURNING *",
            batch_id,
        )
        return [_payment(r) for r in rows]

    async def remember_early_void(self, payment_id: uuid.UUID, message_id: uuid.UUID) -> None:
        await self.conn.execute(
            "INSERT INTO voids_before_capture (payment_id, message_id) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING",
            payment_id,
            message_id,
        )

    async def take_early_void(self, payment_id: uuid.UUID) -> bool:
        taken = await self.conn.fetchval(
            "DELETE FROM voids_before_capture WHERE payment_id = $1 RETURNING 1", payment_id
        )
        return taken is not None


def _payment(row: Any) -> CapturedPayment:
    return CapturedPayment(
        payment_id=row["payment_id"],
        merchant_id=row["merchant_id"],
        currency=row["currency"].strip(),
        batch_id=row["batch_id"],
        capture_transaction_id=row["capture_transaction_id"],
        gross=row["gross_amount"],
        fee=row["fee_amount"],
        status=row["status"],
        installments=row["installments"],
    )


@dataclass(frozen=True)
class CaptureBooking:
    batch_id: uuid.UUID
    recorded: bool
    """False when the capture transaction was in the ledger already (a redelivery)."""
    early_void: bool
    """A void read before this capture was waiting for it (and is now taken)."""


# A capture's booking in one statement. Each part reads the one before it, which orders them
# as the separate statements were: the open batch is locked FOR SHARE first (a close, which
# takes it FOR UPDATE, waits for us, or we wait for it and then find no open batch), then the
# ledger transaction (ON CONFLICT: a redelivery inserts nothing, so nothing below runs), its
# entries in their order, the payment row, and the early void taken.
_BOOK_CAPTURE = """
WITH b AS (
    SELECT id FROM settlement_batches
    WHERE merchant_id = $3 AND currency = $10 AND batch_date = $11 AND status = 'open'
    FOR SHARE
), t AS (
    INSERT INTO ledger_transactions (id, payment_id, merchant_id, kind, currency, batch_id)
    SELECT $1, $2, $3, $4, $5, b.id FROM b
    ON CONFLICT DO NOTHING
    RETURNING id, batch_id
), e AS (
    INSERT INTO ledger_entries (transaction_id, account, direction, amount, currency)
    SELECT t.id, x.account, x.direction, x.amount, x.currency
    FROM t, unnest($6::text[], $7::text[], $8::bigint[], $9::text[])
        WITH ORDINALITY AS x(account, direction, amount, currency, n)
    ORDER BY x.n
), p AS (
    INSERT INTO settlement_payments (payment_id, merchant_id, currency, batch_id,
        capture_transaction_id, gross_amount, fee_amount, status, installments)
    SELECT $2, $3, $12, t.batch_id, t.id, $13, $14, 'captured', $15 FROM t
), v AS (
    DELETE FROM voids_before_capture
    WHERE payment_id = $2 AND EXISTS (SELECT 1 FROM t)
    RETURNING 1
)
SELECT (SELECT id FROM b) AS batch_id,
       EXISTS (SELECT 1 FROM t) AS recorded,
       EXISTS (SELECT 1 FROM v) AS early_void
"""


_BEFORE_CAPTURE = (
    "SELECT EXISTS (SELECT 1 FROM settlement_payments WHERE payment_id = $1) AS booked, "  # noqa: S608 - constant column names
    + ", ".join(f"m.{c.strip()}" for c in PROFILE_COLUMNS.split(","))
    + " FROM (VALUES (1)) AS one (x) LEFT JOIN merchants m ON m.merchant_id = $2"
)


class CaptureRepository:
    """A capture's reads and writes folded into as few statements as keep their meaning."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def before_capture(
        self, payment_id: uuid.UUID, merchant_id: str
    ) -> tuple[bool, MerchantProfile]:
        """Whether the payment is booked already, and its merchant's profile (or the
        defaults): one statement for PaymentRepository.get and MerchantRepository.profile."""
        row = await self.conn.fetchrow(_BEFORE_CAPTURE, payment_id, merchant_id)
        assert row is not None
        return bool(row["booked"]), profile_of(merchant_id, row)

    async def book(
        self,
        transaction: LedgerTransaction,
        *,
        batch_currency: str,
        day: date,
        payment_currency: str,
        gross: int,
        installments: int,
    ) -> CaptureBooking | None:
        """Books the capture into the open batch of its merchant, `batch_currency` and `day`:
        ledger transaction, entries, payment row (status captured) and the early void taken.
        None when there is no such open batch (nothing is written)."""
        entries = transaction.entries
        row = await self.conn.fetchrow(
            _BOOK_CAPTURE,
            transaction.id,
            transaction.payment_id,
            transaction.merchant_id,
            transaction.kind.value,
            transaction.currency,
            [e.account for e in entries],
            [e.direction.value for e in entries],
            [e.amount for e in entries],
            [e.currency for e in entries],
            batch_currency,
            day,
            payment_currency,
            gross,
            transaction.fee,
            installments,
        )
        assert row is not None
        if row["batch_id"] is None:
            return None
        return CaptureBooking(row["batch_id"], row["recorded"], row["early_void"])

    async def add_batch(
        self, merchant_id: str, currency: str, day: date, closes_at: datetime
    ) -> None:
        """Opens that batch; nothing when another transaction opened it first."""
        await self.conn.execute(
            "INSERT INTO settlement_batches (id, merchant_id, currency, batch_date, "
            "closes_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            uuid.uuid4(),
            merchant_id,
            currency,
            day,
            closes_at,
        )
