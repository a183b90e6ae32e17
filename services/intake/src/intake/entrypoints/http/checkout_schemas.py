"""Bodies of the checkout-session API (the hosted payment page's merchant side)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, StrictBool, field_validator

from intake.domain.commands import (
    MAX_AMOUNT,
    AmountJsonInt,
    JsonInt,
    RequestBody,
    TextWithoutCardNumber,
)
from intake.entrypoints.http.merchant_schemas import InstallmentCount
from sanalpos_common.money import CurrencyCode
from sanalpos_common.schemas.events import _EMAIL_PATTERN

URL_PATTERN = r"^https?://[^\s\x1c-\x1f\x85\ufeff]+$"
SESSION_EXAMPLE_ID = "cs_q3L9vX0bN2mT7kW1yZ5pR8sD4fG6hJ0c"
CREATED_EXAMPLE = "2026-12-03T09:15:00Z"
EXPIRES_EXAMPLE = "2026-12-03T09:45:00Z"
BASKET_EXAMPLE: list[dict[str, Any]] = [
    {"name": "Tutunamayanlar", "quantity": 1, "unit_amount": 75000},
    {"name": "Bookmark", "quantity": 2, "unit_amount": 25000},
]
SESSION_EXAMPLE: dict[str, Any] = {
    "id": SESSION_EXAMPLE_ID,
    "object": "checkout_session",
    "url": f"https://pay.sanalpos.example/checkout/{SESSION_EXAMPLE_ID}",
    "status": "open",
    "amount": 125000,
    "currency": "TRY",
    "order_id": "ORD-2026-00042",
    "basket": BASKET_EXAMPLE,
    "capture": True,
    "installments": [1, 3, 6],
    "locale": "tr",
    "shopper": {"email": "ayse.yilmaz@example.com", "name": "Ayse Yilmaz"},
    "success_url": "https://shop.example/orders/ORD-2026-00042/paid",
    "failure_url": "https://shop.example/orders/ORD-2026-00042/failed",
    "attempts_left": 3,
    "payment": None,
    "expires_at": EXPIRES_EXAMPLE,
    "created_at": CREATED_EXAMPLE,
}
MIN_EXPIRY_S = 60
MAX_EXPIRY_S = 24 * 3600


class BasketLine(RequestBody):
    name: TextWithoutCardNumber = Field(
        min_length=1,
        max_length=200,
        description="What the shopper buys, as the page shows it",
        examples=["Tutunamayanlar"],
    )
    quantity: JsonInt = Field(ge=1, le=10_000, description="How many", examples=[1])
    unit_amount: AmountJsonInt = Field(
        description="Price of one, in minor units of the session's currency", examples=[75000]
    )


class ShopperIn(RequestBody):
    email: str | None = Field(
        default=None,
        max_length=254,
        pattern=_EMAIL_PATTERN,
        description="Where the receipt goes",
        examples=["ayse.yilmaz@example.com"],
    )
    name: TextWithoutCardNumber | None = Field(
        default=None, max_length=100, description="The shopper's name", examples=["Ayse Yilmaz"]
    )


class CreateCheckoutSession(RequestBody):
    amount: AmountJsonInt = Field(
        description="Amount in minor units of the currency (125000 = 1,250.00 TRY)",
        examples=[125000],
    )
    currency: CurrencyCode
    order_id: TextWithoutCardNumber = Field(
        min_length=1,
        max_length=128,
        description="Your order reference; must not contain a card number",
        examples=["ORD-2026-00042"],
    )
    basket: list[BasketLine] = Field(
        default_factory=list,
        max_length=100,
        description="Item lines shown as the order summary; when given, their quantity times "
        "unit_amount must add up to `amount`",
        examples=[BASKET_EXAMPLE],
    )
    capture: StrictBool = Field(
        default=True,
        description="true = sale (captured at once), false = pre-authorization (capture later)",
        examples=[True],
    )
    installments: list[InstallmentCount] = Field(
        default_factory=lambda: [1],
        min_length=1,
        max_length=12,
        json_schema_extra={"uniqueItems": True},
        description="Installment counts the shopper may choose (1-12); the card and your "
        "merchant terms may allow fewer, and debit cards pay in one",
        examples=[[1, 3, 6]],
    )
    locale: Literal["tr", "en"] | None = Field(
        default=None,
        description="Language of the page; absent: your merchant's default (checkout_locale)",
        examples=["tr"],
    )
    shopper: ShopperIn | None = Field(
        default=None,
        description="The shopper's email and name, for the receipt",
        examples=[{"email": "ayse.yilmaz@example.com", "name": "Ayse Yilmaz"}],
    )
    success_url: str = Field(
        max_length=2048,
        pattern=URL_PATTERN,
        description="Where the browser goes after a successful payment, with the signed result",
        examples=["https://shop.example/orders/ORD-2026-00042/paid"],
    )
    failure_url: str = Field(
        max_length=2048,
        pattern=URL_PATTERN,
        description="Where the browser goes after a final failure or an expiry, signed too",
        examples=["https://shop.example/orders/ORD-2026-00042/failed"],
    )
    expires_in_s: JsonInt = Field(
        default=1800,
        ge=MIN_EXPIRY_S,
        le=MAX_EXPIRY_S,
        description=f"Seconds the page accepts payments ({MIN_EXPIRY_S} to {MAX_EXPIRY_S}; "
        "default 30 minutes)",
        examples=[1800],
    )

    @field_validator("installments")
    @classmethod
    def _counts(cls, value: list[int]) -> list[int]:
        if any(not 1 <= v <= 12 for v in value):
            raise ValueError("installment counts are 1 to 12")
        if len(set(value)) != len(value):
            raise ValueError("installment counts must be distinct")
        return sorted(value)

    @field_validator("basket")
    @classmethod
    def _basket_total(cls, value: list[BasketLine], info: Any) -> list[BasketLine]:
        amount = info.data.get("amount")
        total = sum(line.quantity * line.unit_amount for line in value)
        if value and amount is not None and total != amount:
            raise ValueError(f"the lines add up to {total}, not the amount {amount}")
        if total > MAX_AMOUNT:
            raise ValueError("the lines add up to more than any amount may be")
        return value


class PaymentSummary(BaseModel):
    id: str = Field(
        description="The payment's id (GET /v1/payments/{id})",
        examples=["7c9e6679-7425-40de-944b-e07fc1f90ae7"],
    )
    status: str = Field(description="The payment's status", examples=["captured"])
    installments: int = Field(description="Installments the shopper chose", examples=[3])


class ShopperOut(BaseModel):
    email: str | None = Field(
        default=None, description="Shopper's email", examples=["ayse.yilmaz@example.com"]
    )
    name: str | None = Field(default=None, description="Shopper's name", examples=["Ayse Yilmaz"])


class BasketLineOut(BaseModel):
    name: str = Field(description="Item name", examples=["Tutunamayanlar"])
    quantity: int = Field(description="How many", examples=[1])
    unit_amount: int = Field(description="Price of one, minor units", examples=[75000])


class CheckoutSessionOut(BaseModel):
    id: str = Field(description="Session id, cs_...", examples=[SESSION_EXAMPLE_ID])
    object: str = Field(
        default="checkout_session",
        description="Always `checkout_session`",
        examples=["checkout_session"],
    )
    url: str = Field(
        description="The hosted payment page: send the shopper's browser here",
        examples=[SESSION_EXAMPLE["url"]],
    )
    status: Literal["open", "completed", "expired"] = Field(
        description="`open` until a payment succeeds (`completed`) or the expiry passes "
        "(`expired`)",
        examples=["open"],
    )
    amount: int = Field(description="Amount in minor units", examples=[125000])
    currency: str = Field(description="ISO 4217 currency code", examples=["TRY"])
    order_id: str = Field(description="Your order reference", examples=["ORD-2026-00042"])
    basket: list[BasketLineOut] = Field(description="Item lines", examples=[BASKET_EXAMPLE])
    capture: bool = Field(description="Sale (true) or pre-authorization", examples=[True])
    installments: list[int] = Field(description="Counts offered", examples=[[1, 3, 6]])
    locale: str = Field(description="Language of the page", examples=["tr"])
    shopper: ShopperOut | None = Field(
        default=None,
        description="Shopper contact, when given",
        examples=[SESSION_EXAMPLE["shopper"]],
    )
    success_url: str = Field(
        description="Where success goes", examples=[SESSION_EXAMPLE["success_url"]]
    )
    failure_url: str = Field(
        description="Where failure goes", examples=[SESSION_EXAMPLE["failure_url"]]
    )
    attempts_left: int = Field(
        description="Declined card attempts the page still accepts", examples=[3]
    )
    payment: PaymentSummary | None = Field(
        default=None,
        description="The session's latest payment, once the shopper has paid or tried",
        examples=[
            {"id": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "status": "captured", "installments": 3}
        ],
    )
    expires_at: datetime = Field(
        description="When the page stops accepting payments", examples=[EXPIRES_EXAMPLE]
    )
    created_at: datetime = Field(
        description="When the session was made", examples=[CREATED_EXAMPLE]
    )


class CheckoutSessionList(BaseModel):
    object: str = Field(default="list", description="Always `list`", examples=["list"])
    data: list[CheckoutSessionOut] = Field(
        description="Sessions, newest first", examples=[[SESSION_EXAMPLE]]
    )
    has_more: bool = Field(description="Whether another page follows", examples=[False])
    next_cursor: str | None = Field(
        default=None, description="Pass as ?cursor= for the next page", examples=[None]
    )


class CheckoutSigningKey(BaseModel):
    kty: str = Field(description="Key type: OKP", examples=["OKP"])
    crv: str = Field(description="Curve: Ed25519", examples=["Ed25519"])
    kid: str = Field(
        description="Key id, as `key_id` of a result", examples=["cse_4f1c2a9b3d7e8a10"]
    )
    x: str = Field(
        description="Public key, base64url",
        examples=["11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"],
    )
    use: str = Field(default="sig", description="Always `sig`", examples=["sig"])
    alg: str = Field(default="EdDSA", description="Always `EdDSA`", examples=["EdDSA"])


class CheckoutSigningKeys(BaseModel):
    keys: list[CheckoutSigningKey] = Field(
        description="Keys results may be signed with (JWK set)",
        examples=[
            [
                {
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "kid": "cse_4f1c2a9b3d7e8a10",
                    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
                    "use": "sig",
                    "alg": "EdDSA",
                }
            ]
        ],
    )
