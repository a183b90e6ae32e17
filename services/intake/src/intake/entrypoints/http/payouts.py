"""Payout bank accounts and the payouts made to them."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from intake import PRODUCER
from intake.domain.payout_accounts import PAYOUT_CURRENCIES
from intake.entrypoints.http.deps import AppContainer, IdempotencyKey, Merchant
from intake.entrypoints.http.responses import endpoint_of, http_response
from intake.service_layer import idempotency, payout_accounts, payouts
from sanalpos_common.db import UnitOfWork, unit_of_work

IBAN_EXAMPLE = "TR950006100000000000039595"
ACCOUNT_EXAMPLE: dict[str, Any] = {
    "id": "3f1c8e0a-8a9b-4c55-9d3f-6a1f2b7c9d10",
    "object": "payout_account",
    "iban": IBAN_EXAMPLE,
    "holder_name": "Ornek Magazacilik A.S.",
    "currency": "TRY",
    "is_default": True,
    "created_at": "2026-10-27T09:12:00+00:00",
}
LINE_EXAMPLE: dict[str, Any] = {
    "batch_id": "7d7c2a49-5f54-4c3e-9d8e-8c1f0f0b2f6a",
    "batch_date": "2026-10-28",
    "value_date": "2026-10-30",
    "amount": 122_762,
}
PAYOUT_EXAMPLE: dict[str, Any] = {
    "id": "b0d6f7a2-1c3e-4d5f-8a9b-0c1d2e3f4a5b",
    "object": "payout",
    "status": "paid",
    "currency": "TRY",
    "amount": 122_762,
    "value_date": "2026-10-30",
    "payout_account_id": ACCOUNT_EXAMPLE["id"],
    "iban_last4": "9595",
    "reason": None,
    "created_at": "2026-10-30T06:00:00+00:00",
    "updated_at": "2026-10-30T11:40:00+00:00",
}
CSV_EXAMPLE = (
    "payout_id,status,currency,amount_minor,amount,value_date,iban_last4,batches,reason,"
    "created_at,updated_at\r\n"
    "b0d6f7a2-1c3e-4d5f-8a9b-0c1d2e3f4a5b,paid,TRY,122762,1227.62,2026-10-30,9595,"
    "7d7c2a49-5f54-4c3e-9d8e-8c1f0f0b2f6a,,2026-10-30T06:00:00+00:00,2026-10-30T11:40:00+00:00\r\n"
)

PayoutCurrency = Literal["EUR", "GBP", "TRY", "USD"]
AccountId = Annotated[uuid.UUID, Path(description="Payout account id")]
PayoutId = Annotated[uuid.UUID, Path(description="Payout id")]


class CreatePayoutAccount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    iban: str = Field(
        min_length=15,
        max_length=42,
        description="IBAN (spaces allowed). Supported: TRY to Turkish IBANs; EUR to SEPA-zone "
        "or Turkish IBANs; USD to Turkish IBANs; GBP to British or Turkish IBANs",
        examples=[IBAN_EXAMPLE],
    )
    holder_name: str = Field(
        min_length=1,
        max_length=140,
        description="Account holder as the bank knows it",
        examples=["Ornek Magazacilik A.S."],
    )
    currency: PayoutCurrency = Field(
        description=f"Payout currency, one of {', '.join(PAYOUT_CURRENCIES)}",
        examples=["TRY"],
    )
    default: StrictBool | None = Field(
        default=None,
        description="Make it the currency's default (the first account of a currency always is)",
        examples=[False],
    )


class PayoutAccountOut(BaseModel):
    id: str = Field(description="Payout account id", examples=[ACCOUNT_EXAMPLE["id"]])
    object: str = Field(description="Always `payout_account`", examples=["payout_account"])
    iban: str = Field(description="The IBAN, compact", examples=[IBAN_EXAMPLE])
    holder_name: str = Field(description="Account holder", examples=["Ornek Magazacilik A.S."])
    currency: str = Field(description="ISO 4217", examples=["TRY"])
    is_default: bool = Field(description="The currency's payouts go here", examples=[True])
    created_at: str = Field(
        description="When it was added", examples=[ACCOUNT_EXAMPLE["created_at"]]
    )


class PayoutAccountList(BaseModel):
    object: str = Field(default="list", description="Always `list`", examples=["list"])
    data: list[PayoutAccountOut] = Field(
        description="Your accounts by currency, newest first", examples=[[ACCOUNT_EXAMPLE]]
    )
    has_more: bool = Field(description="Always false: every account is listed", examples=[False])


class PayoutLineOut(BaseModel):
    batch_id: str = Field(
        description="The settlement batch paid", examples=[LINE_EXAMPLE["batch_id"]]
    )
    batch_date: str = Field(description="Its business date", examples=["2026-10-28"])
    value_date: str = Field(description="Its value date (valör)", examples=["2026-10-30"])
    amount: int = Field(
        description="Its net, minor units (negative: refunds netted against this payout)",
        examples=[122_762],
    )


class PayoutSummaryOut(BaseModel):
    id: str = Field(description="Payout id", examples=[PAYOUT_EXAMPLE["id"]])
    object: str = Field(description="Always `payout`", examples=["payout"])
    status: str = Field(
        description="`in_transit` (sent to the bank), `paid`, or `returned` (back in your "
        "available balance, paid again with the next payout)",
        examples=["paid"],
    )
    currency: str = Field(description="ISO 4217", examples=["TRY"])
    amount: int = Field(description="Transferred, minor units", examples=[122_762])
    value_date: str = Field(description="The value date it was made on", examples=["2026-10-30"])
    payout_account_id: str = Field(
        description="The account it went to", examples=[ACCOUNT_EXAMPLE["id"]]
    )
    iban_last4: str = Field(description="Last four characters of its IBAN", examples=["9595"])
    reason: str | None = Field(
        default=None, description="Why the bank returned it", examples=[None]
    )
    created_at: str = Field(description="When it was made", examples=[PAYOUT_EXAMPLE["created_at"]])
    updated_at: str = Field(description="Its last change", examples=[PAYOUT_EXAMPLE["updated_at"]])


class PayoutOut(PayoutSummaryOut):
    lines: list[PayoutLineOut] = Field(
        description="One per settlement batch it pays", examples=[[LINE_EXAMPLE]]
    )


class PayoutList(BaseModel):
    object: str = Field(default="list", description="Always `list`", examples=["list"])
    data: list[PayoutSummaryOut] = Field(
        description="Your payouts, newest first", examples=[[PAYOUT_EXAMPLE]]
    )
    has_more: bool = Field(description="Whether another page follows", examples=[False])
    next_cursor: str | None = Field(
        default=None, description="Pass as ?cursor= for the next page", examples=[None]
    )


class PayoutQuery(BaseModel):
    model_config = {"extra": "forbid"}

    limit: int = Field(default=20, ge=1, le=100, description="Payouts per page")
    cursor: uuid.UUID | None = Field(default=None, description="`next_cursor` of the last page")


router = APIRouter(prefix="/v1", tags=["payouts"])


@router.post(
    "/payout-accounts",
    summary="Add a payout bank account",
    status_code=201,
    response_model=PayoutAccountOut,
)
async def create_payout_account(
    body: CreatePayoutAccount,
    request: Request,
    merchant_id: Merchant,
    c: AppContainer,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Adds a bank account payouts in its currency go to; the IBAN is validated (checksum,
    length, bank code) and must suit the currency. Idempotent with an Idempotency-Key."""

    async def work(uow: UnitOfWork) -> idempotency.Response:
        view = await payout_accounts.add_account(
            uow, merchant_id, body.iban, body.holder_name, body.currency, body.default
        )
        return idempotency.Response(201, view)

    scope = idempotency.idempotency_scope(
        merchant_id, idempotency_key, endpoint_of(request), body.model_dump()
    )
    result = await idempotency.run_in_transaction(c.pool, scope, work)
    return http_response(result, {"Location": f"/v1/payout-accounts/{result.body['id']}"})


@router.get(
    "/payout-accounts", summary="List payout bank accounts", response_model=PayoutAccountList
)
async def list_payout_accounts(merchant_id: Merchant, c: AppContainer) -> dict[str, Any]:
    """Your payout bank accounts, with the default of each currency."""
    return await payout_accounts.list_accounts(c.pool, merchant_id)


@router.get(
    "/payout-accounts/{account_id}",
    summary="Read a payout bank account",
    response_model=PayoutAccountOut,
)
async def read_payout_account(
    account_id: AccountId, merchant_id: Merchant, c: AppContainer
) -> dict[str, Any]:
    """One of your payout bank accounts."""
    return await payout_accounts.read_account(c.pool, merchant_id, account_id)


@router.post(
    "/payout-accounts/{account_id}/default",
    summary="Make a payout account its currency's default",
    response_model=PayoutAccountOut,
)
async def make_default_payout_account(
    account_id: AccountId, merchant_id: Merchant, c: AppContainer
) -> dict[str, Any]:
    """The currency's next payouts go to this account; the previous default stays listed.
    Idempotent: making the default the default changes nothing."""
    async with unit_of_work(c.pool, PRODUCER) as uow:
        return await payout_accounts.make_default(uow, merchant_id, account_id)


@router.delete(
    "/payout-accounts/{account_id}", summary="Remove a payout bank account", status_code=204
)
async def delete_payout_account(
    account_id: AccountId, merchant_id: Merchant, c: AppContainer
) -> Response:
    """Removes the account; when it was the default, the newest other account of its
    currency becomes the default. Answers 204 without a body."""
    async with unit_of_work(c.pool, PRODUCER) as uow:
        await payout_accounts.remove_account(uow, merchant_id, account_id)
    return Response(status_code=204)


@router.get("/payouts", summary="List payouts", response_model=PayoutList)
async def list_payouts(
    query: Annotated[PayoutQuery, Query()], merchant_id: Merchant, c: AppContainer
) -> dict[str, Any]:
    """Payouts to your bank accounts, newest first; pages follow `next_cursor`."""
    return await payouts.list_payouts(c.pool, merchant_id, query.limit, query.cursor)


@router.get(
    "/payouts.csv",
    summary="Export payouts as CSV",
    response_class=PlainTextResponse,
    responses={
        200: {
            "description": "CSV (RFC 4180), newest first; amounts in minor units and in the "
            "currency's major unit",
            "content": {"text/csv": {"schema": {"type": "string"}, "example": CSV_EXAMPLE}},
        }
    },
)
async def export_payouts(merchant_id: Merchant, c: AppContainer) -> PlainTextResponse:
    """Every payout (up to 10,000), one row each, with the batches it paid."""
    text = await payouts.payouts_csv(c.pool, merchant_id)
    return PlainTextResponse(
        text,
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="payouts.csv"'},
    )


@router.get("/payouts/{payout_id}", summary="Read a payout", response_model=PayoutOut)
async def read_payout(
    payout_id: PayoutId, merchant_id: Merchant, c: AppContainer
) -> dict[str, Any]:
    """One payout with its lines: the settlement batches it paid, refunds netted included."""
    return await payouts.read_payout(c.pool, merchant_id, payout_id)


assert set(get_args(PayoutCurrency)) == set(PAYOUT_CURRENCIES)
