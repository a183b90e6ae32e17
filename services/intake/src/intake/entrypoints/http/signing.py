"""Admin API for merchants' request-signing secrets (Kafka entry point).

A secret is shown once, in the response that creates it. Creating one is also the rotation:
the previous secret stays valid until it is revoked or the next rotation, so a merchant
switches its producers over without a gap.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, Field

from intake.adapters.signing_secrets import LIVE_SECRETS, SigningSecretStore
from intake.entrypoints.http.deps import SigningSecrets, require_admin
from intake.service_layer.problems import Refused, not_found
from sanalpos_common.http import Problem

MerchantId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        description="The merchant's id",
        examples=["mer_demo"],
    ),
]
_PROBLEM: dict[str, Any] = {
    "description": "Problem details (RFC 9457)",
    "content": {"application/problem+json": {"schema": {"type": "object"}}},
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {**_PROBLEM, "description": "Missing or invalid admin credential"},
    404: {**_PROBLEM, "description": "No such merchant (or secret)"},
    422: {**_PROBLEM, "description": "Invalid path parameter"},
    503: {**_PROBLEM, "description": "The Kafka entry point is disabled (no signing keyring)"},
}


KEY_ID_EXAMPLE = "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"
CREATED_EXAMPLE = "2026-11-27T09:15:00Z"


class SigningSecretCreated(BaseModel):
    id: uuid.UUID = Field(description="The secret's id", examples=[KEY_ID_EXAMPLE])
    merchant_id: str = Field(description="Its merchant", examples=["mer_demo"])
    secret: str = Field(
        description="The signing secret; shown only in this response. HMAC-SHA256 key "
        "(its UTF-8 bytes) for the sanalpos-signature header of Kafka requests",
        examples=["mrsec_3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"],
    )
    prefix: str = Field(
        description="First characters, to recognise it later", examples=["mrsec_3q2-7w"]
    )
    created_at: datetime = Field(description="When it was created", examples=[CREATED_EXAMPLE])
    live_secrets: int = Field(
        description=f"How many secrets verify requests now (at most {LIVE_SECRETS})", examples=[2]
    )


class SigningSecretOut(BaseModel):
    id: uuid.UUID = Field(description="The secret's id", examples=[KEY_ID_EXAMPLE])
    prefix: str = Field(description="First characters of the secret", examples=["mrsec_3q2-7w"])
    created_at: datetime = Field(description="When it was created", examples=[CREATED_EXAMPLE])
    revoked_at: datetime | None = Field(
        default=None,
        description="When it stopped verifying; null while it verifies",
        examples=[None],
    )


class SigningSecretList(BaseModel):
    object: str = Field(default="list", description="Always `list`", examples=["list"])
    data: list[SigningSecretOut] = Field(
        description="Newest first; no secret values",
        examples=[
            [
                {
                    "id": KEY_ID_EXAMPLE,
                    "prefix": "mrsec_3q2-7w",
                    "created_at": CREATED_EXAMPLE,
                    "revoked_at": None,
                }
            ]
        ],
    )


async def _known_merchant(store: SigningSecretStore, merchant_id: str) -> None:
    if not await store.merchant_exists(merchant_id):
        raise Refused(not_found("merchant", merchant_id))


router = APIRouter(
    prefix="/admin/merchants/{merchant_id}/signing-secrets",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses=_ERRORS,
)


@router.post(
    "",
    summary="Create a request-signing secret",
    status_code=201,
    response_model=SigningSecretCreated,
)
async def create_signing_secret(
    merchant_id: MerchantId, store: SigningSecrets, response: Response
) -> SigningSecretCreated:
    """Create (rotate) the merchant's request-signing secret. Keeps the newest previous
    secret valid, revokes any older one."""
    await _known_merchant(store, merchant_id)
    created = await store.create(merchant_id)
    live = [r for r in await store.listing(merchant_id) if r["revoked_at"] is None]
    response.headers["Cache-Control"] = "no-store"
    return SigningSecretCreated(
        id=created.id,
        merchant_id=merchant_id,
        secret=created.secret,
        prefix=created.prefix,
        created_at=created.created_at,
        live_secrets=len(live),
    )


@router.get("", summary="List request-signing secrets", response_model=SigningSecretList)
async def list_signing_secrets(merchant_id: MerchantId, store: SigningSecrets) -> SigningSecretList:
    """The merchant's signing secrets, live and revoked, without their values."""
    await _known_merchant(store, merchant_id)
    rows = await store.listing(merchant_id)
    return SigningSecretList(data=[SigningSecretOut(**dict(r)) for r in rows])


@router.delete("/{secret_id}", summary="Revoke a request-signing secret", status_code=204)
async def revoke_signing_secret(
    merchant_id: MerchantId, secret_id: uuid.UUID, store: SigningSecrets
) -> Response:
    """Revoke a secret at once (e.g. after the merchant finished rotating, or a leak)."""
    if not await store.revoke(merchant_id, secret_id):
        raise Problem(404, "not-found", "No such signing secret", f"no live secret {secret_id}")
    return Response(status_code=204)
