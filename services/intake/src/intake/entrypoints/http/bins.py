"""BIN lookup: what a card is, and the installments it may be paid in at the calling merchant."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from intake.domain.bins import BIN_PATTERN, SCHEME_NAMES
from intake.entrypoints.http.deps import AppContainer, Merchant
from intake.entrypoints.http.merchant_schemas import BinOut
from intake.service_layer.installments import card_installments

Bin = Annotated[
    str,
    Path(
        pattern=BIN_PATTERN,
        description="The card number's first 6 or 8 digits",
        examples=["45260310"],
    ),
]


router = APIRouter(prefix="/v1", tags=["cards"])


@router.get("/bins/{bin}", summary="Look up a BIN", response_model=BinOut)
async def lookup(bin: Bin, merchant_id: Merchant, c: AppContainer) -> dict[str, Any]:
    """Scheme, card type, issuer, programme and country of a BIN, and for your shop the
    installment counts it may be paid in with their commission. A BIN the table does not
    know still gets its scheme (from number ranges); its card type is `unknown`."""
    found = await card_installments(c.pool, merchant_id, bin)
    card = found.card
    return {
        "bin": card.bin,
        "scheme": card.scheme,
        "scheme_name": SCHEME_NAMES.get(card.scheme, card.scheme),
        "card_type": card.card_type.value,
        "issuer": card.issuer,
        "programme": card.programme,
        "country": card.country,
        "known": card.known,
        "fee_plan": found.fee_plan,
        "installments": [
            {"count": o.count, "commission_bps": o.commission_bps} for o in found.options
        ],
    }
