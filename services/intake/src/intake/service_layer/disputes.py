"""The merchant's disputes: intake's copy of settlement's (settlement.dispute-updated.v1), read
through the API, answered before their deadline (accept, or evidence), each answer sent to
settlement as merchant.dispute-responded.v1 through the outbox. A lost dispute is reported to
fraud once, as a chargeback (FraudReported), with the card's fingerprint and BIN."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from intake.adapters.disputes import DisputeReadModel
from intake.service_layer.idempotency import Response
from intake.service_layer.problems import ProblemDetails, Refused, not_found
from sanalpos_common.db import UnitOfWork
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import (
    DisputeResponded,
    DisputeResponse,
    DisputeStatus,
    DisputeUpdated,
    EvidenceDocument,
    FraudReported,
    FraudReportSource,
    RiskContext,
)

log = logging.getLogger(__name__)

FINAL = {DisputeStatus.WON.value, DisputeStatus.LOST.value}


async def on_dispute_updated(uow: UnitOfWork, envelope: Envelope[DisputeUpdated]) -> None:
    dispute = envelope.payload
    disputes = DisputeReadModel(uow.conn)
    if not await disputes.apply(dispute):
        return
    if dispute.status is DisputeStatus.LOST and await disputes.claim_fraud_report(
        dispute.dispute_id
    ):
        await _report_chargeback(uow, dispute)


async def _report_chargeback(uow: UnitOfWork, dispute: DisputeUpdated) -> None:
    payment = await uow.conn.fetchrow(
        "SELECT card_fingerprint, card_bin, risk_context FROM payments "
        "WHERE id = $1 AND merchant_id = $2",
        dispute.payment_id,
        dispute.merchant_id,
    )
    if payment is None:
        log.warning("lost dispute %s of an unknown payment: not reported", dispute.dispute_id)
        return
    context = payment["risk_context"]
    if isinstance(context, str):
        context = json.loads(context)
    await uow.emit(
        FraudReported(
            payment_id=dispute.payment_id,
            merchant_id=dispute.merchant_id,
            source=FraudReportSource.CHARGEBACK,
            reason=f"chargeback {dispute.reason_code}: {dispute.reason}"[:500],
            reported_at=dispute.updated_at,
            card_fingerprint=payment["card_fingerprint"],
            card_bin=payment["card_bin"],
            context=None if context is None else RiskContext.model_validate(context),
        )
    )
    log.info(
        "lost dispute %s reported to fraud as a chargeback",
        dispute.dispute_id,
        extra={"payment_id": str(dispute.payment_id)},
    )


def dispute_view(
    row: dict[str, Any], documents: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    evidence = None
    if row["response"] == DisputeResponse.EVIDENCE.value:
        evidence = {
            "text": row["text"],
            "references": row["refs"],
            "documents": [
                {
                    "id": str(d["document_id"]),
                    "file_name": d["file_name"],
                    "content_type": d["content_type"],
                    "size": d["size"],
                    "sha256": d["sha256"],
                }
                for d in documents or []
            ],
        }
    return {
        "id": str(row["dispute_id"]),
        "object": "dispute",
        "payment_id": str(row["payment_id"]),
        "status": row["status"],
        "amount": row["amount"],
        "currency": row["currency"].strip(),
        "fee": row["fee"],
        "held": row["held"],
        "reason_code": row["reason_code"],
        "reason": row["reason"],
        "respond_by": row["respond_by"].isoformat(),
        "response": row["response"],
        "responded_at": None if row["responded_at"] is None else row["responded_at"].isoformat(),
        "evidence": evidence,
        "outcome_reason": row["outcome_reason"],
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }


async def list_disputes(
    pool: asyncpg.Pool, merchant_id: str, limit: int, after: uuid.UUID | None, status: str | None
) -> dict[str, Any]:
    rows = await DisputeReadModel(pool).newest(merchant_id, limit + 1, after, status)
    page = rows[:limit]
    more = len(rows) > limit
    return {
        "object": "list",
        "data": [dispute_view(r) for r in page],
        "has_more": more,
        "next_cursor": str(page[-1]["dispute_id"]) if more else None,
    }


async def read_dispute(
    pool: asyncpg.Pool, merchant_id: str, dispute_id: uuid.UUID
) -> dict[str, Any]:
    disputes = DisputeReadModel(pool)
    row = await disputes.get(merchant_id, dispute_id)
    if row is None:
        raise Refused(not_found("dispute", str(dispute_id)))
    return dispute_view(row, await disputes.documents(dispute_id))


@dataclass(frozen=True)
class Document:
    file_name: str
    content_type: str
    content_base64: str


def _documents(documents: list[Document]) -> list[tuple[EvidenceDocument, bytes]]:
    """Decoded and digested (the request model checked the encoding and the size)."""
    out = []
    for d in documents:
        content = base64.b64decode(d.content_base64, validate=True)
        out.append(
            (
                EvidenceDocument(
                    document_id=uuid.uuid4(),
                    file_name=d.file_name,
                    content_type=d.content_type,
                    size=len(content),
                    sha256=hashlib.sha256(content).hexdigest(),
                ),
                content,
            )
        )
    return out


def _refusal(status: int, slug: str, title: str, detail: str) -> Refused:
    return Refused(ProblemDetails(status, slug, title, detail))


async def respond(
    uow: UnitOfWork,
    merchant_id: str,
    dispute_id: uuid.UUID,
    response: DisputeResponse,
    text: str | None = None,
    references: list[str] | None = None,
    documents: list[Document] | None = None,
    now: datetime | None = None,
) -> Response:
    """Accept, or submit evidence: once, before the deadline, on a dispute not yet decided."""
    now = now or datetime.now(UTC)
    disputes = DisputeReadModel(uow.conn)
    row = await disputes.get(merchant_id, dispute_id, lock=True)
    if row is None:
        raise Refused(not_found("dispute", str(dispute_id)))
    if now > row["respond_by"]:
        raise _refusal(
            409,
            "dispute-deadline-passed",
            "The deadline to respond has passed",
            f"answers were taken until {row['respond_by'].isoformat()}",
        )
    if row["status"] in FINAL:
        raise _refusal(409, "dispute-closed", "Dispute is closed", f"it is {row['status']}")
    if row["response"] is not None:
        raise _refusal(
            409,
            "dispute-already-answered",
            "Dispute already answered",
            f"answered ({row['response']}) at {row['responded_at'].isoformat()}",
        )
    decoded = _documents(documents or [])
    refs = list(references or [])
    await disputes.answer(row, response.value, text, refs, decoded, now)
    await uow.emit(
        DisputeResponded(
            dispute_id=dispute_id,
            payment_id=row["payment_id"],
            merchant_id=merchant_id,
            response=response,
            text=text,
            references=tuple(refs),
            documents=tuple(d for d, _ in decoded),
            responded_at=now,
        )
    )
    log.info(
        "dispute %s answered: %s",
        dispute_id,
        response.value,
        extra={"payment_id": str(row["payment_id"])},
    )
    answered = await disputes.get(merchant_id, dispute_id)
    assert answered is not None
    return Response(202, dispute_view(answered, await disputes.documents(dispute_id)))
