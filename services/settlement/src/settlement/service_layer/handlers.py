"""Turns captured payments into balanced ledger transactions and emits payment.settled."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sanalpos_common import topics
from sanalpos_common.db import UnitOfWork
from sanalpos_common.schemas.codec import new_envelope
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import PaymentCaptured, PaymentSettled
from settlement.adapters.ledger_repository import LedgerRepository
from settlement.domain.ledger import FeePlan, capture_transaction

log = logging.getLogger(__name__)
PRODUCER = "settlement"


@dataclass(frozen=True)
class SettlementHandlers:
    default_plan: FeePlan

    async def handle(self, uow: UnitOfWork, topic: str, envelope: Envelope[Any]) -> None:
        if topic == topics.PAYMENT_CAPTURED:
            await self.on_captured(uow, envelope)

    async def on_captured(self, uow: UnitOfWork, envelope: Envelope[Any]) -> None:
        captured: PaymentCaptured = envelope.payload
        ledger = LedgerRepository(uow.conn)
        plan = await ledger.fee_plan(captured.merchant_id, self.default_plan)
        transaction = capture_transaction(
            captured.payment_id,
            captured.merchant_id,
            captured.amount,
            captured.currency,
            captured.installments,
            plan,
        )
        if not await ledger.record(transaction):
            log.info("capture already in the ledger")
            return
        settled = PaymentSettled(
            payment_id=captured.payment_id,
            merchant_id=captured.merchant_id,
            gross_amount=captured.amount,
            fee_amount=transaction.fee,
            net_amount=captured.amount - transaction.fee,
            currency=captured.currency,
            ledger_transaction_id=transaction.id,
        )
        await uow.emit(
            topics.PAYMENT_SETTLED,
            new_envelope(
                topics.PAYMENT_SETTLED,
                settled,
                correlation_id=captured.payment_id,
                causation_id=envelope.message_id,
                producer=PRODUCER,
            ),
        )
        log.info("settled: fee %d %s", transaction.fee, captured.currency)
