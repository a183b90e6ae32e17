"""The payment lifecycle after creation: capture, void, refund and fraud reports asked by the
merchant (commands and events through the outbox), and the read model that follows outcome
events. Each operation runs in the caller's unit of work with the payment row locked, so
concurrent operations on one payment are serialized (no over-refund) and an idempotency key
can complete in the same transaction."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from intake.adapters.payments import LifecycleRepository, PaymentRepository
from intake.domain.outcomes import (
    OUTCOMES,
    RefundChange,
    RefundFailed,
    RefundSucceeded,
    decision_of,
    record,
    rule_of,
)
from intake.domain.payment import (
    Operation,
    PaymentFacts,
    PaymentState,
    PaymentStatus,
    check_capture,
    check_refund,
    check_void,
    derive_status,
)
from intake.service_layer.idempotency import Response
from intake.service_layer.outcome_waiters import OUTCOME_CHANNEL
from intake.service_layer.views import payment_view, refund_view
from sanalpos_common.business_day import closes_at
from sanalpos_common.db import Connection, UnitOfWork
from sanalpos_common.messaging.consumer import NonRetryable
from sanalpos_common.messaging.routing import HandlerTable
from sanalpos_common.metrics import AuthorizationLatency
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import (
    CapturePayment,
    FraudReported,
    FraudReportSource,
    RefundPayment,
    RiskContext,
    VoidPayment,
)

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
Command = CapturePayment | VoidPayment | RefundPayment | FraudReported
"""What the merchant's operations send (each about one payment)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class PaymentNotFound(Exception):
    """No payment with this id for this merchant (someone else's looks the same)."""


# ------------------------------------------------------------------------------ read model


def facts_of(row: Any, refunds: dict[uuid.UUID, int]) -> PaymentFacts:
    return PaymentFacts(
        action_required=row["action_required"],
        authorized=row["authorized"],
        declined=row["declined"],
        captured_amount=row["captured_amount"],
        voided=row["voided"],
        expired=row["expired"],
        settled=row["settled"],
        refunds=refunds,
    )


async def on_outcome(
    uow: UnitOfWork, envelope: Envelope[Any], latency: AuthorizationLatency | None = None
) -> None:
    """Read model: record the event in the timeline, merge its facts, derive the status, then
    wake the requests waiting for this outcome (on every replica, once this transaction
    commits). What each event type means is its rule in intake.domain.outcomes.

    Facts only grow, so a duplicate or late event cannot move the status backwards.
    The first decision on a pending payment is the end of its authorization latency."""
    payload = envelope.payload
    rule = rule_of(payload)
    lifecycle = LifecycleRepository(uow.conn)
    row = await lifecycle.lock(payload.payment_id)
    if row is None:
        # Outcomes follow payment.initiated, which intake emits only after its own commit.
        raise NonRetryable(f"{envelope.type} for a payment intake does not hold")
    details = rule.details(payload)
    change = rule.refund(payload)
    await _apply_to_refund(lifecycle, payload.payment_id, change)
    facts = record(facts_of(row, await _succeeded_refunds(lifecycle, row, change)), payload)
    status = derive_status(facts)
    captured_at = envelope.occurred_at if rule.marks_capture else None
    answered = tuple(operation.value for operation in rule.answers(payload))
    await lifecycle.apply_outcome(
        payload.payment_id,
        (envelope.message_id, envelope.type, envelope.occurred_at, details),
        facts,
        status,
        captured_at,
        answered,
        OUTCOME_CHANNEL if rule.ends_wait_for(is_sale=row["capture"]) else None,
    )
    decision = decision_of(payload)
    if latency is not None and decision is not None and row["status"] == PaymentStatus.PENDING:
        observed = latency.seconds.labels(decision)
        seconds = max(0.0, (envelope.occurred_at - row["created_at"]).total_seconds())
        uow.after_commit(lambda: observed.observe(seconds))
    log.info("status %s after %s (was %s)", status.value, envelope.type, row["status"])


async def _succeeded_refunds(
    lifecycle: LifecycleRepository, row: Any, change: RefundChange | None
) -> dict[uuid.UUID, int]:
    """The payment's succeeded refunds. Without a refund change in this event and with
    nothing refunded on the locked (current) row there are none, and the read is skipped:
    refunded_amount is written with every refund's success, under the same row lock."""
    if change is None and not row["refunded_amount"]:
        return {}
    return await lifecycle.succeeded_refunds(row["id"])


async def _apply_to_refund(
    lifecycle: LifecycleRepository, payment_id: uuid.UUID, change: RefundChange | None
) -> None:
    if isinstance(change, RefundSucceeded):
        await lifecycle.refund_succeeded(
            change.refund_id, payment_id, change.amount, change.currency, change.reason
        )
    elif isinstance(change, RefundFailed):
        await lifecycle.refund_failed(change.refund_id, change.reason)


def outcome_handlers(latency: AuthorizationLatency | None = None) -> HandlerTable:
    """The read model's table; with `latency`, it also observes authorization latency."""

    async def handle(uow: UnitOfWork, envelope: Envelope[Any]) -> None:
        await on_outcome(uow, envelope, latency)

    return HandlerTable(dict.fromkeys(OUTCOMES, handle))


OUTCOME_HANDLERS = outcome_handlers()
"""Intake's outcome consumer: one handler for every type in the outcome registry."""


async def payment_detail(
    conn: Connection, merchant_id: str, payment_id: uuid.UUID
) -> dict[str, Any]:
    """The payment as the merchant sees it: status, amounts, refunds and the timeline."""
    payments = PaymentRepository(conn)
    row = await payments.get(merchant_id, payment_id)
    if row is None:
        raise PaymentNotFound(payment_id)
    refunds = await LifecycleRepository(conn).refunds(payment_id)
    return payment_view(row, await payments.events(payment_id), refunds)


async def list_refunds(
    conn: Connection, merchant_id: str, payment_id: uuid.UUID
) -> list[dict[str, Any]]:
    if await PaymentRepository(conn).get(merchant_id, payment_id) is None:
        raise PaymentNotFound(payment_id)
    return [refund_view(r) for r in await LifecycleRepository(conn).refunds(payment_id)]


async def get_refund(
    conn: Connection, merchant_id: str, payment_id: uuid.UUID, refund_id: uuid.UUID
) -> dict[str, Any]:
    """One refund of one of the merchant's payments (PaymentNotFound otherwise)."""
    found = [
        r for r in await list_refunds(conn, merchant_id, payment_id) if r["id"] == str(refund_id)
    ]
    if not found:
        raise PaymentNotFound(payment_id)
    return found[0]


# ------------------------------------------------------------------------ merchant operations


def state_of(row: Any) -> PaymentState:
    return PaymentState(
        status=PaymentStatus(row["status"]),
        amount=row["amount"],
        is_preauth=not row["capture"],
        captured_amount=row["captured_amount"],
        pending_operation=row["pending_operation"],
    )


async def _locked(uow: UnitOfWork, merchant_id: str, payment_id: uuid.UUID) -> Any:
    row = await LifecycleRepository(uow.conn).lock_for_merchant(merchant_id, payment_id)
    if row is None:
        raise PaymentNotFound(payment_id)
    return row


async def _emit(uow: UnitOfWork, payload: Command, now: datetime) -> None:
    """Through the outbox, and into the payment's timeline as what the merchant asked."""
    envelope = await uow.emit(payload)
    details = {
        k: (str(v) if isinstance(v, uuid.UUID) else v)
        for k, v in payload.model_dump(mode="json").items()
        if k in {"amount", "refund_id", "reason", "source"}
    }
    await PaymentRepository(uow.conn).record_event(
        envelope.message_id, payload.payment_id, envelope.type, now, details
    )


async def capture_payment(
    uow: UnitOfWork,
    merchant_id: str,
    payment_id: uuid.UUID,
    amount: int | None,
    clock: Clock = utc_now,
) -> Response:
    """Sends CapturePayment for an authorized pre-authorization (default: the whole hold)."""
    row = await _locked(uow, merchant_id, payment_id)
    amount = row["amount"] if amount is None else amount
    check_capture(state_of(row), amount)
    now = clock()
    command = CapturePayment(
        payment_id=payment_id,
        merchant_id=merchant_id,
        amount=amount,
        currency=row["currency"],
        requested_at=now,
    )
    await _emit(uow, command, now)
    await LifecycleRepository(uow.conn).set_pending_operation(payment_id, Operation.CAPTURE)
    log.info("capture of %d requested", amount, extra={"payment_id": str(payment_id)})
    return Response(202, await payment_detail(uow.conn, merchant_id, payment_id))


async def void_payment(
    uow: UnitOfWork, merchant_id: str, payment_id: uuid.UUID, clock: Clock = utc_now
) -> Response:
    """Sends VoidPayment: before capture, or after it until the capture's batch closes."""
    row = await _locked(uow, merchant_id, payment_id)
    now = clock()
    check_void(state_of(row), now, await _batch_closes_at(uow, merchant_id, row))
    command = VoidPayment(payment_id=payment_id, merchant_id=merchant_id, requested_at=now)
    await _emit(uow, command, now)
    await LifecycleRepository(uow.conn).set_pending_operation(payment_id, Operation.VOID)
    log.info("void requested", extra={"payment_id": str(payment_id)})
    return Response(202, await payment_detail(uow.conn, merchant_id, payment_id))


async def _batch_closes_at(uow: UnitOfWork, merchant_id: str, row: Any) -> datetime | None:
    """When the end-of-day batch holding this payment's capture closes (None: not captured)."""
    captured_at = row["captured_at"]
    if captured_at is None:
        return None
    merchant = await LifecycleRepository(uow.conn).merchant_cutoff(merchant_id)
    return closes_at(captured_at, merchant["time_zone"], merchant["cutoff_time"])


async def refund_payment(
    uow: UnitOfWork,
    merchant_id: str,
    payment_id: uuid.UUID,
    amount: int,
    reason: str,
    clock: Clock = utc_now,
) -> Response:
    """Records a pending refund and sends RefundPayment, if the running total allows it.

    The payment row lock makes the check-and-insert atomic across concurrent refunds."""
    row = await _locked(uow, merchant_id, payment_id)
    lifecycle = LifecycleRepository(uow.conn)
    check_refund(state_of(row), amount, await lifecycle.committed_refund_total(payment_id))
    now = clock()
    refund = {
        "id": uuid.uuid4(),
        "payment_id": payment_id,
        "amount": amount,
        "currency": row["currency"],
        "reason": reason,
        "created_at": now,
    }
    await lifecycle.add_refund(refund)
    command = RefundPayment(
        refund_id=refund["id"],
        payment_id=payment_id,
        merchant_id=merchant_id,
        amount=amount,
        currency=row["currency"],
        reason=reason,
        requested_at=now,
    )
    await _emit(uow, command, now)
    log.info("refund of %d requested", amount, extra={"payment_id": str(payment_id)})
    body = refund_view({**refund, "status": "pending", "failure_reason": None, "updated_at": now})
    return Response(202, body)


async def report_fraud(
    uow: UnitOfWork,
    merchant_id: str,
    payment_id: uuid.UUID,
    reason: str,
    clock: Clock = utc_now,
) -> Response:
    """Emits FraudReported (source merchant) with the card's fingerprint, BIN and the payment's
    risk context, for fraud's block lists and labeled history. Any status may be reported."""
    row = await _locked(uow, merchant_id, payment_id)
    now = clock()
    context = row["risk_context"]
    if isinstance(context, str):
        context = json.loads(context)
    event = FraudReported(
        payment_id=payment_id,
        merchant_id=merchant_id,
        source=FraudReportSource.MERCHANT,
        reason=reason,
        reported_at=now,
        card_fingerprint=row["card_fingerprint"],
        card_bin=row["card_bin"],
        context=None if context is None else RiskContext.model_validate(context),
    )
    await _emit(uow, event, now)
    log.info("fraud reported by the merchant", extra={"payment_id": str(payment_id)})
    body = {
        "object": "fraud_report",
        "payment_id": str(payment_id),
        "reason": reason,
        "reported_at": now.isoformat(),
    }
    return Response(202, body)
