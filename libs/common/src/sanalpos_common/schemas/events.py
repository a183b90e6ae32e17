"""Payloads of every event in the payment flow. Past tense: they describe facts."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, IPvAnyAddress, field_validator, model_validator

from sanalpos_common import topics
from sanalpos_common.crypto.aad import pan_aad
from sanalpos_common.crypto.aad import token_pan_aad as token_pan_aad  # moved; re-exported
from sanalpos_common.crypto.card import holds_card_number
from sanalpos_common.money import CurrencyCode


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EncryptedCard(_Frozen):
    """Card as it travels: ciphertexts plus what is safe to show. Never the PAN or CVC."""

    pan_ciphertext: str = Field(description="Envelope-encrypted PAN (sanalpos_common.crypto)")
    cvc_ciphertext: str | None = Field(
        default=None, description="Envelope-encrypted security code, for authorization only"
    )
    fingerprint: str = Field(description="HMAC-SHA256 of the PAN under the fingerprint key")
    bin: str = Field(min_length=6, max_length=8)
    last4: str = Field(min_length=4, max_length=4)
    exp_month: int = Field(ge=1, le=12)
    exp_year: int = Field(ge=2000, le=2100)
    brand: str
    aad_scope: Literal["payment", "token"] = Field(
        default="payment",
        description=(
            "What the PAN ciphertext's associated data binds it to: `payment` = this payment "
            "(merchant, payment id); `token` = a stored card (merchant, token_id). The security "
            "code, when present, is always bound to the payment."
        ),
    )
    token_id: str | None = Field(
        default=None,
        pattern=r"^tok_[A-Za-z0-9_-]{8,64}$",
        description="The stored card's token when aad_scope is `token`",
    )

    @model_validator(mode="after")
    def _token_scope_names_its_token(self) -> EncryptedCard:
        if (self.aad_scope == "token") != (self.token_id is not None):
            raise ValueError("token_id is required with aad_scope 'token' and only then")
        return self

    def pan_aad(self, merchant_id: str, payment_id: uuid.UUID) -> bytes:
        """Associated data the PAN ciphertext was encrypted with (part of the contract)."""
        if self.aad_scope == "token":
            assert self.token_id is not None
            return token_pan_aad(merchant_id, self.token_id)
        return pan_aad(merchant_id, payment_id)


class GeoPoint(_Frozen):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class RiskContext(_Frozen):
    """Optional shopper and merchant context for fraud scoring. Never card data."""

    customer_ip: IPvAnyAddress | None = None
    customer_email: str | None = Field(
        default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
    )
    device_id: str | None = Field(default=None, max_length=128)
    billing_country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    billing_location: GeoPoint | None = None
    merchant_category_code: str | None = Field(default=None, pattern=r"^\d{4}$")
    merchant_location: GeoPoint | None = None

    @field_validator("customer_email", "device_id")
    @classmethod
    def _no_card_number(cls, value: str | None) -> str | None:
        if value is not None and holds_card_number(value):
            raise ValueError("must not contain a card number")
        return value


class PaymentInitiated(_Frozen):
    payment_id: uuid.UUID
    merchant_id: str
    amount: int = Field(gt=0)
    currency: CurrencyCode
    capture: bool
    installments: int = Field(ge=1, le=12)
    order_id: str | None = None
    card: EncryptedCard
    created_at: datetime
    context: RiskContext | None = None


class FraudDecision(StrEnum):
    APPROVE = "approve"
    REVIEW = "review"
    DECLINE = "decline"


class PaymentScored(_Frozen):
    payment_id: uuid.UUID
    merchant_id: str
    score: int = Field(ge=0, le=99)
    decision: FraudDecision
    reasons: tuple[str, ...]
    # Carried forward so authorization never has to read fraud's or intake's state.
    amount: int = Field(gt=0)
    currency: CurrencyCode
    capture: bool
    installments: int = Field(ge=1, le=12)
    card: EncryptedCard


class PaymentAuthorized(_Frozen):
    payment_id: uuid.UUID
    merchant_id: str
    amount: int = Field(gt=0)
    currency: CurrencyCode
    auth_code: str
    response_code: str
    installments: int = Field(ge=1, le=12)
    capture: bool


class PaymentDeclined(_Frozen):
    payment_id: uuid.UUID
    merchant_id: str
    amount: int = Field(gt=0)
    currency: CurrencyCode
    response_code: str
    reason: str
    declined_by: Literal["fraud", "issuer"]


class PaymentCaptured(_Frozen):
    payment_id: uuid.UUID
    merchant_id: str
    amount: int = Field(gt=0)
    currency: CurrencyCode
    installments: int = Field(ge=1, le=12)
    auth_code: str


class PaymentSettled(_Frozen):
    payment_id: uuid.UUID
    merchant_id: str
    gross_amount: int
    fee_amount: int
    net_amount: int
    currency: CurrencyCode
    ledger_transaction_id: uuid.UUID


class WebhookEndpointRegistered(_Frozen):
    endpoint_id: uuid.UUID
    merchant_id: str
    url: str
    secret: str = Field(description="Standard Webhooks signing secret, whsec_<base64>")
    enabled: bool = True


EVENT_MODELS: dict[str, type[BaseModel]] = {
    topics.PAYMENT_INITIATED: PaymentInitiated,
    topics.PAYMENT_SCORED: PaymentScored,
    topics.PAYMENT_AUTHORIZED: PaymentAuthorized,
    topics.PAYMENT_DECLINED: PaymentDeclined,
    topics.PAYMENT_CAPTURED: PaymentCaptured,
    topics.PAYMENT_SETTLED: PaymentSettled,
    topics.WEBHOOK_ENDPOINT_REGISTERED: WebhookEndpointRegistered,
}


def event_type(topic: str) -> str:
    """Envelope `type` for a topic: the topic without its version suffix."""
    return topic.rsplit(".v", 1)[0]
