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

from authorization.domain.lifecycle import (
    Authorization,
    OperationRefused,
    check_capture,
    check_refund,
    plan_void,
    status_after_refund,
)
from authorization.service_layer.expiry import expire_preauth
from authorization.service_layer.ports import Issuer, Repositories
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
    payment_ref,
)

log = logging.getLogger(__name__)
Command: TypeAlias = CapturePayment | VoidPayment | RefundPayment


@dataclass(frozen=True)
class PaymentCommands:
    issuer: Issuer
    repositories: Repositories
    clock: Callable[[], datetime]

    async def capture(self, uow: UnitOfWork, envelope: Envelope[Any]) -> None:
        command: CapturePayment = envelope.payload
        try:
            state = await self._locked(uow, command)
            now = self.clock()
            if state.is_past_expiry(now):
                # Expire it here rather than wait for the scan: the answer is the same.
                await expire_preauth(uow, self.issuer, self.repositories, state, now)
                state = await self._locked(uow, command)
            check_capture(state, command.amount, command.currency, now)
        except OperationRefused as refused:
            await _fail(uow, command, PaymentOperation.CAPTURE, refused, command.amount)
            return
        await self.issuer.capture(uow.conn, command.payment_id, command.amount)
        await self.repositories.authorizations(uow).mark_captured(
            command.payment_id, command.amount
        )
        assert state.auth_code is not None
        await uow.emit(
            PaymentCaptured(
                **payment_ref(command),
                installments=state.installments,
                auth_code=state.auth_code,
                authorized_amount=state.amount,
            ),
        )
        log.info("captured %d of %d", command.amount, state.amount)

    async def void(self, uow: UnitOfWork, envelope: Envelope[Any]) -> None:
        command: VoidPayment = envelope.payload
        try:
            state = await self._locked(uow, command)
            plan = plan_void(state)
        except OperationRefused as refused:
            await _fail(uow, command, PaymentOperation.VOID, refused)
            return
        if plan.after_capture:
            amount = await self.issuer.reverse(uow.conn, command.payment_id)
        else:
            amount = await self.issuer.release(uow.conn, command.payment_id)
        await self.repositories.authorizations(uow).mark_voided(command.payment_id, state.status)
        await uow.emit(
            PaymentVoided(
                **payment_ref(state, amount=amount),
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
        repo = self.repositories.authorizations(uow)
        try:
            state = await self._locked(uow, command)
            if await repo.refund_exists(command.refund_id):
                log.info("refund %s already executed; ignoring the repeat", command.refund_id)
                return
            check_refund(state, command.amount, command.currency)
        except OperationRefused as refused:
            await _fail(uow, command, PaymentOperation.REFUND, refused, command.amount)
            return
        if not await repo.claim_refund(state, command.refund_id, command.amount, command.reason):
            log.info("refund %s executed meanwhile; ignoring the repeat", command.refund_id)
            return
        await self.issuer.refund(uow.conn, command.payment_id, command.amount)
        status = status_after_refund(state, command.amount)
        await repo.mark_refunded(state, command.amount, status)
        await uow.emit(
            PaymentRefunded(
                **payment_ref(command),
                refund_id=command.refund_id,
                reason=command.reason,
            ),
        )
        log.info("refunded %d (%s)", command.amount, status.value)

    async def _locked(self, uow: UnitOfWork, command: Command) -> Authorization:
        """The command's payment, row-locked; refused when there is none for its merchant."""
        state = await self.repositories.authorizations(uow).lock(command.payment_id)
        if state is not None and state.merchant_id == command.merchant_id:
            return state
        if await self.repositories.reviews(uow).is_pending(command.payment_id, command.merchant_id):
            raise OperationRefused("payment is awaiting fraud review: nothing is authorized yet")
        if await self.repositories.challenges(uow).is_pending(
            command.payment_id, command.merchant_id
        ):
            raise OperationRefused(
                "payment is awaiting 3-D Secure authentication: nothing is authorized yet"
            )
        raise OperationRefused("no authorization for this payment")


async def _fail(
    uow: UnitOfWork,
    command: Command,
    operation: PaymentOperation,
    refused: OperationRefused,
    amount: int | None = None,
) -> None:
    await uow.emit(
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
