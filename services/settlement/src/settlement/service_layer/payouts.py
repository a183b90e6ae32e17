"""The payout job and the bank's answer.

A run for a date: for each merchant and currency with due batches, one transaction that locks
them, plans the payout (domain/payouts.py: the netting rule), books it in the ledger (payable
-> payouts in transit), marks the batches paid by it and announces settlement.payout-updated.v1
through the outbox; or records why nothing was paid. Then every payout not yet in a file goes
into one pain.001 XML and one CSV in the payout folder, recorded in payout_files. A second run
for the same date finds nothing due and nothing unfiled: it creates nothing.

The bank's answer (admin call or a return file): paid moves in transit to cleared; returned
puts the money back on the payable and releases the batches, which are due again at the next
run (to whichever account is then the default).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from sanalpos_common.db import UnitOfWork, unit_of_work
from sanalpos_common.schemas.events import PayoutLine, PayoutStatus, PayoutUpdated
from settlement.adapters.ledger_repository import LedgerRepository
from settlement.adapters.payouts import PayoutAccountRepository, PayoutRepository
from settlement.domain.disputes import dispute_hold_account
from settlement.domain.ledger import merchant_payable
from settlement.domain.payout_file import Debtor, Transfer, render_csv, render_pain001
from settlement.domain.payouts import (
    Hold,
    PlannedPayout,
    paid_transaction,
    payout_transaction,
    plan_payout,
    returned_transaction,
)
from settlement.domain.value_dates import BusinessCalendar
from settlement.service_layer.batch_closing import Clock, utc_now
from settlement.service_layer.installment_payouts import due_parts, mark_paid

log = logging.getLogger(__name__)


class PayoutNotFound(Exception):
    pass


class PayoutStateConflict(Exception):
    def __init__(self, payout_id: uuid.UUID, current: str, wanted: str) -> None:
        super().__init__(f"payout {payout_id} is {current}; cannot mark it {wanted}")
        self.current = current


@dataclass(frozen=True)
class RunResult:
    run_date: date
    payouts: list[uuid.UUID]
    holds: list[dict[str, Any]]
    file: dict[str, Any] | None


def mask(iban: str) -> str:
    return "*" * max(0, len(iban) - 4) + iban[-4:]


async def announce(uow: UnitOfWork, payouts: PayoutRepository, row: dict[str, Any]) -> None:
    lines = await payouts.lines(row["id"])
    await uow.emit(
        PayoutUpdated(
            payout_id=row["id"],
            merchant_id=row["merchant_id"],
            currency=row["currency"].strip(),
            amount=row["amount"],
            status=PayoutStatus(row["status"]),
            value_date=row["value_date"],
            account_id=row["account_id"],
            iban_last4=row["iban"][-4:],
            lines=tuple(
                PayoutLine(
                    batch_id=line["batch_id"],
                    batch_date=line["batch_date"],
                    value_date=line["value_date"],
                    amount=line["amount"],
                )
                for line in lines
            ),
            reason=row["reason"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            version=row["version"],
        )
    )


async def pay_out(
    uow: UnitOfWork, merchant_id: str, currency: str, run_date: date
) -> PlannedPayout | Hold | None:
    """One merchant and currency on a run date, in the caller's transaction."""
    payouts = PayoutRepository(uow.conn)
    await payouts.lock_merchant_currency(merchant_id, currency)
    due = await payouts.due_batches(merchant_id, currency, run_date)
    due += await due_parts(uow.conn, merchant_id, currency, run_date)
    account = await PayoutAccountRepository(uow.conn).default_of(merchant_id, currency)
    balance = await payouts.payable_balance(merchant_payable(merchant_id), currency)
    held = await payouts.payable_balance(dispute_hold_account(merchant_id), currency)
    planned = plan_payout(due, account, balance, uuid.uuid4(), disputes_held=held)
    if planned is None:
        return None
    if isinstance(planned, Hold):
        await payouts.hold(merchant_id, currency, run_date, planned)
        log.info(
            "no payout for %s %s on %s: %s (%d due in %d batches)",
            merchant_id,
            currency,
            run_date,
            planned.reason,
            planned.amount,
            planned.batch_count,
        )
        return planned
    await payouts.add(merchant_id, currency, run_date, planned)
    await mark_paid(uow.conn, planned, run_date)
    await LedgerRepository(uow.conn).record(
        payout_transaction(planned.payout_id, merchant_id, planned.amount, currency), None
    )
    row = await payouts.lock(planned.payout_id)
    assert row is not None
    await announce(uow, payouts, row)
    log.info(
        "payout %s of %d %s to %s for %d batches",
        planned.payout_id,
        planned.amount,
        currency,
        mask(planned.account.iban),
        len(planned.lines),
    )
    return planned


@dataclass
class PayoutJob:
    pool: asyncpg.Pool
    producer: str
    folder: Path
    debtor: Debtor
    calendar: BusinessCalendar
    time_zone: str = "Europe/Istanbul"
    interval_s: float = 300.0
    clock: Clock = utc_now
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _last_pass: float | None = None
    _started: float = field(default_factory=time.monotonic)

    def today(self) -> date:
        return self.clock().astimezone(ZoneInfo(self.time_zone)).date()

    async def run_for(self, run_date: date, merchant_id: str | None = None) -> RunResult:
        async with self.pool.acquire() as conn:
            pairs = await PayoutRepository(conn).due_pairs(run_date)
        made: list[uuid.UUID] = []
        holds: list[dict[str, Any]] = []
        for merchant, currency in pairs:
            if merchant_id is not None and merchant != merchant_id:
                continue
            async with unit_of_work(self.pool, self.producer) as uow:
                outcome = await pay_out(uow, merchant, currency, run_date)
            if isinstance(outcome, PlannedPayout):
                made.append(outcome.payout_id)
            elif isinstance(outcome, Hold):
                holds.append(
                    {
                        "merchant_id": merchant,
                        "currency": currency,
                        "reason": outcome.reason.value,
                        "amount": outcome.amount,
                        "batch_count": outcome.batch_count,
                    }
                )
        written = await self.write_file(run_date)
        return RunResult(run_date, made, holds, written)

    async def write_file(self, run_date: date) -> dict[str, Any] | None:
        """Every payout not yet in a file, into one pain.001 and one CSV. The rows stay locked
        until the file is written and recorded, so two runs never file a payout twice."""
        async with unit_of_work(self.pool, self.producer) as uow:
            payouts = PayoutRepository(uow.conn)
            rows = await payouts.unfiled()
            if not rows:
                return None
            transfers = [
                Transfer(
                    payout_id=r["id"],
                    merchant_id=r["merchant_id"],
                    currency=r["currency"].strip(),
                    amount=r["amount"],
                    iban=r["iban"],
                    holder_name=r["holder_name"],
                    value_date=r["value_date"],
                    batch_count=r["batch_count"],
                )
                for r in rows
            ]
            file_id = uuid.uuid4()
            now = self.clock()
            message_id = f"SP{run_date:%Y%m%d}{file_id.hex[:16].upper()}"
            self.folder.mkdir(parents=True, exist_ok=True)
            stem = self.folder / f"payouts-{run_date.isoformat()}-{file_id.hex[:12]}"
            xml_path, csv_path = stem.with_suffix(".xml"), stem.with_suffix(".csv")
            xml_path.write_bytes(render_pain001(transfers, self.debtor, message_id, now))
            csv_path.write_text(render_csv(transfers), encoding="utf-8")
            await payouts.add_file(
                file_id,
                run_date,
                str(xml_path),
                str(csv_path),
                message_id,
                [t.payout_id for t in transfers],
            )
            log.info("payout file %s: %d transfers", xml_path.name, len(transfers))
            return {
                "id": str(file_id),
                "message_id": message_id,
                "xml_path": str(xml_path),
                "csv_path": str(csv_path),
                "payout_count": len(transfers),
            }

    async def run(self) -> None:
        """The periodic loop: on business days, pays out what is due today."""
        while not self._stop.is_set():
            today = self.today()
            if self.calendar.is_business_day(today):
                await self.run_for(today)
            self._last_pass = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.interval_s)

    def stop(self) -> None:
        self._stop.set()

    async def readiness(self) -> tuple[bool, str]:
        allowed = max(120.0, 3 * self.interval_s)
        since = time.monotonic() - (self._last_pass or self._started)
        if self._last_pass is None:
            return since < allowed, "no pass yet"
        return since < allowed, f"last pass {since:.0f}s ago"


async def bank_answer(
    pool: asyncpg.Pool,
    producer: str,
    payout_id: uuid.UUID,
    status: PayoutStatus,
    reason: str | None,
    now: datetime,
) -> dict[str, Any]:
    """Marks an in-transit payout paid or returned; the same answer again changes nothing."""
    if status is PayoutStatus.IN_TRANSIT:
        raise ValueError("the bank answers paid or returned")
    async with unit_of_work(pool, producer) as uow:
        payouts = PayoutRepository(uow.conn)
        row = await payouts.lock(payout_id)
        if row is None:
            raise PayoutNotFound(str(payout_id))
        if row["status"] == status.value:
            return row
        if row["status"] != PayoutStatus.IN_TRANSIT.value:
            raise PayoutStateConflict(payout_id, row["status"], status.value)
        merchant_id, currency, amount = row["merchant_id"], row["currency"].strip(), row["amount"]
        ledger = LedgerRepository(uow.conn)
        if status is PayoutStatus.PAID:
            await ledger.record(paid_transaction(payout_id, merchant_id, amount, currency), None)
        else:
            await ledger.record(
                returned_transaction(payout_id, merchant_id, amount, currency), None
            )
            await payouts.release_batches(payout_id)
        updated = await payouts.set_status(payout_id, status.value, reason, now)
        await announce(uow, payouts, updated)
        log.info("payout %s %s by the bank", payout_id, status.value)
        return updated
