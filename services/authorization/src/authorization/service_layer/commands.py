"""Capture, void and refund commands from intake, executed against the issuer.

Each runs under the payment's row lock. A command the payment's state does not allow is
answered with `payment.operation-failed` (a business outcome, not a poison message: no
dead-letter). Intake enforces the merchant's cut-off before it sends a void; this side executes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

from authorization.adapters.authorization_repository import AuthorizationRepository
from authorization.adapters.issuer_simulator import IssuerSimulator
from authorization.adapters.review_repository import ReviewRepository
from authorization.domain.lifecycle import (
    Authorization,
    OperationRefused,
    check_capture,
    check_refund,
    plan_void,
    status_after_refund,
)
from authorization.service_layer.emitting import Emitter
from authorization.service_layer.expiry import expire_preauth
from sanalpos_common import topics
from sanalpos_common.db import UnitOfWork
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import (
    CapturePayment,
    PaymentCaptured,
    PaymentOperation,
    PaymentOperationFailed,
    PaymentRefunded,
    PaymentVoided,
    RefundPayment,
    VoidPayment,
)

log = logging.getLogger(__name__)
Command: TypeAlias = CapturePayment | VoidPayment | RefundPayment


@dataclass(frozen=True)
class PaymentCommands:
    issuer: IssuerSimulator
    clock: Callable[[], datetime]

    async def capture(self, uow: UnitOfWork, envelope: Envelope[Any]) -> None:
        command: CapturePayment = envelope.payload
        emit = Emitter(uow, command.payment_id, envelope.message_id)
        try:
            state = await self._locked(uow, command)
            now = self.clock()
            if state.is_past_expiry(now):
                # Expire it here rather than wait for the scan: the answer is the same.
                await expire_preauth(uow.conn, self.issuer, state, emit, now)
                state = await self._locked(uow, command)
            check_capture(state, command.amount, command.currency, now)
        except OperationRefused as refused:
            await _fail(emit, command, PaymentOperation.CAPTURE, refused, command.amount)
            return
        await self.issuer.capture(uow.conn, command.payment_id, command.amount)
        await AuthorizationRepository(uow.conn).mark_captured(command.payment_id, command.amount)
        assert state.auth_code is not None
        await emit(
            topics.PAYMENT_CAPTURED,
            PaymentCaptured(
                payment_id=command.payment_id,
                merchant_id=command.merchant_id,
                amount=command.amount,
                currency=command.currency,
                installments=state.installments,
                auth_code=state.auth_code,
                authorized_amount=state.amount,
            ),
        )
        log.info("captured %d of %d", command.amount, state.amount)

    async def void(self, uow: UnitOfWork, envelope: Envelope[Any]) -> None:
        command: VoidPayment = envelope.payload
        emit = Emitter(uow, command.payment_id, envelope.message_id)
        try:
            state = await self._locked(uow, command)
            plan = plan_void(state)
        except OperationRefused as refused:
            await _fail(emit, command, PaymentOperation.VOID, refused)
            return
        if plan.after_capture:
            amount = await self.issuer.reverse(uow.conn, command.payment_id)
        else:
            amount = await self.issuer.release(uow.conn, command.payment_id)
        await AuthorizationRepository(uow.conn).mark_voided(command.payment_id, state.status)
        await emit(
            topics.PAYMENT_VOIDED,
            PaymentVoided(
                payment_id=command.payment_id,
                merchant_id=command.merchant_id,
                amount=amount,
                currency=state.currency,
                after_capture=plan.after_capture,
            ),
        )
        log.info(
            "voided %s capture; %d back to the card",
            "after" if plan.after_capture else "before",
            amount,
        )

    async def refund(self, uow: UnitOfWork, envelope: Envelope[Any]) -> None:
        command: RefundPayment = envelope.payload
        emit = Emitter(uow, command.payment_id, envelope.message_id)
        repo = AuthorizationRepository(uow.conn)
        try:
            state = await self._locked(uow, command)
            if await repo.refund_exists(command.refund_id):
                log.info("refund %s already executed; ignoring the repeat", command.refund_id)
                return
            check_refund(state, command.amount, command.currency)
        except OperationRefused as refused:
            await _fail(emit, command, PaymentOperation.REFUND, refused, command.amount)
            return
        if not await repo.claim_refund(state, command.refund_id, command.amount, command.reason):
            log.info("refund %s executed meanwhile; ignoring the repeat", command.refund_id)
            return
        await self.issuer.refund(uow.conn, command.payment_id, command.amount)
        status = status_after_refund(state, command.amount)
        await repo.mark_refunded(state, command.amount, status)
        await emit(
            topics.PAYMENT_REFUNDED,
            PaymentRefunded(
                refund_id=command.refund_id,
                payment_id=command.payment_id,
                merchant_id=command.merchant_id,
                amount=command.amount,
                currency=command.currency,
                reason=command.reason,
            ),
        )
        log.info("refunded %d (%s)", command.amount, status.value)

    async def _locked(self, uow: UnitOfWork, command: Command) -> Authorization:
        """The command's payment, row-locked; refused when there is none for its merchant."""
        state = await AuthorizationRepository(uow.conn).lock(command.payment_id)
        if state is not None and state.merchant_id == command.merchant_id:
            return state
        if await ReviewRepository(uow.conn).is_pending(command.payment_id, command.merchant_id):
            raise OperationRefused("payment is awaiting fraud review: nothing is authorized yet")
        raise OperationRefused("no authorization for this payment")


async def _fail(
    emit: Emitter,
    command: Command,
    operation: PaymentOperation,
    refused: OperationRefused,
    amount: int | None = None,
) -> None:
    await emit(
        topics.PAYMENT_OPERATION_FAILED,
        PaymentOperationFailed(
            payment_id=command.payment_id,
            merchant_id=command.merchant_id,
            operation=operation,
            refund_id=getattr(command, "refund_id", None),
            amount=amount,
            reason=refused.reason,
        ),
    )
    log.info("%s refused: %s", operation.value, refused.reason)
