"""HTTP request and response bodies. Requests reject unknown fields (no mass assignment)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
)

from sanalpos_common.crypto.card import luhn_valid
from sanalpos_common.money import CurrencyCode


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class CardIn(_Request):
    number: SecretStr = Field(description="Card number (PAN), digits; spaces are ignored")
    exp_month: StrictInt = Field(ge=1, le=12)
    exp_year: StrictInt = Field(ge=2000, le=2100)
    cvc: SecretStr = Field(description="Security code, 3 or 4 digits")
    holder_name: str | None = Field(default=None, max_length=100)

    @field_validator("number")
    @classmethod
    def _luhn(cls, value: SecretStr) -> SecretStr:
        digits = value.get_secret_value().replace(" ", "").replace("-", "")
        if not digits.isdigit() or not 12 <= len(digits) <= 19:
            raise ValueError("card number must be 12 to 19 digits")
        if not luhn_valid(digits):
            raise ValueError("card number fails the Luhn check")
        return SecretStr(digits)

    @field_validator("cvc")
    @classmethod
    def _cvc(cls, value: SecretStr) -> SecretStr:
        code = value.get_secret_value()
        if not (code.isdigit() and len(code) in (3, 4)):
            raise ValueError("security code must be 3 or 4 digits")
        return value

    @field_validator("exp_year")
    @classmethod
    def _not_expired(cls, year: int, info: ValidationInfo) -> int:
        month = info.data.get("exp_month")
        now = datetime.now(UTC)
        if month is not None and (year, month) < (now.year, now.month):
            raise ValueError("card has expired")
        return year


class CreatePaymentRequest(_Request):
    amount: StrictInt = Field(gt=0, description="Amount in minor units of the currency")
    currency: CurrencyCode
    card: CardIn
    capture: StrictBool = Field(default=True, description="true = sale, false = pre-authorization")
    installments: StrictInt = Field(default=1, ge=1, le=12)
    order_id: str | None = Field(default=None, max_length=128)
    description: str | None = Field(default=None, max_length=500)
    metadata: dict[str, str] = Field(default_factory=dict, max_length=50)

    def fingerprint_for_idempotency(self) -> dict[str, Any]:
        """The body as compared between retries with one Idempotency-Key."""
        body = self.model_dump(mode="json", exclude={"card"})
        body["card"] = {
            "exp_month": self.card.exp_month,
            "exp_year": self.card.exp_year,
            "holder_name": self.card.holder_name,
        }
        return body


class CardOut(BaseModel):
    brand: str
    bin: str
    last4: str
    exp_month: int
    exp_year: int
    fingerprint: str


class PaymentEventOut(BaseModel):
    type: str
    occurred_at: datetime
    details: dict[str, Any]


class PaymentOut(BaseModel):
    id: uuid.UUID
    object: str = "payment"
    status: str
    amount: int
    currency: str
    capture: bool
    installments: int
    order_id: str | None
    description: str | None
    metadata: dict[str, str]
    card: CardOut
    response_code: str | None = None
    auth_code: str | None = None
    decline_reason: str | None = None
    fee_amount: int | None = None
    net_amount: int | None = None
    created_at: datetime
    updated_at: datetime
    events: list[PaymentEventOut] = Field(default_factory=list)


class RegisterWebhookEndpoint(_Request):
    url: str = Field(pattern=r"^https?://", max_length=2048)


class WebhookEndpointOut(BaseModel):
    id: uuid.UUID
    url: str
    secret: str = Field(description="Signing secret; shown only in this response")


class CreateMerchant(_Request):
    name: str = Field(min_length=1, max_length=200)
    id: str | None = Field(default=None, pattern=r"^mer_[A-Za-z0-9_]{3,40}$")
    settlement_currency: CurrencyCode = "TRY"
    time_zone: str = "Europe/Istanbul"
    mode: str = Field(default="test", pattern=r"^(test|live)$")


class MerchantCreated(BaseModel):
    id: str
    name: str
    api_key: str = Field(description="Shown only once")
