"""What a merchant is shown of payments, refunds and stored cards (never the PAN, CVC or
ciphertexts): the same over HTTP and Kafka."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

PAYMENT_ID_EXAMPLE = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
CREATED_AT_EXAMPLE = "2026-11-27T11:42:07.318Z"
UPDATED_AT_EXAMPLE = "2026-11-27T11:42:08.052Z"
FINGERPRINT_DOC = "Keyed hash of the card number: the same card gives the same fingerprint"
FINGERPRINT_EXAMPLE = "fp1_9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
CARD_OUT_EXAMPLE: dict[str, Any] = {
    "brand": "visa",
    "bin": "41111111",
    "last4": "1111",
    "exp_month": 12,
    "exp_year": 2030,
    "fingerprint": FINGERPRINT_EXAMPLE,
}
REFUND_EXAMPLE: dict[str, Any] = {
    "id": "3f2b8c1e-5d4a-4e6f-8a9b-0c1d2e3f4a5b",
    "object": "refund",
    "payment_id": PAYMENT_ID_EXAMPLE,
    "amount": 2500,
    "currency": "TRY",
    "reason": "returned goods",
    "status": "succeeded",
    "failure_reason": None,
    "created_at": CREATED_AT_EXAMPLE,
    "updated_at": UPDATED_AT_EXAMPLE,
}
EVENT_EXAMPLE: dict[str, Any] = {
    "type": "payment.authorized",
    "occurred_at": CREATED_AT_EXAMPLE,
    "details": {"response_code": "00", "auth_code": "A1B2C3"},
}


class StoredCardOut(BaseModel):
    id: str = Field(description="The card token, tok_...", examples=["tok_8f14e45fceea167a"])
    object: str = Field(default="card", description="Always `card`", examples=["card"])
    brand: str = Field(
        description="Card scheme: visa, mastercard, amex, troy or unknown", examples=["visa"]
    )
    bin: str = Field(description="First 6 or 8 digits of the card number", examples=["41111111"])
    last4: str = Field(description="Last four digits of the card number", examples=["1111"])
    masked_number: str = Field(
        description="The number with all but the BIN and last four hidden",
        examples=["41111111****1111"],
    )
    exp_month: int = Field(description="Expiry month, 1-12", examples=[12])
    exp_year: int = Field(description="Expiry year", examples=[2030])
    fingerprint: str = Field(description=FINGERPRINT_DOC, examples=[FINGERPRINT_EXAMPLE])
    created_at: datetime = Field(
        description="When the card was stored", examples=[CREATED_AT_EXAMPLE]
    )


class StoredCardList(BaseModel):
    object: str = Field(default="list", description="Always `list`", examples=["list"])
    data: list[StoredCardOut] = Field(
        description="Stored cards, newest first",
        examples=[
            [
                {
                    "id": "tok_8f14e45fceea167a",
                    "object": "card",
                    **CARD_OUT_EXAMPLE,
                    "masked_number": "41111111****1111",
                    "created_at": CREATED_AT_EXAMPLE,
                }
            ]
        ],
    )
    has_more: bool = Field(description="Whether another page follows", examples=[False])
    next_cursor: str | None = Field(
        default=None,
        description="Pass as ?cursor= for the next page; null on the last page",
        examples=[None],
    )


class CardOut(BaseModel):
    """What is safe to show of a card: never the full number or security code."""

    brand: str = Field(
        description="Card scheme: visa, mastercard, amex, troy or unknown", examples=["visa"]
    )
    bin: str = Field(description="First 6 or 8 digits of the card number", examples=["41111111"])
    last4: str = Field(description="Last four digits of the card number", examples=["1111"])
    exp_month: int = Field(description="Expiry month, 1-12", examples=[12])
    exp_year: int = Field(description="Expiry year", examples=[2030])
    fingerprint: str = Field(description=FINGERPRINT_DOC, examples=[FINGERPRINT_EXAMPLE])


class RefundOut(BaseModel):
    id: uuid.UUID = Field(
        description="The refund's own id", examples=["3f2b8c1e-5d4a-4e6f-8a9b-0c1d2e3f4a5b"]
    )
    object: str = Field(default="refund", description="Always `refund`", examples=["refund"])
    payment_id: uuid.UUID = Field(description="The refunded payment", examples=[PAYMENT_ID_EXAMPLE])
    amount: int = Field(description="Minor units", examples=[2500])
    currency: str = Field(description="ISO 4217 code, the payment's currency", examples=["TRY"])
    reason: str = Field(description="Why, as you gave it", examples=["returned goods"])
    status: Literal["pending", "succeeded", "failed"] = Field(
        description="pending until authorization executes it; a failed refund frees its amount",
        examples=["succeeded"],
    )
    failure_reason: str | None = Field(
        default=None, description="Why it failed; null unless `failed`", examples=[None]
    )
    created_at: datetime = Field(description="When it was requested", examples=[CREATED_AT_EXAMPLE])
    updated_at: datetime = Field(
        description="When its status last changed", examples=[UPDATED_AT_EXAMPLE]
    )


class PaymentEventOut(BaseModel):
    type: str = Field(
        description="Event type, e.g. payment.initiated, payment.authorized, payment.declined, "
        "payment.captured, payment.refunded, payment.settled",
        examples=["payment.authorized"],
    )
    occurred_at: datetime = Field(description="When it happened", examples=[CREATED_AT_EXAMPLE])
    details: dict[str, Any] = Field(
        description="What the event adds (codes, amounts in minor units); never card data",
        examples=[{"response_code": "00", "auth_code": "A1B2C3"}],
    )


NEXT_ACTION_EXAMPLE: dict[str, Any] = {
    "type": "redirect_to_url",
    "url": "https://acs.sanalpos.example/acs/challenges/ch_Hq3xW0v9Jr2mUu1dRk7sP4aZ",
    "expires_at": "2026-11-27T11:52:07.318Z",
}
AUTHENTICATION_EXAMPLE: dict[str, Any] = {
    "status": "authenticated",
    "flow": "challenge",
    "eci": "05",
    "liability_shift": True,
}


class NextActionOut(BaseModel):
    """What the shopper must do before the payment can go on (3-D Secure)."""

    type: Literal["redirect_to_url"] = Field(
        description="Always `redirect_to_url`: send the shopper's browser to `url`",
        examples=["redirect_to_url"],
    )
    url: str = Field(
        description="The issuer's 3-D Secure challenge page; the shopper comes back to the "
        "payment's `return_url` with `payment_id` added",
        examples=[NEXT_ACTION_EXAMPLE["url"]],
    )
    expires_at: datetime | None = Field(
        description="When the challenge stops accepting an answer; the payment is then "
        "declined (authentication abandoned)",
        examples=[NEXT_ACTION_EXAMPLE["expires_at"]],
    )


class AuthenticationOut(BaseModel):
    """The 3-D Secure result of the payment."""

    status: Literal["authenticated", "attempted", "failed", "unavailable", "abandoned"] = Field(
        description="authenticated (passed), attempted (card not enrolled, the attempts server "
        "answered), failed (wrong code or refused), unavailable (the issuer did not answer) or "
        "abandoned (cancelled or not finished in time)",
        examples=["authenticated"],
    )
    flow: Literal["frictionless", "challenge"] | None = Field(
        description="frictionless (no shopper interaction) or challenge; null when neither "
        "happened",
        examples=["challenge"],
    )
    eci: str | None = Field(
        description="Electronic Commerce Indicator: 05/02 authenticated, 06/01 attempted, "
        "07/00 not authenticated (Visa-style/Mastercard)",
        examples=["05"],
    )
    liability_shift: bool = Field(
        description="true when chargeback liability for fraud moves to the card's issuer",
        examples=[True],
    )


class PaymentOut(BaseModel):
    id: uuid.UUID = Field(description="The payment's id", examples=[PAYMENT_ID_EXAMPLE])
    object: str = Field(default="payment", description="Always `payment`", examples=["payment"])
    status: str = Field(
        description="pending, requires_action, authorized, declined, captured, "
        "partially_refunded, refunded, voided, expired or settled",
        examples=["captured"],
    )
    amount: int = Field(description="Amount asked for, minor units", examples=[10000])
    currency: str = Field(description="ISO 4217 code", examples=["TRY"])
    capture: bool = Field(
        description="true = sale, false = pre-authorization (capture later)", examples=[True]
    )
    installments: int = Field(description="Number of installments, 1 = single", examples=[1])
    order_id: str | None = Field(description="Your order reference", examples=["ORD-2026-00042"])
    description: str | None = Field(
        description="Your free text", examples=["2 books, order ORD-2026-00042"]
    )
    metadata: dict[str, str] = Field(
        description="Your key/value pairs, as given", examples=[{"cart_id": "c_91f3"}]
    )
    card: CardOut = Field(description="The card paid with (masked)", examples=[CARD_OUT_EXAMPLE])
    card_token: str | None = Field(
        default=None,
        description="The stored card paid with, or saved by this payment",
        examples=[None],
    )
    initiated_by: str = Field(
        default="customer",
        description="`customer` (shopper present) or `merchant` (merchant-initiated)",
        examples=["customer"],
    )
    response_code: str | None = Field(
        default=None,
        description="Issuer response code once decided: 00 approved, else the decline's code",
        examples=["00"],
    )
    auth_code: str | None = Field(
        default=None, description="Issuer authorization code when approved", examples=["A1B2C3"]
    )
    decline_reason: str | None = Field(
        default=None, description="Why it was declined; null unless declined", examples=[None]
    )
    fee_amount: int | None = Field(
        default=None, description="Our fee, minor units; known once settled", examples=[None]
    )
    net_amount: int | None = Field(
        default=None,
        description="Paid out to you, minor units; known once settled",
        examples=[None],
    )
    captured_amount: int = Field(
        default=0, description="Captured so far, minor units", examples=[10000]
    )
    refunded_amount: int = Field(
        default=0, description="Refunds that succeeded, minor units", examples=[2500]
    )
    pending_operation: Literal["capture", "void"] | None = Field(
        default=None,
        description="A capture or void requested and not yet executed",
        examples=[None],
    )
    next_action: NextActionOut | None = Field(
        default=None,
        description="While `requires_action` for 3-D Secure: where to send the shopper; "
        "null otherwise",
        examples=[NEXT_ACTION_EXAMPLE],
    )
    authentication: AuthenticationOut | None = Field(
        default=None,
        description="The 3-D Secure result once decided; null when the payment was not "
        "authenticated",
        examples=[AUTHENTICATION_EXAMPLE],
    )
    refunds: list[RefundOut] = Field(
        default_factory=list,
        description="Refunds of this payment, oldest first",
        examples=[[REFUND_EXAMPLE]],
    )
    created_at: datetime = Field(description="When it was created", examples=[CREATED_AT_EXAMPLE])
    updated_at: datetime = Field(
        description="When its status last changed", examples=[UPDATED_AT_EXAMPLE]
    )
    events: list[PaymentEventOut] = Field(
        default_factory=list,
        description="Timeline: every event of the payment, oldest first",
        examples=[[EVENT_EXAMPLE]],
    )


class WebhookEndpointOut(BaseModel):
    id: uuid.UUID = Field(
        description="Endpoint id", examples=["5f0c6a6b-2d1e-4b55-b3e0-c6a9f1d2e3f4"]
    )
    url: str = Field(
        description="Where events are delivered", examples=["https://shop.example/hooks/sanalpos"]
    )
    secret: str = Field(
        description="Signing secret; shown only in this response",
        examples=["whsec_BwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSY="],
    )


class RefundList(BaseModel):
    object: str = Field(default="list", description="Always `list`", examples=["list"])
    data: list[RefundOut] = Field(
        description="The payment's refunds, oldest first", examples=[[REFUND_EXAMPLE]]
    )


class FraudReportOut(BaseModel):
    object: str = Field(
        default="fraud_report", description="Always `fraud_report`", examples=["fraud_report"]
    )
    payment_id: uuid.UUID = Field(description="The reported payment", examples=[PAYMENT_ID_EXAMPLE])
    reason: str = Field(
        description="What happened, as you gave it", examples=["cardholder denies the purchase"]
    )
    reported_at: datetime = Field(
        description="When the report was recorded", examples=[UPDATED_AT_EXAMPLE]
    )
