"""Books captures, voids and refunds into the ledger, each in its merchant's open batch, and
keeps merchant profiles. Payments are settled later, when their batch closes
(service_layer/batch_closing.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sanalpos_common.db import UnitOfWork
from sanalpos_common.fees import DEFAULT_FEE_PLAN
from sanalpos_common.messaging.consumer import NonRetryable
from sanalpos_common.messaging.routing import HandlerTable
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import (
    ClearingReported,
    DisputeDecided,
    DisputeRaised,
    DisputeResponded,
    MerchantUpdated,
    PaymentCaptured,
    PaymentRefunded,
    PaymentVoided,
    PayoutAccountUpdated,
)
from settlement.adapters.batches import CapturedPayment
from settlement.adapters.payouts import PayoutAccountRepository
from settlement.domain.ledger import (
    LedgerTransaction,
    capture_transaction,
    refund_transaction,
)
from settlement.domain.merchants import InvalidMerchantProfile, profile_from_event
from settlement.service_layer import fx
from settlement.service_layer.disputes import DisputeDesk, on_dispute_responded
from settlement.service_layer.ports import Repositories
from settlement.service_layer.reconciliation import on_clearing_reported

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SettlementHandlers:
    repositories: Repositories
    fallback_plan: str = DEFAULT_FEE_PLAN
    disputes: DisputeDesk | None = None
    """The issuer simulator's chargebacks and rulings (absent in tests of the ledger alone)."""

    def table(self) -> HandlerTable:
        """This service's routes by message type; built once, at start-up."""
        issuer: dict[Any, Any] = {}
        if self.disputes is not None:
            issuer = {
                DisputeRaised: self.disputes.on_dispute_raised,
                DisputeDecided: self.disputes.on_dispute_decided,
            }
        return HandlerTable(
            {
                **issuer,
                PaymentCaptured: self.on_captured,
                PaymentVoided: self.on_voided,
                PaymentRefunded: self.on_refunded,
                MerchantUpdated: self.on_merchant_updated,
                PayoutAccountUpdated: self.on_payout_account_updated,
                DisputeResponded: on_dispute_responded,
                ClearingReported: on_clearing_reported,
            }
        )

    async def on_captured(self, uow: UnitOfWork, envelope: Envelope[Any]) -> None:
        captured: PaymentCaptured = envelope.payload
        captures = self.repositories.captures(uow)
        booked, profile = await captures.before_capture(captured.payment_id, captured.merchant_id)
        if booked:
            log.info("capture already in the ledger")
            return
        transaction = capture_transaction(
            captured.payment_id,
            captured.merchant_id,
            captured.amount,
            captured.currency,
            captured.installments,
            profile.plan_for(captured.installments, self.fallback_plan),
        )
        day = profile.batch_date(envelope.occurred_at)
        # a payment converted at capture belongs in its settlement-currency batch
        choice = await fx.choose(uow, profile, captured.currency, envelope.occurred_at)
        batch_currency = choice.batch_currency(captured.currency)
        while True:
            booking = await captures.book(
                transaction,
                batch_currency=batch_currency,
                day=day,
                payment_currency=captured.currency,
                gross=captured.amount,
                installments=captured.installments,
            )
            if booking is not None:
                break
            # no open batch: open it (or another transaction just did) and book again
            await captures.add_batch(
                captured.merchant_id, batch_currency, day, profile.closes_at(day)
            )
        if not booking.recorded:
            log.info("capture already in the ledger")
            return
        batch_id = booking.batch_id
        payment = CapturedPayment(
            payment_id=captured.payment_id,
            merchant_id=captured.merchant_id,
            currency=captured.currency,
            batch_id=batch_id,
            capture_transaction_id=transaction.id,
            gross=captured.amount,
            fee=transaction.fee,
            status="captured",
            installments=captured.installments,
        )
        if choice.target is not None:
            ledger = self.repositories.ledger(uow)
            await fx.book_conversion(
                uow, ledger, payment, choice, profile, batch_id, envelope.occurred_at
            )
        log.info(
            "captured into batch %s of %s: fee %d %s",
            batch_id,
            day,
            transaction.fee,
            captured.currency,
        )
        if booking.early_void:
            await self._reverse(uow, payment, transaction, batch_id)

    async def on_voided(self, uow: UnitOfWork, envelope: Envelope[Any]) -> None:
        voided: PaymentVoided = envelope.payload
        if not voided.after_capture:
            return  # a released hold: nothing was booked, nothing to reverse
        payments = self.repositories.payments(uow)
        payment = await payments.get(voided.payment_id)
        if payment is None:
            log.info("void read before its capture; applied when the capture arrives")
            await payments.remember_early_void(voided.payment_id, envelope.message_id)
            return
        if payment.status == "voided":
            return
        batches = self.repositories.batches(uow)
        batch_id = payment.batch_id
        if not await batches.lock_if_open(batch_id):
            profile = await self.repositories.merchants(uow).profile(payment.merchant_id)
            day = profile.batch_date(envelope.occurred_at)
            converted = await fx.fx_lines(self.repositories.ledger(uow), payment.payment_id)
            batch_id = await batches.open_batch(
                payment.merchant_id,
                fx.batch_currency_of(payment, converted),
                day,
                profile.closes_at(day),
            )
            log.warning(
                "void after the capture's batch %s closed: reversal booked in batch %s",
                payment.batch_id,
                batch_id,
            )
        capture = await self.repositories.ledger(uow).get(payment.capture_transaction_id)
        if capture is None:  # the payment row references it: cannot happen short of tampering
            raise NonRetryable(f"capture transaction {payment.capture_transaction_id} missing")
        await self._reverse(uow, payment, capture, batch_id)

    async def _reverse(
        self,
        uow: UnitOfWork,
        payment: CapturedPayment,
        capture: LedgerTransaction,
        batch_id: Any,
    ) -> None:
        ledger = self.repositories.ledger(uow)
        converted = await fx.fx_lines(ledger, payment.payment_id)
        await ledger.record(fx.reversal(capture, converted), batch_id)
        await self.repositories.payments(uow).mark_voided(payment.payment_id)
        log.info("capture reversed in batch %s", batch_id)

    async def on_refunded(self, uow: UnitOfWork, envelope: Envelope[Any]) -> None:
        refunded: PaymentRefunded = envelope.payload
        profile = await self.repositories.merchants(uow).profile(refunded.merchant_id)
        day = profile.batch_date(envelope.occurred_at)
        transaction = refund_transaction(
            refunded.refund_id,
            refunded.payment_id,
            refunded.merchant_id,
            refunded.amount,
            refunded.currency,
        )
        currency = refunded.currency
        if await fx.fx_lines(self.repositories.ledger(uow), refunded.payment_id):
            found = await fx.refund_transaction_for(
                uow,
                refunded.refund_id,
                refunded.payment_id,
                refunded.merchant_id,
                refunded.amount,
                refunded.currency,
            )
            if found is not None:
                transaction, currency = found
        batch_id = await self.repositories.batches(uow).open_batch(
            refunded.merchant_id, currency, day, profile.closes_at(day)
        )
        if await self.repositories.ledger(uow).record(transaction, batch_id):
            log.info("refund %s booked in batch %s", refunded.refund_id, batch_id)

    async def on_merchant_updated(self, uow: UnitOfWork, envelope: Envelope[Any]) -> None:
        updated: MerchantUpdated = envelope.payload
        try:
            profile = profile_from_event(updated)
        except InvalidMerchantProfile as exc:
            raise NonRetryable(str(exc)) from exc
        if not await self.repositories.merchants(uow).apply(profile, updated.name, updated.active):
            log.info(
                "merchant %s version %d is not newer; ignored", updated.merchant_id, updated.version
            )
            return
        batches = self.repositories.batches(uow)
        open_batches = await batches.open_batches_of(updated.merchant_id)
        await batches.reschedule([(bid, profile.closes_at(day)) for bid, day in open_batches])

    async def on_payout_account_updated(self, uow: UnitOfWork, envelope: Envelope[Any]) -> None:
        account: PayoutAccountUpdated = envelope.payload
        if not await PayoutAccountRepository(uow.conn).apply(account):
            log.info(
                "payout account %s version %d is not newer", account.account_id, account.version
            )
            return
        log.info(
            "payout account %s of %s (%s, ...%s): default %s, active %s",
            account.account_id,
            account.merchant_id,
            account.currency,
            account.iban[-4:],
            account.is_default,
            account.active,
        )
