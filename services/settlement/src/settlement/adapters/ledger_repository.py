from __future__ import annotations

from sanalpos_common.db import Connection
from settlement.domain.ledger import FeePlan, LedgerTransaction


class LedgerRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def fee_plan(self, merchant_id: str, default: FeePlan) -> FeePlan:
        row = await self.conn.fetchrow(
            "SELECT mdr_bps, installment_bps FROM fee_plans WHERE merchant_id = $1", merchant_id
        )
        if row is None:
            return default
        return FeePlan(mdr_bps=row["mdr_bps"], installment_bps=row["installment_bps"])

    async def record(self, transaction: LedgerTransaction) -> bool:
        """False when this payment's transaction of this kind is already in the ledger."""
        inserted = await self.conn.fetchval(
            "INSERT INTO ledger_transactions (id, payment_id, merchant_id, kind, currency) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING 1",
            transaction.id,
            transaction.payment_id,
            transaction.merchant_id,
            transaction.kind,
            transaction.entries[0].currency,
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


async def upsert_fee_plan(conn: Connection, merchant_id: str, plan: FeePlan) -> None:
    await conn.execute(
        "INSERT INTO fee_plans (merchant_id, mdr_bps, installment_bps) VALUES ($1, $2, $3) "
        "ON CONFLICT (merchant_id) DO UPDATE SET mdr_bps = EXCLUDED.mdr_bps, "
        "installment_bps = EXCLUDED.installment_bps",
        merchant_id,
        plan.mdr_bps,
        plan.installment_bps,
    )
