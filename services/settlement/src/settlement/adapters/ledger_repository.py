"""Ledger transactions and their entries, each assigned to a batch."""

from __future__ import annotations

import uuid

from sanalpos_common.db import Connection
from settlement.domain.ledger import Direction, Entry, Kind, LedgerTransaction


class LedgerRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def record(self, transaction: LedgerTransaction, batch_id: uuid.UUID | None) -> bool:
        """False when this transaction is already in the ledger (a redelivery)."""
        inserted = await self.conn.fetchval(
            "INSERT INTO ledger_transactions "
            "(id, payment_id, merchant_id, kind, currency, batch_id) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING 1",
            transaction.id,
            transaction.payment_id,
            transaction.merchant_id,
            transaction.kind.value,
            transaction.currency,
            batch_id,
        )
        if inserted is None:
            return False
        await self.conn.executemany(
            "INSERT INTO ledger_entries (transaction_id, account, direction, amount, currency) "
            "VALUES ($1, $2, $3, $4, $5)",
            [
                (transaction.id, e.account, e.direction.value, e.amount, e.currency)
                for e in transaction.entries
            ],
        )
        return True

    async def get(self, transaction_id: uuid.UUID) -> LedgerTransaction | None:
        head = await self.conn.fetchrow(
            "SELECT payment_id, merchant_id, kind FROM ledger_transactions WHERE id = $1",
            transaction_id,
        )
        if head is None:
            return None
        rows = await self.conn.fetch(
            "SELECT account, direction, amount, currency FROM ledger_entries "
            "WHERE transaction_id = $1 ORDER BY id",
            transaction_id,
        )
        return LedgerTransaction(
            id=transaction_id,
            payment_id=head["payment_id"],
            merchant_id=head["merchant_id"],
            kind=Kind(head["kind"]),
            entries=tuple(
                Entry(r["account"], Direction(r["direction"]), r["amount"], r["currency"].strip())
                for r in rows
            ),
        )
