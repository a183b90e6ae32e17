"""Disputes (chargebacks) on your payments: list, read, accept, or contest with evidence
before the deadline. Scoped to the calling merchant: another merchant's dispute is 404."""

from __future__ import annotations

import base64
import binascii
import uuid
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationInfo, field_validator

from intake.domain.commands import RequestBody, TextWithoutCardNumber
from intake.entrypoints.http.deps import AppContainer, IdempotencyKey, Merchant
from intake.entrypoints.http.responses import endpoint_of, http_response
from intake.service_layer import disputes
from intake.service_layer.idempotency import idempotency_scope, run_in_transaction
from sanalpos_common.crypto.card import holds_card_number
from sanalpos_common.schemas.events import DisputeResponse

MAX_DOCUMENT_BYTES = 32 * 1024
"""Decoded; the whole request body stays within the API's 64 KiB limit (413 beyond it)."""
DOCUMENT_TYPES = ("application/pdf", "image/png", "image/jpeg", "text/plain")

_EXAMPLE: dict[str, Any] = {
    "id": "7b0c2f7e-4c5d-4a1b-9e8f-0a1b2c3d4e5f",
    "object": "dispute",
    "payment_id": "0b8a5a56-8a44-4f57-8f2d-0d3f4d2f3a11",
    "status": "needs_response",
    "amount": 12_500,
    "currency": "TRY",
    "fee": 15_000,
    "held": 12_500,
    "reason_code": "13.1",
    "reason": "merchandise not received",
    "respond_by": "2026-12-10T09:30:00+00:00",
    "response": None,
    "responded_at": None,
    "evidence": None,
    "outcome_reason": None,
    "created_at": "2026-12-03T09:30:00+00:00",
    "updated_at": "2026-12-03T09:30:00+00:00",
}


_EVIDENCE_EXAMPLE: dict[str, Any] = {
    "text": "Delivered on 2026-11-28, signed by the cardholder.",
    "references": ["TR123456789"],
    "documents": [
        {
            "id": "4d1f0c9e-2b7a-4f3e-9c1d-5a6b7c8d9e0f",
            "file_name": "delivery-receipt.pdf",
            "content_type": "application/pdf",
            "size": 18_204,
            "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        }
    ],
}


class DocumentIn(RequestBody):
    file_name: TextWithoutCardNumber = Field(
        min_length=1,
        max_length=200,
        description="The document's file name",
        examples=["delivery-receipt.pdf"],
    )
    content_type: Literal["application/pdf", "image/png", "image/jpeg", "text/plain"] = Field(
        description="Its media type", examples=["application/pdf"]
    )
    content_base64: str = Field(
        min_length=4,
        max_length=(MAX_DOCUMENT_BYTES + 2) // 3 * 4,
        pattern=r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$",
        description=f"The document, base64; at most {MAX_DOCUMENT_BYTES} bytes decoded. A "
        "text/plain document must not contain a card number.",
        examples=["JVBERi0xLjQK"],
    )

    @field_validator("content_base64")
    @classmethod
    def _base64(cls, value: str, info: ValidationInfo) -> str:
        try:
            content = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("must be standard base64") from None
        if len(content) > MAX_DOCUMENT_BYTES:
            raise ValueError(f"at most {MAX_DOCUMENT_BYTES} bytes decoded")
        if info.data.get("content_type") == "text/plain" and holds_card_number(
            content.decode("utf-8", errors="replace")
        ):
            raise ValueError("must not contain a card number")
        return value


class EvidenceRequest(RequestBody):
    text: TextWithoutCardNumber = Field(
        min_length=1,
        max_length=20_000,
        description="Your case for the issuer; must not contain a card number",
        examples=["Delivered on 2026-11-28, signed by the cardholder; tracking TR123456789."],
    )
    references: list[Annotated[TextWithoutCardNumber, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list,
        max_length=20,
        description="Your own file names, tracking numbers or URLs",
        examples=[["https://shop.example/orders/ORD-42"]],
    )
    documents: list[DocumentIn] = Field(
        default_factory=list,
        max_length=5,
        description="Up to 5 documents, base64 (the whole body within 64 KiB)",
        examples=[
            [
                {
                    "file_name": "receipt.txt",
                    "content_type": "text/plain",
                    "content_base64": "RGVsaXZlcmVkIDI4IE5vdg==",
                }
            ]
        ],
    )


class DisputeOut(BaseModel):
    id: str = Field(description="The dispute's id", examples=[_EXAMPLE["id"]])
    object: str = Field(description="Always `dispute`", examples=["dispute"])
    payment_id: str = Field(description="The disputed payment", examples=[_EXAMPLE["payment_id"]])
    status: Literal["needs_response", "under_review", "won", "lost"] = Field(
        description="needs_response until you answer; under_review once you sent evidence",
        examples=["needs_response"],
    )
    amount: int = Field(description="Disputed, minor units", examples=[12_500])
    currency: str = Field(description="ISO 4217", examples=["TRY"])
    fee: int = Field(
        description="Debited on top of the amount if the dispute is lost, minor units",
        examples=[15_000],
    )
    held: int = Field(
        description="Held from your balance now, minor units (0 once decided)", examples=[12_500]
    )
    reason_code: str = Field(description="The card scheme's reason code", examples=["13.1"])
    reason: str = Field(description="The issuer's reason", examples=["merchandise not received"])
    respond_by: str = Field(
        description="Answers are taken until then", examples=["2026-12-10T09:30:00+00:00"]
    )
    response: Literal["accept", "evidence"] | None = Field(
        default=None, description="Your answer, if any", examples=[None]
    )
    responded_at: str | None = Field(default=None, description="When you answered", examples=[None])
    evidence: dict[str, Any] | None = Field(
        default=None,
        description="Your evidence: text, references, documents by digest",
        examples=[_EVIDENCE_EXAMPLE],
    )
    outcome_reason: Literal["accepted", "no_response", "issuer_won", "issuer_lost"] | None = Field(
        default=None, description="Why it was decided so (when won or lost)", examples=[None]
    )
    created_at: str = Field(
        description="When the issuer raised it", examples=["2026-12-03T09:30:00+00:00"]
    )
    updated_at: str = Field(description="Its last change", examples=["2026-12-03T09:30:00+00:00"])


class DisputeList(BaseModel):
    object: str = Field(default="list", description="Always `list`", examples=["list"])
    data: list[DisputeOut] = Field(description="Newest first", examples=[[_EXAMPLE]])
    has_more: bool = Field(description="Whether another page follows", examples=[False])
    next_cursor: str | None = Field(
        default=None, description="Pass as ?cursor= for the next page", examples=[None]
    )


class DisputeQuery(BaseModel):
    model_config = {"extra": "forbid"}

    limit: int = Field(default=20, ge=1, le=100, description="Disputes per page")
    cursor: uuid.UUID | None = Field(default=None, description="`next_cursor` of the last page")
    status: Literal["needs_response", "under_review", "won", "lost"] | None = Field(
        default=None, description="Only disputes in this status"
    )


_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such dispute for this merchant"},
    409: {"description": "Deadline passed, already answered, or decided"},
    422: {"description": "Invalid request, or Idempotency-Key reused with another body"},
}

router = APIRouter(prefix="/v1", tags=["disputes"])


@router.get("/disputes", response_model=DisputeList, summary="List your disputes")
async def list_disputes(
    query: Annotated[DisputeQuery, Query()], merchant_id: Merchant, c: AppContainer
) -> dict[str, Any]:
    """Newest first; `status` filters."""
    return await disputes.list_disputes(
        c.pool, merchant_id, query.limit, query.cursor, query.status
    )


@router.get(
    "/disputes/{dispute_id}",
    response_model=DisputeOut,
    responses={404: _ERRORS[404]},
    summary="Read one dispute",
)
async def read_dispute(
    dispute_id: uuid.UUID, merchant_id: Merchant, c: AppContainer
) -> dict[str, Any]:
    """The dispute, your answer and its evidence; another merchant's dispute is 404."""
    return await disputes.read_dispute(c.pool, merchant_id, dispute_id)


@router.post(
    "/disputes/{dispute_id}/accept",
    status_code=202,
    response_model=DisputeOut,
    responses=_ERRORS,
    summary="Accept a dispute",
)
async def accept(
    dispute_id: uuid.UUID,
    request: Request,
    merchant_id: Merchant,
    c: AppContainer,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """You do not contest it: it is lost (the amount and the dispute fee are debited)."""
    scope = idempotency_scope(merchant_id, idempotency_key, endpoint_of(request), {})
    work = partial(
        disputes.respond,
        merchant_id=merchant_id,
        dispute_id=dispute_id,
        response=DisputeResponse.ACCEPT,
    )
    return http_response(await run_in_transaction(c.pool, scope, work))


@router.post(
    "/disputes/{dispute_id}/evidence",
    status_code=202,
    response_model=DisputeOut,
    responses=_ERRORS,
    summary="Contest a dispute with evidence",
)
async def evidence(
    dispute_id: uuid.UUID,
    body: EvidenceRequest,
    request: Request,
    merchant_id: Merchant,
    c: AppContainer,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Once, before `respond_by`: the dispute goes `under_review` and the issuer decides."""
    scope = idempotency_scope(merchant_id, idempotency_key, endpoint_of(request), body.model_dump())
    work = partial(
        disputes.respond,
        merchant_id=merchant_id,
        dispute_id=dispute_id,
        response=DisputeResponse.EVIDENCE,
        text=body.text,
        references=list(body.references),
        documents=[
            disputes.Document(d.file_name, d.content_type, d.content_base64) for d in body.documents
        ],
    )
    return http_response(await run_in_transaction(c.pool, scope, work))
