"""Clearing files as received, the ledger and payouts seen by reconciliation, its runs and
mismatches (migration 0007)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sanalpos_common.db import Connection
from sanalpos_common.schemas.events import ClearingKind, ClearingReported
from settlement.domain.ledger import CLEARING, Kind
from settlement.domain.reconciliation import (
    CLEARED_KINDS,
    ClearingItem,
    FileTotals,
    LedgerItem,
    Mismatch,
    PayoutCheck,
    PayoutLineCheck,
    ledger_transaction_id,
)

# A ledger transaction's gross: its line on the acquirer's clearing account (debit for a
# capture, credit for a reversal or refund); $1 = that account.
_LEDGER_ITEMS = (
    "SELECT t.id, t.kind, t.payment_id, coalesce(sum(e.amount), 0) AS gross "
    "FROM ledger_transactions t LEFT JOIN ledger_entries e ON e.transaction_id = t.id "
    "AND e.account = $1 AND e.direction = CASE WHEN t.kind = 'capture' THEN 'debit' "
    "ELSE 'credit' END "
)
_LEDGER_BY_IDS = _LEDGER_ITEMS + (
    "WHERE t.id = ANY($2::uuid[]) GROUP BY t.id, t.kind, t.payment_id"
)
_LEDGER_OF_DAY = _LEDGER_ITEMS + (
    "WHERE t.merchant_id = $2 AND t.currency = $3 AND t.created_at >= $4 "
    "AND t.created_at < $5 AND t.kind = ANY($6::text[]) GROUP BY t.id, t.kind, t.payment_id"
)


class ClearingStore:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def add_part(self, report: ClearingReported) -> bool:
        """Stores one part; False when a newer version is held or the part is known. A newer
        version replaces the older file."""
        key = (report.merchant_id, report.currency, report.clearing_date)
        held = await self.conn.fetchval(
            "SELECT version FROM clearing_files WHERE merchant_id = $1 AND currency = $2 AND clearing_date = $3 FOR UPDATE",
            *key,
        )
        if held is not None and held > report.version:
            return False
        if held is None or held < report.version:
            await self.conn.execute(
                "DELETE FROM clearing_lines WHERE merchant_id = $1 AND currency = $2 AND clearing_date = $3",
                *key,
            )
            await self.conn.execute(
                "DELETE FROM clearing_parts WHERE merchant_id = $1 AND currency = $2 AND clearing_date = $3",
                *key,
            )
            await self.conn.execute(
                "INSERT INTO clearing_files (merchant_id, currency, clearing_date, version, "
                "part_count, capture_count, capture_amount, refund_count, refund_amount, "
                "void_count, void_amount, generated_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) "
                "ON CONFLICT (merchant_id, currency, clearing_date) DO UPDATE SET "
                "version = EXCLUDED.version, part_count = EXCLUDED.part_count, "
                "capture_count = EXCLUDED.capture_count, capture_amount = EXCLUDED.capture_amount, "
                "refund_count = EXCLUDED.refund_count, refund_amount = EXCLUDED.refund_amount, "
                "void_count = EXCLUDED.void_count, void_amount = EXCLUDED.void_amount, "
                "generated_at = EXCLUDED.generated_at, completed_at = NULL",
                *key,
                report.version,
                report.part_count,
                report.capture_count,
                report.capture_amount,
                report.refund_count,
                report.refund_amount,
                report.void_count,
                report.void_amount,
                report.generated_at,
            )
        new_part = await self.conn.fetchval(
            "INSERT INTO clearing_parts (merchant_id, currency, clearing_date, version, part) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING 1",
            *key,
            report.version,
            report.part,
        )
        if new_part is None:
            return False
        await self.conn.executemany(
            "INSERT INTO clearing_lines (merchant_id, currency, clearing_date, version, kind, "
            "payment_id, refund_id, amount, occurred_at, ledger_transaction_id) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            [
                (
                    *key,
                    report.version,
                    line.kind.value,
                    line.payment_id,
                    line.refund_id,
                    line.amount,
                    line.occurred_at,
                    ledger_transaction_id(line.kind, line.payment_id, line.refund_id),
                )
                for line in report.lines
            ],
        )
        await self.conn.execute(
            "UPDATE clearing_files f SET completed_at = now() "
            "WHERE merchant_id = $1 AND currency = $2 AND clearing_date = $3 "
            "AND completed_at IS NULL AND part_count = "
            "(SELECT count(*) FROM clearing_parts p WHERE p.merchant_id = f.merchant_id "
            "AND p.currency = f.currency AND p.clearing_date = f.clearing_date "
            "AND p.version = f.version)",
            *key,
        )
        return True


class ReconciliationStore:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def lock(self, merchant_id: str, currency: str, day: date) -> None:
        await self.conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('recon:' || $1 || ':' || $2 || ':' || $3))",
            merchant_id,
            currency,
            day.isoformat(),
        )

    async def unreconciled_files(self, settled_before: datetime) -> list[tuple[str, str, date]]:
        """Complete files, received before `settled_before`, whose version no run has seen."""
        rows = await self.conn.fetch(
            "SELECT f.merchant_id, f.currency, f.clearing_date FROM clearing_files f "
            "WHERE f.completed_at IS NOT NULL AND f.completed_at <= $1 AND NOT EXISTS "
            "(SELECT 1 FROM recon_runs r WHERE r.merchant_id = f.merchant_id "
            "AND r.currency = f.currency AND r.recon_date = f.clearing_date "
            "AND r.clearing_version = f.version) ORDER BY f.clearing_date, 1, 2",
            settled_before,
        )
        return [(r["merchant_id"], r["currency"].strip(), r["clearing_date"]) for r in rows]

    async def reconciled(self, day: date) -> set[tuple[str, str]]:
        rows = await self.conn.fetch(
            "SELECT DISTINCT merchant_id, currency FROM recon_runs WHERE recon_date = $1", day
        )
        return {(r["merchant_id"], r["currency"].strip()) for r in rows}

    async def keys_of_day(
        self, day: date, start: datetime, end: datetime, merchant_id: str | None
    ) -> list[tuple[str, str]]:
        """Merchants and currencies with a clearing file, ledger lines or payouts that day."""
        rows = await self.conn.fetch(
            "SELECT merchant_id, currency FROM clearing_files WHERE clearing_date = $1 "
            "UNION SELECT merchant_id, currency FROM ledger_transactions "
            "WHERE created_at >= $2 AND created_at < $3 AND kind = ANY($4::text[]) "
            "UNION SELECT merchant_id, currency FROM payouts WHERE value_date = $1 "
            "ORDER BY 1, 2",
            day,
            start,
            end,
            [k.value for k in CLEARED_KINDS],
        )
        return [
            (r["merchant_id"], r["currency"].strip())
            for r in rows
            if merchant_id is None or r["merchant_id"] == merchant_id
        ]

    async def clearing_file(
        self, merchant_id: str, currency: str, day: date
    ) -> tuple[int, FileTotals, list[ClearingItem]] | None:
        """The complete file: version, totals and lines; None when there is none (yet)."""
        head = await self.conn.fetchrow(
            "SELECT * FROM clearing_files WHERE merchant_id = $1 AND currency = $2 AND clearing_date = $3 AND completed_at IS NOT NULL",
            merchant_id,
            currency,
            day,
        )
        if head is None:
            return None
        rows = await self.conn.fetch(
            "SELECT kind, payment_id, refund_id, amount FROM clearing_lines "
            "WHERE merchant_id = $1 AND currency = $2 AND clearing_date = $3 ORDER BY id",
            merchant_id,
            currency,
            day,
        )
        totals = FileTotals(
            head["capture_count"],
            head["capture_amount"],
            head["refund_count"],
            head["refund_amount"],
            head["void_count"],
            head["void_amount"],
        )
        lines = [
            ClearingItem(ClearingKind(r["kind"]), r["payment_id"], r["refund_id"], r["amount"])
            for r in rows
        ]
        return head["version"], totals, lines

    async def _ledger_items(self, query: str, *args: Any) -> list[LedgerItem]:
        rows = await self.conn.fetch(query, CLEARING, *args)
        return [
            LedgerItem(r["id"], Kind(r["kind"]), r["payment_id"], int(r["gross"])) for r in rows
        ]

    async def ledger_by_ids(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, LedgerItem]:
        items = await self._ledger_items(_LEDGER_BY_IDS, ids)
        return {item.transaction_id: item for item in items}

    async def ledger_of_day(
        self, merchant_id: str, currency: str, start: datetime, end: datetime
    ) -> list[LedgerItem]:
        return await self._ledger_items(
            _LEDGER_OF_DAY,
            merchant_id,
            currency,
            start,
            end,
            [k.value for k in CLEARED_KINDS],
        )

    async def cleared(self, merchant_id: str, ids: list[uuid.UUID]) -> set[uuid.UUID]:
        """Which of these ledger ids some clearing line (any day) names."""
        rows = await self.conn.fetch(
            "SELECT DISTINCT ledger_transaction_id FROM clearing_lines "
            "WHERE merchant_id = $1 AND ledger_transaction_id = ANY($2::uuid[])",
            merchant_id,
            ids,
        )
        return {r["ledger_transaction_id"] for r in rows}

    async def payouts_of_day(self, merchant_id: str, currency: str, day: date) -> list[PayoutCheck]:
        payouts = await self.conn.fetch(
            "SELECT p.id, p.amount, (SELECT sum(e.amount) FROM ledger_entries e "
            "WHERE e.transaction_id = t.id AND e.direction = 'debit') AS ledger_amount "
            "FROM payouts p LEFT JOIN ledger_transactions t ON t.payment_id = p.id "
            "AND t.kind = 'payout' "
            "WHERE p.merchant_id = $1 AND p.currency = $2 AND p.value_date = $3 "
            "ORDER BY p.created_at, p.id",
            merchant_id,
            currency,
            day,
        )
        checks = []
        for payout in payouts:
            lines = await self.conn.fetch(
                "SELECT l.batch_id, l.amount, CASE WHEN b.payout_plan = 'batch' THEN b.net_amount "
                "WHEN p.status = 'returned' THEN l.amount "
                "ELSE (SELECT coalesce(sum(s.amount), 0) FROM payout_schedule s "
                "WHERE s.batch_id = l.batch_id AND s.payout_id = l.payout_id) END AS owed, "
                # A batch-plan batch is paid by one live payout; an installment batch by one
                # per part, so it is paid twice only when its live lines exceed its net.
                "(SELECT CASE WHEN b.payout_plan = 'batch' THEN count(*) "
                "WHEN sum(o.amount) > b.net_amount THEN 2 ELSE 1 END "
                "FROM payout_lines o JOIN payouts op ON op.id = o.payout_id "
                "WHERE o.batch_id = l.batch_id AND op.status IN ('in_transit', 'paid')) AS live "
                "FROM payout_lines l JOIN settlement_batches b ON b.id = l.batch_id "
                "JOIN payouts p ON p.id = l.payout_id "
                "WHERE l.payout_id = $1 ORDER BY l.batch_id",
                payout["id"],
            )
            checks.append(
                PayoutCheck(
                    payout["id"],
                    payout["amount"],
                    tuple(
                        PayoutLineCheck(r["batch_id"], r["amount"], int(r["owed"]), r["live"])
                        for r in lines
                    ),
                    None if payout["ledger_amount"] is None else int(payout["ledger_amount"]),
                )
            )
        return checks

    async def record_run(
        self,
        run_id: uuid.UUID,
        key: tuple[str, str, date],
        trigger: str,
        clearing_version: int | None,
        counts: tuple[int, int, int],
        mismatches: list[Mismatch],
        now: datetime,
    ) -> None:
        """The run, and its mismatches in place of the previous run's for the same key."""
        await self.conn.execute(
            "INSERT INTO recon_runs (id, merchant_id, currency, recon_date, trigger, "
            "clearing_version, clearing_lines, ledger_lines, payouts, mismatch_count, ran_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            run_id,
            *key,
            trigger,
            clearing_version,
            *counts,
            len(mismatches),
            now,
        )
        await self.conn.execute(
            "DELETE FROM recon_mismatches WHERE merchant_id = $1 AND currency = $2 "
            "AND recon_date = $3",
            *key,
        )
        await self.conn.executemany(
            "INSERT INTO recon_mismatches (run_id, merchant_id, currency, recon_date, kind, "
            "source, reference, refund_id, expected_amount, actual_amount, reason, detected_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            [
                (
                    run_id,
                    *key,
                    m.kind.value,
                    m.source.value,
                    m.reference,
                    m.refund_id,
                    m.expected,
                    m.actual,
                    m.reason,
                    now,
                )
                for m in mismatches
            ],
        )

    async def mismatches(
        self,
        day: date | None,
        merchant_id: str | None,
        kind: str | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        rows = await self.conn.fetch(
            "SELECT * FROM recon_mismatches WHERE ($1::date IS NULL OR recon_date = $1) "
            "AND ($2::text IS NULL OR merchant_id = $2) AND ($3::text IS NULL OR kind = $3) "
            "ORDER BY recon_date DESC, merchant_id, currency, id LIMIT $4",
            day,
            merchant_id,
            kind,
            limit,
        )
        return [dict(r) | {"currency": r["currency"].strip()} for r in rows]

    async def runs(
        self, day: date | None, merchant_id: str | None, limit: int
    ) -> list[dict[str, Any]]:
        rows = await self.conn.fetch(
            "SELECT * FROM recon_runs WHERE ($1::date IS NULL OR recon_date = $1) "
            "AND ($2::text IS NULL OR merchant_id = $2) ORDER BY ran_at DESC, id LIMIT $3",
            day,
            merchant_id,
            limit,
        )
        return [dict(r) | {"currency": r["currency"].strip()} for r in rows]

    async def open_counts(self) -> dict[str, int]:
        rows = await self.conn.fetch("SELECT kind, count(*) AS n FROM recon_mismatches GROUP BY 1")
        return {r["kind"]: r["n"] for r in rows}
