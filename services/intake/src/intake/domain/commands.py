"""What merchants ask intake to do: the bodies of payment, card and lifecycle requests, the
same over HTTP and Kafka. Requests reject unknown fields (no mass assignment)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from intake.domain.demo_cards import EXAMPLE_CARD_NUMBER
from sanalpos_common.crypto.card import holds_card_number, luhn_valid
from sanalpos_common.money import CurrencyCode
from sanalpos_common.schemas.events import RiskContext, Shopper, ThreeDSRequest


def json_integer(value: Any) -> Any:
    """JSON's integers include 12.0 (JSON Schema says so); strings, booleans and 12.5 are not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


MAX_AMOUNT = 999_999_999_999
"""The largest amount in minor units any request may carry (9,999,999,999.99 TRY): far above
any card payment, far below what a BIGINT column or a sum of many of them could overflow."""

JsonInt = Annotated[StrictInt, BeforeValidator(json_integer)]
# Constraints go inside the validator so the JSON Schema keeps them under an `anyOf` (optional).
PositiveJsonInt = Annotated[StrictInt, Field(gt=0), BeforeValidator(json_integer)]
AmountJsonInt = Annotated[StrictInt, Field(gt=0, le=MAX_AMOUNT), BeforeValidator(json_integer)]


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


TextWithoutCardNumber = Annotated[str, AfterValidator(no_card_number)]
"""Free text a merchant sends (a reason, a note), refused when it holds a card number."""

METADATA_MAX_KEYS = 50
METADATA_KEY_MAX_CHARS = 40
METADATA_VALUE_MAX_CHARS = 500
METADATA_MAX_BYTES = 8 * 1024
"""Keys and values together, in UTF-8. Metadata comes back in every view, webhook and Kafka
reply of the payment (JSON-escaped there: up to six bytes per character), so it must stay
small: unbounded, one request could make a reply too large for Kafka."""
METADATA_DOC = (
    f"Up to {METADATA_MAX_KEYS} string key/value pairs of your own, returned as given: keys "
    f"up to {METADATA_KEY_MAX_CHARS} characters, values up to {METADATA_VALUE_MAX_CHARS}, "
    f"{METADATA_MAX_BYTES} bytes (UTF-8) in all; no card numbers"
)


def checked_metadata(value: Any) -> Any:
    """Bounds and card numbers, checked before the dict is typed: a typed dict would name a
    bad key in the error's field path, and the key may be a card number. A message names a
    key only once the key is known to be short and free of card numbers."""
    if not isinstance(value, dict):
        return value  # the dict[str, str] type refuses it
    if len(value) > METADATA_MAX_KEYS:
        raise ValueError(f"at most {METADATA_MAX_KEYS} keys")
    total = 0
    for key, text in value.items():
        if not isinstance(key, str) or not isinstance(text, str):
            raise ValueError("keys and values must be strings")
        if not 1 <= len(key) <= METADATA_KEY_MAX_CHARS:
            raise ValueError(f"a key is empty or longer than {METADATA_KEY_MAX_CHARS} characters")
        if holds_card_number(key):
            raise ValueError("a key holds a card number")
        if len(text) > METADATA_VALUE_MAX_CHARS:
            raise ValueError(
                f"the value of {key!r} is longer than {METADATA_VALUE_MAX_CHARS} characters"
            )
        if holds_card_number(text):
            raise ValueError(f"the value of {key!r} holds a card number")
        total += len(key.encode("utf-8", "surrogatepass")) + len(
            text.encode("utf-8", "surrogatepass")
        )
    if total > METADATA_MAX_BYTES:
        raise ValueError(f"keys and values are {total} bytes in total, over {METADATA_MAX_BYTES}")
    return value


MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=METADATA_KEY_MAX_CHARS)]
MetadataValue = Annotated[str, StringConstraints(max_length=METADATA_VALUE_MAX_CHARS)]
# checked_metadata runs first, so the typed constraints (which document the bounds in the
# JSON Schema) never fail with a key in their error path.
Metadata = Annotated[dict[MetadataKey, MetadataValue], BeforeValidator(checked_metadata)]


CVC_SCHEMA: dict[str, Any] = {"pattern": "^[0-9]{3,4}$", "example": "123"}


def check_cvc(value: SecretStr) -> SecretStr:
    code = value.get_secret_value()
    if not (code.isdigit() and len(code) in (3, 4)):
        raise ValueError("security code must be 3 or 4 digits")
    return value


class CardIn(RequestBody):
    number: SecretStr = Field(
        description="Card number (PAN), 12-19 digits passing the Luhn check; spaces are ignored",
        examples=[EXAMPLE_CARD_NUMBER],
    )
    exp_month: JsonInt = Field(ge=1, le=12, description="Expiry month, 1-12", examples=[12])
    exp_year: JsonInt = Field(
        ge=2000, le=2100, description="Expiry year, four digits; not in the past", examples=[2030]
    )
    cvc: SecretStr = Field(description="Security code, 3 or 4 digits", json_schema_extra=CVC_SCHEMA)
    holder_name: TextWithoutCardNumber | None = Field(
        default=None,
        max_length=100,
        description="Cardholder name as printed on the card",
        examples=["AYSE YILMAZ"],
    )

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
    examples=[
        "eyJhbGciOiJSU0EtT0FFUC0yNTYiLCJlbmMiOiJBMjU2R0NNIiwia2lkIjoiY2FyZC0yMDI2LTExIn0"
        ".VgL2b1oQ3nW8x0Zk.Tn5sYd3rKq7uWm1p.8kJc0bX4mQ2hZr6v.r2Lw9Xy0Pq4sNt1u"
    ],
)
CARD_IN_EXAMPLE: dict[str, Any] = {
    "number": EXAMPLE_CARD_NUMBER,
    "exp_month": 12,
    "exp_year": 2030,
    "cvc": "123",
    "holder_name": "AYSE YILMAZ",
}
CARD_SOURCE_DOC = "Exactly one of card, encrypted_card and card_token is given"


class CreatePaymentRequest(RequestBody):
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

    amount: JsonInt = Field(
        gt=0,
        le=MAX_AMOUNT,
        description="Amount in minor units of the currency (10000 = 100.00 TRY)",
        examples=[10000],
    )
    currency: CurrencyCode
    card: CardIn | None = Field(
        default=None,
        description=f"Card data in clear (PCI DSS scope on your side). {CARD_SOURCE_DOC}",
        examples=[CARD_IN_EXAMPLE],
    )
    encrypted_card: SecretStr | None = JWE_FIELD
    card_token: str | None = Field(
        default=None,
        pattern=TOKEN_PATTERN,
        description="A stored card's token (POST /v1/cards or save_card)",
        examples=["tok_8f14e45fceea167a"],
    )
    initiated_by: Literal["customer", "merchant"] = Field(
        default="customer",
        description="`customer` (shopper present) or `merchant`: a merchant-initiated payment "
        "on a stored card (no security code)",
        examples=["customer"],
    )
    cvc: SecretStr | None = Field(
        default=None,
        description="With card_token, customer-initiated only: the security code just entered",
        json_schema_extra=CVC_SCHEMA,
    )
    save_card: StrictBool = Field(
        default=False,
        description="Also store the card; the response carries its card_token",
        examples=[False],
    )
    capture: StrictBool = Field(
        default=True,
        description="true = sale (captured at once), false = pre-authorization (capture later)",
        examples=[True],
    )
    installments: JsonInt = Field(
        default=1,
        ge=1,
        le=12,
        description="Number of installments, 1 = single payment (GET /v1/bins/{bin} lists them)",
        examples=[3],
    )
    order_id: TextWithoutCardNumber | None = Field(
        default=None,
        max_length=128,
        description="Your order reference; must not contain a card number",
        examples=["ORD-2026-00042"],
    )
    description: TextWithoutCardNumber | None = Field(
        default=None,
        max_length=500,
        description="Free text shown on the payment; must not contain a card number",
        examples=["2 books, order ORD-2026-00042"],
    )
    metadata: Metadata = Field(
        default_factory=dict,
        max_length=METADATA_MAX_KEYS,
        description=METADATA_DOC,
        examples=[{"cart_id": "c_91f3", "channel": "web"}],
    )
    context: RiskContext | None = Field(
        default=None,
        description="Optional shopper and merchant context (IP, email, device, billing and "
        "merchant location, merchant category code) that fraud scoring uses",
        examples=[
            {
                "customer_ip": "203.0.113.7",
                "customer_email": "ayse.yilmaz@example.com",
                "billing_country": "TR",
                "merchant_category_code": "5942",
            }
        ],
    )
    three_d_secure: ThreeDSRequest = Field(
        default=ThreeDSRequest.AUTOMATIC,
        description="`required`: always authenticate the shopper with 3-D Secure; `automatic`: "
        "only when fraud scoring, your merchant setting or the card's issuer asks for it",
        examples=["automatic"],
    )
    return_url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^https?://[^\s\x1c-\x1f\x85\ufeff]+$",
        description="Where the shopper's browser is sent back after a 3-D Secure challenge",
        examples=["https://shop.example.com/orders/ORD-2026-00042/3ds-done"],
    )
    shopper: Shopper | None = Field(
        default=None,
        description="The shopper's email, name and language, for the receipt email",
        examples=[{"email": "ayse.yilmaz@example.com", "name": "Ayse Yilmaz", "locale": "tr"}],
    )
    occurred_at: AwareDatetime | None = Field(
        default=None,
        description="Replays only (refused unless intake runs with INTAKE_ALLOW_REPLAY_TIME): "
        "the payment's original time, used as its event time for fraud scoring",
        examples=["2026-11-01T14:30:00+03:00"],
    )

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


class CreateCardRequest(RequestBody):
    model_config = ConfigDict(json_schema_extra=exactly_one_of("card", "encrypted_card"))

    card: SaveCardIn | None = Field(
        default=None,
        description="Card data in clear (PCI DSS scope on your side). "
        "Exactly one of card and encrypted_card is given",
        examples=[CARD_IN_EXAMPLE],
    )
    encrypted_card: SecretStr | None = JWE_FIELD

    @model_validator(mode="after")
    def _one_source_of_card_data(self) -> Self:
        if (self.card is None) == (self.encrypted_card is None):
            raise ValueError("exactly one of card and encrypted_card is required")
        return self


WEBHOOK_URL_PATTERN = r"^https?://[A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]{1,5})?(/[!-~]*)?$"


class RegisterWebhookEndpoint(RequestBody):
    url: str = Field(
        # A host is required and credentials are not allowed (no `@`): notification refuses
        # such endpoints, so intake must not accept them and announce them.
        pattern=WEBHOOK_URL_PATTERN,
        max_length=2048,
        description="Where events are POSTed: an http(s) URL with a host name (or IP) that "
        "must be a public address, without credentials. Loopback, private (10/8, 172.16/12, "
        "192.168/16, fc00::/7), link-local and cloud-metadata (169.254/16), CGNAT "
        "(100.64/10), multicast, reserved and unspecified addresses, and internal names "
        "(localhost, *.local, *.internal, single-label names) are refused with a 422 naming "
        "`url`; what the name resolves to is checked again on every delivery",
        examples=["https://shop.example/hooks/sanalpos"],
    )


class CapturePaymentRequest(RequestBody):
    amount: AmountJsonInt | None = Field(
        default=None,
        description="Minor units, at most the authorized amount; default the whole authorization. "
        "A partial capture releases the rest of the hold.",
        examples=[7500],
    )


class RefundPaymentRequest(RequestBody):
    amount: JsonInt = Field(
        gt=0,
        le=MAX_AMOUNT,
        description="Minor units; refunds in total at most the captured amount",
        examples=[2500],
    )
    reason: TextWithoutCardNumber = Field(
        min_length=1,
        max_length=500,
        description="Why; stored and shown on the refund; must not contain a card number",
        examples=["returned goods"],
    )


class FraudReportRequest(RequestBody):
    reason: TextWithoutCardNumber = Field(
        min_length=1,
        max_length=500,
        description="What happened; must not contain a card number",
        examples=["cardholder denies the purchase"],
    )
