"""Disputes: raised and decided by the issuer (ops API, entrypoints/disputes_admin.py),
answered by the merchant (merchant.dispute-responded.v1 from intake), lost for want of an
answer by the expiry loop. Each change books its ledger moves (domain/disputes.py) in the
merchant's open batch and announces settlement.dispute-updated.v1, in one transaction."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from sanalpos_common.db import UnitOfWork, unit_of_work
from sanalpos_common.messaging.consumer import NonRetryable
from sanalpos_common.periodic import PeriodicJob
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import (
    DisputeDecided,
    DisputeLedgerMove,
    DisputeRaised,
    DisputeResponded,
    DisputeResponse,
    DisputeUpdated,
)
from settlement.adapters.batches import BatchRepository
from settlement.adapters.disputes import DisputeRepository
from settlement.adapters.ledger_repository import LedgerRepository
from settlement.adapters.merchants import MerchantRepository
from settlement.domain.disputes import (
    Dispute,
    DisputeRefused,
    disputable,
    hold_transaction,
    outcome_transactions,
)
from settlement.domain.ledger import LedgerTransaction
from settlement.service_layer.batch_closing import Clock, utc_now

log = logging.getLogger(__name__)


class PaymentNotDisputable(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class DisputeNotFound(Exception):
    pass


async def _book(
    uow: UnitOfWork, dispute: Dispute, transactions: list[LedgerTransaction], now: datetime
) -> None:
    """Into the merchant's open batch of today, so the batch's net carries the moves."""
    profile = await MerchantRepository(uow.conn).profile(dispute.merchant_id)
    day = profile.batch_date(now)
    batch_id = await BatchRepository(uow.conn).open_batch(
        dispute.merchant_id, dispute.currency, day, profile.closes_at(day)
    )
    ledger = LedgerRepository(uow.conn)
    for transaction in transactions:
        await ledger.record(transaction, batch_id)


async def _announce(uow: UnitOfWork, dispute: Dispute) -> None:
    disputes = DisputeRepository(uow.conn)
    row = await disputes.row(dispute.dispute_id)
    moves = await disputes.moves(dispute)
    await uow.emit(
        DisputeUpdated(
            dispute_id=dispute.dispute_id,
            payment_id=dispute.payment_id,
            merchant_id=dispute.merchant_id,
            amount=dispute.amount,
            currency=dispute.currency,
            reason_code=dispute.reason_code,
            reason=dispute.reason,
            status=dispute.status,
            respond_by=dispute.respond_by,
            fee=dispute.fee,
            held=dispute.held,
            response=dispute.response,
            responded_at=dispute.responded_at,
            outcome_reason=dispute.outcome_reason,
            moves=tuple(
                DisputeLedgerMove(kind=m["kind"], amount=int(m["amount"]), batch_id=m["batch_id"])
                for m in moves
                if int(m["amount"]) != 0
            ),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            version=dispute.version,
        )
    )


async def _change(
    uow: UnitOfWork,
    before: Dispute,
    after: Dispute,
    now: datetime,
    evidence: dict[str, Any] | None = None,
) -> None:
    disputes = DisputeRepository(uow.conn)
    await disputes.save(after, evidence)
    if after.status != before.status and after.held == 0:
        await _book(uow, after, outcome_transactions(after), now)
    await _announce(uow, after)
    log.info(
        "dispute %s: %s -> %s (%s)",
        after.dispute_id,
        before.status,
        after.status,
        after.outcome_reason,
        extra={"payment_id": str(after.payment_id)},
    )


@dataclass(frozen=True)
class RaiseRequest:
    payment_id: uuid.UUID
    reason_code: str
    reason: str
    amount: int | None = None
    respond_by: datetime | None = None
    dispute_id: uuid.UUID | None = None


@dataclass
class DisputeDesk(PeriodicJob):
    """The issuer's side through the ops API, and the expiry loop."""

    pool: asyncpg.Pool
    producer: str
    fees: Mapping[str, int] = field(default_factory=dict)
    """Dispute fee per currency, minor units, debited when a dispute is lost."""
    response_days: int = 7
    grace: timedelta = timedelta(minutes=5)
    interval_s: float = 60.0
    clock: Clock = utc_now

    async def raise_dispute(self, request: RaiseRequest) -> dict[str, Any]:
        async with unit_of_work(self.pool, self.producer) as uow:
            return await self.raise_in(uow, request, self.clock())

    async def raise_in(
        self, uow: UnitOfWork, request: RaiseRequest, now: datetime, merchant_id: str | None = None
    ) -> dict[str, Any]:
        """A chargeback on a captured payment: holds its amount (the rest not yet refunded or
        disputed when `amount` is omitted). The same dispute id again changes nothing."""
        dispute_id = request.dispute_id or uuid.uuid4()
        disputes = DisputeRepository(uow.conn)
        existing = await disputes.lock(dispute_id)
        if existing is not None:
            return await disputes.row(dispute_id)
        payment = await uow.conn.fetchrow(
            "SELECT merchant_id, currency, gross_amount, status FROM settlement_payments "
            "WHERE payment_id = $1 FOR UPDATE",
            request.payment_id,
        )
        if payment is None:
            raise PaymentNotDisputable("payment_not_found", "no captured payment with this id")
        if merchant_id is not None and payment["merchant_id"] != merchant_id:
            raise PaymentNotDisputable("merchant_mismatch", "the payment is another merchant's")
        if payment["status"] == "voided":
            raise PaymentNotDisputable("payment_voided", "the capture was cancelled")
        refunded = await disputes.refunded_amount(request.payment_id)
        disputed = await disputes.disputed_amount(request.payment_id)
        left = payment["gross_amount"] - refunded - disputed
        amount = left if request.amount is None else request.amount
        if not disputable(payment["gross_amount"], refunded, disputed, amount):
            raise PaymentNotDisputable(
                "amount_not_disputable",
                f"{left} of the payment is left to dispute (captured less refunds and "
                "earlier disputes)",
            )
        currency = payment["currency"].strip()
        dispute = Dispute(
            dispute_id=dispute_id,
            payment_id=request.payment_id,
            merchant_id=payment["merchant_id"],
            amount=amount,
            currency=currency,
            reason_code=request.reason_code,
            reason=request.reason,
            respond_by=request.respond_by or now + timedelta(days=self.response_days),
            fee=self.fees.get(currency, 0),
        )
        await disputes.add(dispute)
        await _book(uow, dispute, [hold_transaction(dispute)], now)
        await _announce(uow, dispute)
        log.info(
            "dispute %s raised: %d %s held until %s",
            dispute_id,
            amount,
            currency,
            dispute.respond_by.isoformat(),
            extra={"payment_id": str(request.payment_id)},
        )
        return await disputes.row(dispute_id)

    async def decide(self, dispute_id: uuid.UUID, won: bool) -> dict[str, Any]:
        async with unit_of_work(self.pool, self.producer) as uow:
            return await self.decide_in(uow, dispute_id, won, self.clock())

    async def decide_in(
        self, uow: UnitOfWork, dispute_id: uuid.UUID, won: bool, now: datetime
    ) -> dict[str, Any]:
        """The issuer's ruling; the same ruling again changes nothing."""
        disputes = DisputeRepository(uow.conn)
        dispute = await disputes.lock(dispute_id)
        if dispute is None:
            raise DisputeNotFound(str(dispute_id))
        wanted = "won" if won else "lost"
        if dispute.status.value == wanted and dispute.outcome_reason in {
            "issuer_won",
            "issuer_lost",
        }:
            return await disputes.row(dispute_id)
        await _change(uow, dispute, dispute.decide(won), now)
        return await disputes.row(dispute_id)

    async def on_dispute_raised(self, uow: UnitOfWork, envelope: Envelope[Any]) -> None:
        """The issuer simulator's chargeback. A payment settlement has not booked yet is
        retried (its capture may still be on its way), then dead-lettered; one that cannot be
        disputed is dead-lettered at once."""
        raised: DisputeRaised = envelope.payload
        request = RaiseRequest(
            payment_id=raised.payment_id,
            reason_code=raised.reason_code,
            reason=raised.reason,
            amount=raised.amount,
            respond_by=raised.respond_by,
            dispute_id=raised.dispute_id,
        )
        try:
            await self.raise_in(uow, request, self.clock(), merchant_id=raised.merchant_id)
        except PaymentNotDisputable as exc:
            if exc.code == "payment_not_found":
                raise
            raise NonRetryable(f"dispute {raised.dispute_id}: {exc}") from exc

    async def on_dispute_decided(self, uow: UnitOfWork, envelope: Envelope[Any]) -> None:
        """The issuer simulator's ruling; a second, different ruling is logged and dropped."""
        decided: DisputeDecided = envelope.payload
        try:
            await self.decide_in(uow, decided.dispute_id, decided.outcome == "won", self.clock())
        except DisputeRefused as refused:
            log.warning(
                "ruling on dispute %s dropped: %s",
                decided.dispute_id,
                refused,
                extra={"payment_id": str(decided.payment_id)},
            )

    async def expire_due(self) -> list[uuid.UUID]:
        now = self.clock()
        async with self.pool.acquire() as conn:
            candidates = await DisputeRepository(conn).expired_ids(now - self.grace)
        expired = []
        for dispute_id in candidates:
            async with unit_of_work(self.pool, self.producer) as uow:
                dispute = await DisputeRepository(uow.conn).lock(dispute_id)
                lost = None if dispute is None else dispute.expire(now, self.grace)
                if dispute is not None and lost is not None:
                    await _change(uow, dispute, lost, now)
                    expired.append(dispute_id)
        return expired

    async def run_once(self) -> object:
        return await self.expire_due()


async def on_dispute_responded(uow: UnitOfWork, envelope: Envelope[Any]) -> None:
    """The merchant's answer, judged by when intake accepted it. One the dispute no longer
    allows (answered twice, late, already decided) is logged and dropped: intake checked the
    same rules against its copy, so only a race gets here."""
    responded: DisputeResponded = envelope.payload
    disputes = DisputeRepository(uow.conn)
    dispute = await disputes.lock(responded.dispute_id)
    if dispute is None or dispute.merchant_id != responded.merchant_id:
        raise NonRetryable(f"dispute {responded.dispute_id} is not this merchant's")
    if dispute.response is responded.response and dispute.responded_at == responded.responded_at:
        return
    try:
        after = dispute.respond(responded.response, responded.responded_at)
    except DisputeRefused as refused:
        log.warning(
            "answer to dispute %s dropped: %s",
            dispute.dispute_id,
            refused,
            extra={"payment_id": str(dispute.payment_id)},
        )
        return
    evidence = None
    if responded.response is DisputeResponse.EVIDENCE:
        evidence = {
            "text": responded.text,
            "references": list(responded.references),
            "documents": [d.model_dump(mode="json") for d in responded.documents],
        }
    await _change(uow, dispute, after, utc_now(), evidence)
