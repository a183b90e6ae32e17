"""HTTP request and response bodies. Requests reject unknown fields (no mass assignment)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from sanalpos_common.crypto.card import holds_card_number, luhn_valid
from sanalpos_common.money import CurrencyCode
from sanalpos_common.schemas.events import RiskContext


def json_integer(value: Any) -> Any:
    """JSON's integers include 12.0 (JSON Schema says so); strings, booleans and 12.5 are not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


JsonInt = Annotated[StrictInt, BeforeValidator(json_integer)]
# Constraints go inside the validator so the JSON Schema keeps them under an `anyOf` (optional).
PositiveJsonInt = Annotated[StrictInt, Field(gt=0), BeforeValidator(json_integer)]


def holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(k) or holds_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(holds_nul(v) for v in value)
    return False


class RequestBody(BaseModel):
    """Base of every request body: unknown fields refused, input never echoed in errors, and
    no NUL characters in text (PostgreSQL cannot store them; say so instead of failing)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul_characters(cls, value: Any) -> Any:
        if holds_nul(value):
            raise ValueError("must not contain NUL characters")
        return value


_Request = RequestBody


def exactly_one_of(*names: str, also: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """JSON Schema for "exactly one of these fields is given (not null)". `also[name]` adds
    to that alternative: `properties` constraints and any other keywords (e.g. `anyOf`)."""
    branches = []
    for name in names:
        extra = dict((also or {}).get(name, {}))
        properties = {
            other: ({"not": {"type": "null"}} if other == name else {"type": "null"})
            for other in names
        }
        properties.update(extra.pop("properties", {}))
        branches.append({"required": [name], "properties": properties, **extra})
    return {"oneOf": branches}


def no_card_number(text: str | None) -> str | None:
    """Free text is stored, emitted and shown: a card number in it would leak in clear."""
    if text is not None and holds_card_number(text):
        raise ValueError("must not contain a card number")
    return text


CVC_SCHEMA: dict[str, Any] = {"pattern": "^[0-9]{3,4}$", "example": "123"}


def check_cvc(value: SecretStr) -> SecretStr:
    code = value.get_secret_value()
    if not (code.isdigit() and len(code) in (3, 4)):
        raise ValueError("security code must be 3 or 4 digits")
    return value


class CardIn(_Request):
    number: SecretStr = Field(description="Card number (PAN), digits; spaces are ignored")
    exp_month: JsonInt = Field(ge=1, le=12)
    exp_year: JsonInt = Field(ge=2000, le=2100)
    cvc: SecretStr = Field(description="Security code, 3 or 4 digits", json_schema_extra=CVC_SCHEMA)
    holder_name: str | None = Field(default=None, max_length=100)

    @field_validator("holder_name")
    @classmethod
    def _no_card_in_name(cls, value: str | None) -> str | None:
        return no_card_number(value)

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
        return check_cvc(value)

    @field_validator("exp_year")
    @classmethod
    def _not_expired(cls, year: int, info: ValidationInfo) -> int:
        month = info.data.get("exp_month")
        now = datetime.now(UTC)
        if month is not None and (year, month) < (now.year, now.month):
            raise ValueError("card has expired")
        return year


class SaveCardIn(CardIn):
    """Card data to store: the security code is never stored, so it is optional here (and,
    when given, validated and then dropped)."""

    cvc: SecretStr | None = Field(  # type: ignore[assignment]
        default=None,
        description="Security code, 3 or 4 digits; validated, never stored",
        json_schema_extra=CVC_SCHEMA,
    )

    @field_validator("cvc")
    @classmethod
    def _cvc(cls, value: SecretStr | None) -> SecretStr | None:  # type: ignore[override]
        return None if value is None else check_cvc(value)


TOKEN_PATTERN = r"^tok_[A-Za-z0-9_-]{8,64}$"  # noqa: S105 - a pattern, not a secret
JWE_FIELD = Field(
    default=None,
    min_length=10,
    max_length=8192,
    description=(
        "Card data encrypted in the browser to GET /v1/encryption-keys/current: JWE compact "
        'serialization (RSA-OAEP-256, A256GCM) of {"number", "exp_month", "exp_year", "cvc"}'
    ),
)


class CreatePaymentRequest(_Request):
    model_config = ConfigDict(
        json_schema_extra=exactly_one_of(
            "card",
            "encrypted_card",
            "card_token",
            also={
                # The top-level cvc goes with a stored card, and only when the shopper is
                # present; card data brings its own security code; a token is stored already.
                "card": {"properties": {"cvc": {"type": "null"}}},
                "encrypted_card": {"properties": {"cvc": {"type": "null"}}},
                "card_token": {
                    "properties": {"save_card": {"enum": [False]}},
                    "anyOf": [
                        {"properties": {"initiated_by": {"enum": ["customer"]}}},
                        {"properties": {"cvc": {"type": "null"}}},
                    ],
                },
            },
        )
    )

    amount: JsonInt = Field(gt=0, description="Amount in minor units of the currency")
    currency: CurrencyCode
    card: CardIn | None = None
    encrypted_card: SecretStr | None = JWE_FIELD
    card_token: str | None = Field(
        default=None, pattern=TOKEN_PATTERN, description="A stored card (POST /v1/cards)"
    )
    initiated_by: Literal["customer", "merchant"] = Field(
        default="customer",
        description="`merchant`: a merchant-initiated payment on a stored card (no security code)",
    )
    cvc: SecretStr | None = Field(
        default=None,
        description="With card_token, customer-initiated only: the security code just entered",
        json_schema_extra=CVC_SCHEMA,
    )
    save_card: StrictBool = Field(
        default=False, description="Also store the card; the response carries its card_token"
    )
    capture: StrictBool = Field(default=True, description="true = sale, false = pre-authorization")
    installments: JsonInt = Field(default=1, ge=1, le=12)
    order_id: str | None = Field(default=None, max_length=128)
    description: str | None = Field(default=None, max_length=500)
    metadata: dict[str, str] = Field(default_factory=dict, max_length=50)
    context: RiskContext | None = Field(
        default=None,
        description="Optional shopper and merchant context (IP, email, device, billing and "
        "merchant location, merchant category code) that fraud scoring uses",
    )
    occurred_at: AwareDatetime | None = Field(
        default=None,
        description="Replays only (refused unless intake runs with INTAKE_ALLOW_REPLAY_TIME): "
        "the payment's original time, used as its event time for fraud scoring",
    )

    @field_validator("description")
    @classmethod
    def _no_card_in_description(cls, value: str | None) -> str | None:
        return no_card_number(value)

    @field_validator("metadata")
    @classmethod
    def _no_card_in_metadata(cls, value: dict[str, str]) -> dict[str, str]:
        for key, text in value.items():
            no_card_number(key)
            no_card_number(text)
        return value

    # Cross-field rules run as field validators (fields validate in order) so that each error
    # names its field; a field that failed its own validation is absent from info.data.
    @field_validator("initiated_by")
    @classmethod
    def _merchant_initiated_uses_a_token(cls, value: str, info: ValidationInfo) -> str:
        if value == "merchant" and "card_token" in info.data and info.data["card_token"] is None:
            raise ValueError("a merchant-initiated payment pays with a card_token")
        return value

    @field_validator("cvc")
    @classmethod
    def _cvc(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is None:
            return None
        if "card_token" in info.data and info.data["card_token"] is None:
            raise ValueError("cvc here goes with card_token; put it inside card")
        if info.data.get("initiated_by") == "merchant":
            raise ValueError("a merchant-initiated payment carries no security code")
        return check_cvc(value)

    @field_validator("save_card")
    @classmethod
    def _save_needs_card_data(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("card_token") is not None:
            raise ValueError("save_card needs card or encrypted_card; a card_token is stored")
        return value

    @model_validator(mode="after")
    def _one_source_of_card_data(self) -> Self:
        given = [
            n for n in ("card", "encrypted_card", "card_token") if getattr(self, n) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "exactly one of card, encrypted_card and card_token is required"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self

    def fingerprint_for_idempotency(self) -> dict[str, Any]:
        """The body as compared between retries with one Idempotency-Key (no card secrets)."""
        body = self.model_dump(mode="json", exclude={"card", "encrypted_card", "cvc"})
        if self.card is not None:
            body["card"] = {
                "exp_month": self.card.exp_month,
                "exp_year": self.card.exp_year,
                "holder_name": self.card.holder_name,
            }
        body["encrypted_card"] = self.encrypted_card is not None
        return body


class CreateCardRequest(_Request):
    model_config = ConfigDict(json_schema_extra=exactly_one_of("card", "encrypted_card"))

    card: SaveCardIn | None = None
    encrypted_card: SecretStr | None = JWE_FIELD

    @model_validator(mode="after")
    def _one_source_of_card_data(self) -> Self:
        if (self.card is None) == (self.encrypted_card is None):
            raise ValueError("exactly one of card and encrypted_card is required")
        return self


class StoredCardOut(BaseModel):
    id: str = Field(description="The card token, tok_...")
    object: str = "card"
    brand: str
    bin: str
    last4: str
    masked_number: str
    exp_month: int
    exp_year: int
    fingerprint: str
    created_at: datetime


class StoredCardList(BaseModel):
    object: str = "list"
    data: list[StoredCardOut]
    has_more: bool
    next_cursor: str | None = Field(default=None, description="Pass as ?cursor= for the next page")


class EncryptionKeyOut(BaseModel):
    kty: str
    kid: str
    use: str
    alg: str
    enc: str
    n: str
    e: str


class CardOut(BaseModel):
    brand: str
    bin: str
    last4: str
    exp_month: int
    exp_year: int
    fingerprint: str


class RefundOut(BaseModel):
    id: uuid.UUID = Field(description="The refund's own id")
    object: str = "refund"
    payment_id: uuid.UUID
    amount: int = Field(description="Minor units", examples=[2500])
    currency: str = Field(examples=["TRY"])
    reason: str
    status: Literal["pending", "succeeded", "failed"] = Field(
        description="pending until authorization executes it; a failed refund frees its amount"
    )
    failure_reason: str | None = None
    created_at: datetime
    updated_at: datetime


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
    card_token: str | None = Field(
        default=None, description="The stored card paid with, or saved by this payment"
    )
    initiated_by: str = "customer"
    response_code: str | None = None
    auth_code: str | None = None
    decline_reason: str | None = None
    fee_amount: int | None = None
    net_amount: int | None = None
    captured_amount: int = Field(default=0, description="Captured so far, minor units")
    refunded_amount: int = Field(default=0, description="Refunds that succeeded, minor units")
    pending_operation: Literal["capture", "void"] | None = Field(
        default=None, description="A capture or void requested and not yet executed"
    )
    refunds: list[RefundOut] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime
    events: list[PaymentEventOut] = Field(
        default_factory=list, description="Timeline: every event of the payment, oldest first"
    )


class RegisterWebhookEndpoint(_Request):
    url: str = Field(pattern=r"^https?://", max_length=2048)


class WebhookEndpointOut(BaseModel):
    id: uuid.UUID
    url: str
    secret: str = Field(description="Signing secret; shown only in this response")


class CapturePaymentRequest(_Request):
    amount: PositiveJsonInt | None = Field(
        default=None,
        description="Minor units, at most the authorized amount; default the whole authorization. "
        "A partial capture releases the rest of the hold.",
        examples=[7500],
    )


class RefundPaymentRequest(_Request):
    amount: JsonInt = Field(
        gt=0, description="Minor units; refunds in total at most the captured amount"
    )
    reason: str = Field(min_length=1, max_length=500, examples=["returned goods"])

    @field_validator("reason")
    @classmethod
    def _no_card_in_reason(cls, value: str) -> str:
        no_card_number(value)
        return value


class FraudReportRequest(_Request):
    reason: str = Field(min_length=1, max_length=500, examples=["cardholder denies the purchase"])

    @field_validator("reason")
    @classmethod
    def _no_card_in_reason(cls, value: str) -> str:
        no_card_number(value)
        return value


class RefundList(BaseModel):
    object: str = "list"
    data: list[RefundOut]


class FraudReportOut(BaseModel):
    object: str = "fraud_report"
    payment_id: uuid.UUID
    reason: str
    reported_at: datetime
