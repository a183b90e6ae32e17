"""Payout accounts (from merchant.payout-account.v1), payouts with their lines, payout files
and holds."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sanalpos_common.db import Connection
from sanalpos_common.schemas.events import PayoutAccountUpdated
from settlement.domain.payouts import DueBatch, Hold, PayoutAccount, PlannedPayout


class PayoutAccountRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def apply(self, account: PayoutAccountUpdated) -> bool:
        """False when what we hold is the same or a newer version."""
        applied = await self.conn.fetchval(
            "INSERT INTO payout_accounts (account_id, merchant_id, currency, iban, holder_name, "
            "is_default, active, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
            "ON CONFLICT (account_id) DO UPDATE SET is_default = EXCLUDED.is_default, "
            "active = EXCLUDED.active, holder_name = EXCLUDED.holder_name, "
            "version = EXCLUDED.version, updated_at = now() "
            "WHERE payout_accounts.version < EXCLUDED.version RETURNING 1",
            account.account_id,
            account.merchant_id,
            account.currency,
            account.iban,
            account.holder_name,
            account.is_default,
            account.active,
            account.version,
        )
        return applied is not None

    async def default_of(self, merchant_id: str, currency: str) -> PayoutAccount | None:
        row = await self.conn.fetchrow(
            "SELECT account_id, iban, holder_name FROM payout_accounts WHERE merchant_id = $1 "
            "AND currency = $2 AND is_default AND active ORDER BY version DESC LIMIT 1",
            merchant_id,
            currency,
        )
        if row is None:
            return None
        return PayoutAccount(row["account_id"], row["iban"], row["holder_name"])


class PayoutRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def due_pairs(self, run_date: date) -> list[tuple[str, str]]:
        rows = await self.conn.fetch(
            "SELECT DISTINCT merchant_id, currency FROM settlement_batches "
            "WHERE status = 'closed' AND payout_id IS NULL AND value_date <= $1 "
            "AND payout_plan = 'batch' "
            "UNION SELECT merchant_id, currency FROM payout_schedule "
            "WHERE payout_id IS NULL AND value_date <= $1 ORDER BY merchant_id, currency",
            run_date,
        )
        return [(r["merchant_id"], r["currency"].strip()) for r in rows]

    async def lock_merchant_currency(self, merchant_id: str, currency: str) -> None:
        await self.conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('payout:' || $1 || ':' || $2))",
            merchant_id,
            currency,
        )

    async def due_batches(self, merchant_id: str, currency: str, run_date: date) -> list[DueBatch]:
        rows = await self.conn.fetch(
            "SELECT id, batch_date, value_date, net_amount FROM settlement_batches "
            "WHERE merchant_id = $1 AND currency = $2 AND status = 'closed' "
            "AND payout_id IS NULL AND value_date <= $3 AND payout_plan = 'batch' "
            "ORDER BY value_date, batch_date, id FOR UPDATE",
            merchant_id,
            currency,
            run_date,
        )
        return [
            DueBatch(r["id"], r["batch_date"], r["value_date"], int(r["net_amount"])) for r in rows
        ]

    async def payable_balance(self, account: str, currency: str) -> int:
        balance = await self.conn.fetchval(
            "SELECT coalesce(sum(CASE WHEN direction = 'credit' THEN amount ELSE -amount END), 0) "
            "FROM ledger_entries WHERE account = $1 AND currency = $2",
            account,
            currency,
        )
        return int(balance)

    async def add(
        self, merchant_id: str, currency: str, run_date: date, payout: PlannedPayout
    ) -> None:
        await self.conn.execute(
            "INSERT INTO payouts (id, merchant_id, currency, amount, value_date, status, "
            "account_id, iban, holder_name) VALUES ($1, $2, $3, $4, $5, 'in_transit', $6, $7, $8)",
            payout.payout_id,
            merchant_id,
            currency,
            payout.amount,
            run_date,
            payout.account.account_id,
            payout.account.iban,
            payout.account.holder_name,
        )
        await self.conn.executemany(
            "INSERT INTO payout_lines (payout_id, batch_id, amount) VALUES ($1, $2, $3)",
            [(payout.payout_id, b.batch_id, b.net) for b in payout.lines],
        )
        await self.conn.execute(
            "UPDATE settlement_batches SET payout_id = $1 WHERE id = ANY($2::uuid[]) "
            "AND payout_plan = 'batch'",
            payout.payout_id,
            [b.batch_id for b in payout.lines],
        )
        await self.conn.execute(
            "DELETE FROM payout_holds WHERE merchant_id = $1 AND currency = $2 AND run_date = $3",
            merchant_id,
            currency,
            run_date,
        )

    async def hold(self, merchant_id: str, currency: str, run_date: date, hold: Hold) -> None:
        await self.conn.execute(
            "INSERT INTO payout_holds (merchant_id, currency, run_date, reason, amount, "
            "batch_count) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (merchant_id, currency, "
            "run_date) DO UPDATE SET reason = EXCLUDED.reason, amount = EXCLUDED.amount, "
            "batch_count = EXCLUDED.batch_count, recorded_at = now()",
            merchant_id,
            currency,
            run_date,
            hold.reason.value,
            hold.amount,
            hold.batch_count,
        )

    async def lock(self, payout_id: uuid.UUID) -> dict[str, Any] | None:
        row = await self.conn.fetchrow("SELECT * FROM payouts WHERE id = $1 FOR UPDATE", payout_id)
        return None if row is None else dict(row)

    async def set_status(
        self, payout_id: uuid.UUID, status: str, reason: str | None, now: datetime
    ) -> dict[str, Any]:
        row = await self.conn.fetchrow(
            "UPDATE payouts SET status = $2, reason = $3, updated_at = $4, version = version + 1 "
            "WHERE id = $1 RETURNING *",
            payout_id,
            status,
            reason,
            now,
        )
        assert row is not None  # locked by the caller
        return dict(row)

    async def release_batches(self, payout_id: uuid.UUID) -> None:
        """A returned payout's batches are due again (its lines stay, as its history)."""
        await self.conn.execute(
            "UPDATE settlement_batches SET payout_id = NULL WHERE payout_id = $1", payout_id
        )
        await self.conn.execute(  # installment parts (migration 0009)
            "UPDATE payout_schedule SET payout_id = NULL WHERE payout_id = $1", payout_id
        )

    async def lines(self, payout_id: uuid.UUID) -> list[dict[str, Any]]:
        rows = await self.conn.fetch(
            "SELECT l.batch_id, b.batch_date, coalesce(l.value_date, b.value_date) AS value_date, "
            "l.amount FROM payout_lines l "
            "JOIN settlement_batches b ON b.id = l.batch_id WHERE l.payout_id = $1 "
            "ORDER BY b.value_date, b.batch_date, l.batch_id",
            payout_id,
        )
        return [dict(r) for r in rows]

    async def unfiled(self) -> list[dict[str, Any]]:
        rows = await self.conn.fetch(
            "SELECT p.*, (SELECT count(*) FROM payout_lines l WHERE l.payout_id = p.id) "
            "AS batch_count FROM payouts p WHERE file_id IS NULL ORDER BY created_at, id "
            "FOR UPDATE OF p"
        )
        return [dict(r) for r in rows]

    async def add_file(
        self,
        file_id: uuid.UUID,
        run_date: date,
        xml_path: str,
        csv_path: str,
        message_id: str,
        payout_ids: list[uuid.UUID],
    ) -> None:
        await self.conn.execute(
            "INSERT INTO payout_files (id, run_date, xml_path, csv_path, payout_count, "
            "message_id) VALUES ($1, $2, $3, $4, $5, $6)",
            file_id,
            run_date,
            xml_path,
            csv_path,
            len(payout_ids),
            message_id,
        )
        await self.conn.execute(
            "UPDATE payouts SET file_id = $1 WHERE id = ANY($2::uuid[])", file_id, payout_ids
        )

    async def files(self, limit: int) -> list[dict[str, Any]]:
        rows = await self.conn.fetch(
            "SELECT * FROM payout_files ORDER BY created_at DESC, id DESC LIMIT $1", limit
        )
        return [dict(r) for r in rows]

    async def listing(
        self, merchant_id: str | None, status: str | None, limit: int
    ) -> list[dict[str, Any]]:
        rows = await self.conn.fetch(
            "SELECT * FROM payouts WHERE ($1::text IS NULL OR merchant_id = $1) "
            "AND ($2::text IS NULL OR status = $2) ORDER BY created_at DESC, id DESC LIMIT $3",
            merchant_id,
            status,
            limit,
        )
        return [dict(r) for r in rows]

    async def holds(self, merchant_id: str | None, run_date: date | None) -> list[dict[str, Any]]:
        rows = await self.conn.fetch(
            "SELECT * FROM payout_holds WHERE ($1::text IS NULL OR merchant_id = $1) "
            "AND ($2::date IS NULL OR run_date = $2) ORDER BY run_date DESC, merchant_id, "
            "currency LIMIT 500",
            merchant_id,
            run_date,
        )
        return [dict(r) for r in rows]
