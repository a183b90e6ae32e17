"""Fraud reports flow back: the card goes on the block list, the payment into labeled history.

Routed by the service's HandlerTable (bootstrap.py) and run idempotently: the inbox row, the
list entry (with its audit row, actor "fraud-report") and the labeled row commit together; a
redelivered report changes nothing.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fraud.adapters.decisions import DecisionRepository
from fraud.adapters.labeled_history import FraudLabel, add_fraud_label
from fraud.service_layer.policy_admin import add_entry
from sanalpos_common.db import UnitOfWork
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import FraudReported

log = logging.getLogger(__name__)
ACTOR = "fraud-report"
BLOCK_LIST = "block_cards"


async def on_fraud_reported(uow: UnitOfWork, envelope: Envelope[Any]) -> None:
    report: FraudReported = envelope.payload
    note = f"payment {report.payment_id} reported ({report.source.value}): {report.reason}"[:500]
    added = await add_entry(uow.conn, BLOCK_LIST, report.card_fingerprint, ACTOR, note)
    decision = await DecisionRepository(uow.conn).scoring_context(report.payment_id)
    await add_fraud_label(
        uow.conn,
        FraudLabel(
            payment_id=report.payment_id,
            source=report.source.value,
            reason=report.reason,
            reported_at=report.reported_at,
            merchant_id=report.merchant_id,
            amount=decision["amount"] if decision else None,
            currency=decision["currency"] if decision else None,
            card_fingerprint=report.card_fingerprint,
            card_bin=decision["card_bin"] if decision else report.card_bin,
            payment_created_at=decision["payment_created_at"] if decision else None,
            features=_features(report, decision),
        ),
    )
    log.info(
        "fraud report recorded (card %s block list)",
        "added to" if added else "already on",
        extra={"payment_id": str(report.payment_id)},
    )


def _features(report: FraudReported, decision: Any) -> dict[str, Any]:
    """The attributes the payment was scored with; the report's own context when fraud never
    scored it (e.g. a payment older than this service's history)."""
    if decision is not None and decision["attributes"] is not None:
        stored: dict[str, Any] = json.loads(decision["attributes"])
        return stored
    context = report.context.model_dump(mode="json") if report.context else {}
    return {
        "merchant_id": report.merchant_id,
        "card.bin": report.card_bin,
        "card.fingerprint": report.card_fingerprint,
        **{f"context.{k}": v for k, v in context.items() if v is not None},
    }
