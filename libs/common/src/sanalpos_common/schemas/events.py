"""Payloads of every event in the payment flow. Past tense: they describe facts."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal, Protocol, TypedDict

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    IPvAnyAddress,
    StrictFloat,
    WithJsonSchema,
    field_validator,
    model_validator,
)

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
    bin: str = Field(
        min_length=6, max_length=8, description="First 6-8 digits of the PAN", examples=["411111"]
    )
    last4: str = Field(
        min_length=4, max_length=4, description="Last four digits of the PAN", examples=["1111"]
    )
    exp_month: int = Field(ge=1, le=12, description="Expiry month, 1-12", examples=[12])
    exp_year: int = Field(ge=2000, le=2100, description="Expiry year", examples=[2030])
    brand: str = Field(description="Card scheme id", examples=["visa"])
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


def _ip_as_text(value: object) -> object:
    """Lax IP parsing would read a number (even `false`) as an IPv4 address; JSON gives text."""
    if isinstance(value, bool | int):
        raise ValueError("an IP address is given as text")
    return value


IpAddress = Annotated[
    IPvAnyAddress,
    BeforeValidator(_ip_as_text),
    WithJsonSchema(
        {
            "type": "string",
            "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}],
            "description": "IPv4 or IPv6 address",
            "example": "203.0.113.7",
        }
    ),
]


class GeoPoint(_Frozen):
    # Strict: a JSON number only (integers too), not `true` or "41" as lax floats would take.
    lat: StrictFloat = Field(
        ge=-90, le=90, description="Latitude, degrees (WGS 84)", examples=[41.0082]
    )
    lon: StrictFloat = Field(
        ge=-180, le=180, description="Longitude, degrees (WGS 84)", examples=[28.9784]
    )


_NOT_AT_OR_SPACE = r"[^@\s\x1c-\x1f\x85\ufeff]+"
_EMAIL_PATTERN = f"^{_NOT_AT_OR_SPACE}@{_NOT_AT_OR_SPACE}\\.{_NOT_AT_OR_SPACE}$"


class RiskContext(_Frozen):
    """Optional shopper and merchant context for fraud scoring. Never card data."""

    customer_ip: IpAddress | None = Field(
        default=None, description="The shopper's IP address", examples=["203.0.113.7"]
    )
    customer_email: str | None = Field(
        default=None,
        max_length=254,
        # Whitespace spelt out: `\s` differs between JSON Schema (ECMA), Rust and Python regexes.
        pattern=_EMAIL_PATTERN,
        description="The shopper's email address",
        examples=["ayse.yilmaz@example.com"],
    )
    device_id: str | None = Field(
        default=None,
        max_length=128,
        description="Your device fingerprint or id for the shopper's device",
        examples=["dev_7f3a9c2e"],
    )
    billing_country: str | None = Field(
        default=None,
        pattern=r"^[A-Z]{2}$",
        description="Billing address country, ISO 3166-1 alpha-2",
        examples=["TR"],
    )
    billing_location: GeoPoint | None = Field(
        default=None,
        description="Billing address coordinates",
        examples=[{"lat": 41.0082, "lon": 28.9784}],
    )
    merchant_category_code: str | None = Field(
        default=None,
        pattern=r"^\d{4}$",
        description="ISO 18245 merchant category code (MCC)",
        examples=["5942"],
    )
    merchant_location: GeoPoint | None = Field(
        default=None,
        description="Where the sale happens (store or warehouse coordinates)",
        examples=[{"lat": 40.9901, "lon": 29.0292}],
    )

    @field_validator("customer_email", "device_id")
    @classmethod
    def _no_card_number(cls, value: str | None) -> str | None:
        if value is not None and holds_card_number(value):
            raise ValueError("must not contain a card number")
        return value


class ThreeDSRequest(StrEnum):
    """Whether a payment must pass 3-D Secure before the issuer is asked for a hold."""

    AUTOMATIC = "automatic"
    """Only when fraud steps up (its `3ds` action) or the card's issuer insists."""
    REQUIRED = "required"
    """Always: asked by the merchant (per payment, or its "always 3-D Secure" setting)."""


class Shopper(_Frozen):
    """Who pays, for the shopper's own notices (receipts). Never card data."""

    email: str | None = Field(
        default=None,
        max_length=254,
        pattern=_EMAIL_PATTERN,
        description="Where the receipt goes",
        examples=["ayse.yilmaz@example.com"],
    )
    name: str | None = Field(
        default=None,
        max_length=100,
        description="The shopper's name, as the receipt greets them",
        examples=["Ayse Yilmaz"],
    )
    locale: Literal["tr", "en"] = Field(
        default="tr", description="Language of the shopper's notices", examples=["tr"]
    )


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
    three_d_secure: ThreeDSRequest = ThreeDSRequest.AUTOMATIC
    return_url: str | None = Field(
        default=None,
        max_length=2048,
        description="Where the shopper's browser goes after a 3-D Secure challenge",
    )
    shopper: Shopper | None = None
    checkout_session_id: str | None = Field(
        default=None, max_length=64, description="The hosted payment page session it came from"
    )


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
    three_d_secure: ThreeDSRequest = ThreeDSRequest.AUTOMATIC
    """As the payment asked; fraud's own step-up is decision REVIEW with "action:3ds"."""
    return_url: str | None = Field(default=None, max_length=2048)


class AuthenticationStatus(StrEnum):
    """EMV 3-D Secure's transStatus, in words."""

    AUTHENTICATED = "authenticated"  # Y
    ATTEMPTED = "attempted"  # A: not enrolled, the attempts server answered
    FAILED = "failed"  # N: wrong code, or the issuer refused
    UNAVAILABLE = "unavailable"  # U: the ACS or directory server did not answer
    ABANDONED = "abandoned"  # the challenge was not finished in time


class ThreeDSAuthentication(_Frozen):
    """The result of a 3-D Secure authentication, as the payment records it."""

    status: AuthenticationStatus
    flow: Literal["frictionless", "challenge"] | None = None
    eci: str | None = Field(
        default=None, pattern=r"^0[0-7]$", description="Electronic Commerce Indicator"
    )
    authentication_value: str | None = Field(
        default=None, max_length=64, description="CAVV-like proof of authentication, base64"
    )
    liability_shift: bool = False
    ds_transaction_id: uuid.UUID | None = None


class PaymentAuthorized(_Frozen):
    payment_id: uuid.UUID
    merchant_id: str
    amount: int = Field(gt=0)
    currency: CurrencyCode
    auth_code: str
    response_code: str
    installments: int = Field(ge=1, le=12)
    capture: bool
    authentication: ThreeDSAuthentication | None = None


class PaymentDeclined(_Frozen):
    payment_id: uuid.UUID
    merchant_id: str
    amount: int = Field(gt=0)
    currency: CurrencyCode
    response_code: str
    reason: str
    declined_by: Literal["fraud", "issuer", "authentication"]
    authentication: ThreeDSAuthentication | None = None


class PaymentCaptured(_Frozen):
    payment_id: uuid.UUID
    merchant_id: str
    amount: int = Field(gt=0, description="Captured amount")
    currency: CurrencyCode
    installments: int = Field(ge=1, le=12)
    auth_code: str
    authorized_amount: int | None = Field(
        default=None,
        gt=0,
        description="The hold this capture drew on; the rest (authorized - amount) is released",
    )


class PaymentSettled(_Frozen):
    payment_id: uuid.UUID
    merchant_id: str
    gross_amount: int
    fee_amount: int
    net_amount: int
    currency: CurrencyCode
    ledger_transaction_id: uuid.UUID
    batch_id: uuid.UUID | None = Field(default=None, description="End-of-day batch it closed in")
    batch_date: date | None = Field(
        default=None, description="Business date of that batch in the merchant's time zone"
    )
    # --- multi-currency (issue 13, fx): set when the payment was converted at capture ---
    settlement_currency: CurrencyCode | None = Field(
        default=None, description="The currency it was converted into and is paid out in"
    )
    settlement_net_amount: int | None = Field(
        default=None,
        description="What the merchant is paid, in settlement_currency: net_amount converted "
        "at the rate fixed at capture, less the FX markup",
    )
    fx_markup_amount: int | None = Field(default=None, ge=0, description="In settlement_currency")
    fx_rate_id: uuid.UUID | None = None
    fx_rate: Decimal | None = Field(
        default=None, gt=0, description="Units of settlement_currency per unit of currency"
    )


class ActionRequired(StrEnum):
    REVIEW = "review"
    THREE_DS = "3ds"


class PaymentActionRequired(_Frozen):
    """Fraud sent the payment to review (manual or 3-D Secure step-up); no hold is placed yet."""

    payment_id: uuid.UUID
    merchant_id: str
    amount: int = Field(gt=0)
    currency: CurrencyCode
    action: ActionRequired
    score: int = Field(ge=0, le=99)
    next_action_url: str | None = Field(
        default=None, max_length=2048, description="3-D Secure: where to send the shopper"
    )
    expires_at: datetime | None = Field(
        default=None, description="3-D Secure: when the challenge stops accepting an answer"
    )


class PaymentVoided(_Frozen):
    """Cancelled ("iptal"): the hold released, or a same-day sale reversed with no refund line."""

    payment_id: uuid.UUID
    merchant_id: str
    amount: int = Field(gt=0, description="Released hold or reversed captured amount")
    currency: CurrencyCode
    after_capture: bool


class PaymentRefunded(_Frozen):
    """One refund ("iade") executed; several partial refunds may follow one capture."""

    refund_id: uuid.UUID
    payment_id: uuid.UUID
    merchant_id: str
    amount: int = Field(gt=0)
    currency: CurrencyCode
    reason: str = Field(max_length=500)


class PaymentExpired(_Frozen):
    """A pre-authorization never captured within the merchant's period; its hold is released."""

    payment_id: uuid.UUID
    merchant_id: str
    amount: int = Field(gt=0, description="Released hold")
    currency: CurrencyCode
    expired_at: datetime


class PaymentOperation(StrEnum):
    CAPTURE = "capture"
    VOID = "void"
    REFUND = "refund"


class PaymentOperationFailed(_Frozen):
    """A capture, void or refund command that authorization could not execute."""

    payment_id: uuid.UUID
    merchant_id: str
    operation: PaymentOperation
    refund_id: uuid.UUID | None = None
    amount: int | None = Field(default=None, gt=0)
    reason: str


class CapturePayment(_Frozen):
    """Command: capture an authorized pre-authorization, fully or in part."""

    payment_id: uuid.UUID
    merchant_id: str
    amount: int = Field(gt=0, description="At most the authorized amount")
    currency: CurrencyCode
    requested_at: datetime


class VoidPayment(_Frozen):
    """Command: cancel before capture, or reverse a capture before the merchant's cut-off."""

    payment_id: uuid.UUID
    merchant_id: str
    requested_at: datetime


class RefundPayment(_Frozen):
    """Command: refund part or all of a captured payment (intake checks the running total)."""

    refund_id: uuid.UUID
    payment_id: uuid.UUID
    merchant_id: str
    amount: int = Field(gt=0)
    currency: CurrencyCode
    reason: str = Field(max_length=500)
    requested_at: datetime


class ReviewDecision(StrEnum):
    APPROVE = "approve"
    DECLINE = "decline"


class ReviewResolved(_Frozen):
    """A reviewer (or a 3-D Secure result) resolved a payment that fraud held for review."""

    payment_id: uuid.UUID
    merchant_id: str
    decision: ReviewDecision
    resolved_by: str = Field(max_length=200)
    note: str | None = Field(default=None, max_length=1000)


class FraudReportSource(StrEnum):
    MERCHANT = "merchant"
    CHARGEBACK = "chargeback"


class FraudReported(_Frozen):
    """A payment reported as fraudulent: feeds fraud's block lists and its labeled history."""

    payment_id: uuid.UUID
    merchant_id: str
    source: FraudReportSource
    reason: str = Field(max_length=500)
    reported_at: datetime
    card_fingerprint: str
    card_bin: str = Field(min_length=6, max_length=8)
    context: RiskContext | None = None


CurrencySettlement = Literal["convert", "in_currency"]
FxNoRate = Literal["in_currency", "refuse"]


class MerchantUpdated(_Frozen):
    """The merchant's record as other services need it (key = merchant id). Latest wins."""

    merchant_id: str
    name: str
    settlement_currency: CurrencyCode
    time_zone: str = Field(description="IANA zone, e.g. Europe/Istanbul")
    cutoff_time: time = Field(description="End-of-day cut-off, local time in time_zone")
    fee_plan: str
    active: bool = True
    version: int = Field(ge=1, description="Increases with every change; older ones are ignored")
    payout_delay_days: int | None = Field(
        default=None,
        ge=0,
        le=30,
        description="Value date (valör) = batch date + this many business days; "
        "null: the settlement service's default",
    )
    # --- multi-currency (issue 13, fx): optional, so older records still read ---
    currency_settlement: dict[CurrencyCode, CurrencySettlement] = Field(
        default_factory=dict,
        description="Per accepted currency: convert it into settlement_currency, or settle "
        "it in itself (a currency not named settles in itself)",
    )
    fx_markup_bps: int = Field(
        default=0, ge=0, le=1000, description="Markup on converted amounts, basis points"
    )
    fx_no_rate: FxNoRate = Field(
        default="in_currency",
        description="A currency to convert without a fresh rate: settle it in itself, or "
        "refuse the payment at intake",
    )
    payout_plan: Literal["batch", "per_installment"] | None = Field(
        default=None,
        description="`batch`: a batch's net is paid on its value date (payout_delay_days); "
        "`per_installment`: a sale in N installments is paid in N parts, the k-th at the "
        "batch date + k months (next business day); null: `batch`",
    )


class WebhookEndpointRegistered(_Frozen):
    endpoint_id: uuid.UUID
    merchant_id: str
    url: str
    secret_ciphertext: str = Field(
        description="The Standard Webhooks signing secret (whsec_<base64>) sealed to "
        "notification's `webhook` keyring (sp3, associated data "
        "webhook-secret|<merchant_id>|<endpoint_id>): never in clear on the topic",
        max_length=4096,
    )
    enabled: bool = True


class ScheduledPayout(_Frozen):
    """Installment payouts (issue 13): what a `per_installment` batch pays on one value date."""

    value_date: date
    amount: int = Field(description="Minor units (negative: the batch's refunds)")


class BatchClosed(_Frozen):
    """An end-of-day batch closed: what the merchant is owed for it, and when (key = batch)."""

    batch_id: uuid.UUID
    merchant_id: str
    currency: CurrencyCode
    batch_date: date
    value_date: date = Field(description="When the net amount is paid out (valör)")
    gross_amount: int = Field(ge=0, description="Captured amounts, minor units")
    fee_amount: int = Field(description="Commission kept (negative if reversals exceed it)")
    refund_amount: int = Field(ge=0)
    reversal_amount: int = Field(ge=0)
    net_amount: int = Field(description="Owed to the merchant; negative when refunds exceed sales")
    payment_count: int = Field(ge=0)
    refund_count: int = Field(ge=0)
    reversal_count: int = Field(ge=0)
    closed_at: datetime
    payout_schedule: tuple[ScheduledPayout, ...] | None = Field(
        default=None,
        description="Merchants on the `per_installment` payout plan: the batch's net by value "
        "date (adds up to net_amount); null: all of it on value_date",
    )


EVENT_MODELS: dict[str, type[BaseModel]] = {
    topics.PAYMENT_INITIATED: PaymentInitiated,
    topics.PAYMENT_SCORED: PaymentScored,
    topics.PAYMENT_AUTHORIZED: PaymentAuthorized,
    topics.PAYMENT_DECLINED: PaymentDeclined,
    topics.PAYMENT_CAPTURED: PaymentCaptured,
    topics.PAYMENT_SETTLED: PaymentSettled,
    topics.PAYMENT_ACTION_REQUIRED: PaymentActionRequired,
    topics.PAYMENT_VOIDED: PaymentVoided,
    topics.PAYMENT_REFUNDED: PaymentRefunded,
    topics.PAYMENT_EXPIRED: PaymentExpired,
    topics.PAYMENT_OPERATION_FAILED: PaymentOperationFailed,
    topics.CAPTURE_PAYMENT: CapturePayment,
    topics.VOID_PAYMENT: VoidPayment,
    topics.REFUND_PAYMENT: RefundPayment,
    topics.REVIEW_RESOLVED: ReviewResolved,
    topics.FRAUD_REPORTED: FraudReported,
    topics.WEBHOOK_ENDPOINT_REGISTERED: WebhookEndpointRegistered,
    topics.MERCHANT_UPDATED: MerchantUpdated,
    topics.BATCH_CLOSED: BatchClosed,
}


TOPIC_OF_MODEL: dict[type[BaseModel], str] = {model: topic for topic, model in EVENT_MODELS.items()}

# Merchant events are correlated (and keyed) by a stable UUID derived from the merchant id.
MERCHANT_NAMESPACE = uuid.UUID("5b3f9a52-3f0e-4f34-9a55-9d3c1c7e4a10")


def topic_of(payload: BaseModel | type[BaseModel]) -> str:
    """The topic an event type travels on; one type, one topic."""
    model = payload if isinstance(payload, type) else type(payload)
    try:
        return TOPIC_OF_MODEL[model]
    except KeyError:
        raise KeyError(f"{model.__name__} is not a registered event type") from None


def correlation_id_of(payload: BaseModel) -> uuid.UUID:
    """What an event is about: its payment, or for merchant data the merchant or endpoint."""
    if isinstance(
        payload, MerchantUpdated | PayoutAccountUpdated | PayoutUpdated | ClearingReported
    ):
        return uuid.uuid5(MERCHANT_NAMESPACE, payload.merchant_id)
    if isinstance(payload, WebhookEndpointRegistered):
        return payload.endpoint_id
    if isinstance(payload, BatchClosed):
        return payload.batch_id
    if isinstance(payload, FxRateUpdated):
        return payload.rate_id
    payment_id = getattr(payload, "payment_id", None)
    if not isinstance(payment_id, uuid.UUID):
        raise TypeError(f"{type(payload).__name__} carries no payment_id to correlate by")
    return payment_id


def event_type(topic: str) -> str:
    """Envelope `type` for a topic: the topic without its version suffix."""
    return topic.rsplit(".v", 1)[0]


class PaymentRef(TypedDict):
    """Which payment, whose, and how much of what: the fields most payment events begin with."""

    payment_id: uuid.UUID
    merchant_id: str
    amount: int
    currency: str


class _RefersToPayment(Protocol):
    @property
    def payment_id(self) -> uuid.UUID: ...
    @property
    def merchant_id(self) -> str: ...
    @property
    def amount(self) -> int: ...
    @property
    def currency(self) -> str: ...


def payment_ref(source: _RefersToPayment, *, amount: int | None = None) -> PaymentRef:
    """The payment fields of the message or record an event follows from, for its keyword
    arguments: `PaymentVoided(**payment_ref(state, amount=released), after_capture=...)`.
    `amount` replaces the source's when the event is about another sum (a release, a refund)."""
    return PaymentRef(
        payment_id=source.payment_id,
        merchant_id=source.merchant_id,
        amount=source.amount if amount is None else amount,
        currency=source.currency,
    )


# Payouts (issue 13): the merchant's bank accounts, announced by intake, and settlement's
# payouts to them. Both keyed by merchant, so one merchant's changes stay in order.


class PayoutAccountUpdated(_Frozen):
    """A merchant's payout bank account as it now stands (key = merchant id). Latest version
    of each account wins; a removed account comes with `active` false."""

    account_id: uuid.UUID
    merchant_id: str
    iban: str = Field(
        min_length=15, max_length=34, description="Validated IBAN, compact (no spaces)"
    )
    holder_name: str = Field(min_length=1, max_length=140)
    currency: CurrencyCode
    is_default: bool = Field(description="The account the currency's payouts go to")
    active: bool = True
    version: int = Field(ge=1, description="Increases with every change of this account")


class PayoutStatus(StrEnum):
    IN_TRANSIT = "in_transit"
    """Sent to the bank in a payout file; the money left the merchant's balance."""
    PAID = "paid"
    RETURNED = "returned"
    """The bank sent it back (closed account, wrong name): the money is available again."""


class PayoutLine(_Frozen):
    batch_id: uuid.UUID
    batch_date: date
    value_date: date
    amount: int = Field(description="The batch's net, minor units (negative: netted refunds)")


class PayoutUpdated(_Frozen):
    """A payout created or changed by the bank's answer (key = merchant id). The newest
    `version` of a payout wins."""

    payout_id: uuid.UUID
    merchant_id: str
    currency: CurrencyCode
    amount: int = Field(gt=0, description="Transferred, minor units")
    status: PayoutStatus
    value_date: date
    account_id: uuid.UUID
    iban_last4: str = Field(min_length=4, max_length=4)
    lines: tuple[PayoutLine, ...] = Field(min_length=1)
    reason: str | None = Field(default=None, max_length=500, description="Why it was returned")
    created_at: datetime
    updated_at: datetime
    version: int = Field(ge=1)


EVENT_MODELS[topics.PAYOUT_ACCOUNT_UPDATED] = PayoutAccountUpdated
EVENT_MODELS[topics.PAYOUT_UPDATED] = PayoutUpdated
TOPIC_OF_MODEL[PayoutAccountUpdated] = topics.PAYOUT_ACCOUNT_UPDATED
TOPIC_OF_MODEL[PayoutUpdated] = topics.PAYOUT_UPDATED


# Statements (issue 13): what a merchant's payable did on one posting day, by statement line.


class LedgerDaySummarized(_Frozen):
    """One merchant's payable account in one currency on one posting day (the merchant's local
    date), from settlement's ledger (key = merchant id). Recomputed when a late posting changes
    the day (or an earlier one, which moves its opening balance): the newest `version` of a
    (merchant, currency, day) wins. Lines are signed minor units, what they added to the
    balance; `closing_balance` = `opening_balance` + the lines, exactly."""

    merchant_id: str
    currency: CurrencyCode
    day: date = Field(description="Posting day, local date in the merchant's time zone")
    time_zone: str = Field(description="The IANA zone the day is in")
    opening_balance: int = Field(description="Payable at the start of the day, minor units")
    sales: int = Field(description="Captures less reversals (gross, before fees)")
    refunds: int
    fees: int = Field(description="Commission on sales (negative); reversed fees come back")
    fx: int = Field(description="Currency conversions and FX markups")
    disputes: int = Field(description="Dispute holds, releases, losses and dispute fees")
    payouts: int = Field(description="Payouts to the bank (negative); returned ones come back")
    other: int = Field(description="Postings of any other kind (zero unless a kind is new)")
    closing_balance: int
    capture_count: int = Field(ge=0)
    reversal_count: int = Field(ge=0)
    refund_count: int = Field(ge=0)
    payout_count: int = Field(ge=0, description="Payouts made (returns not counted)")
    version: int = Field(ge=1)
    computed_at: datetime

    @model_validator(mode="after")
    def _closes(self) -> LedgerDaySummarized:
        moved = (
            self.sales + self.refunds + self.fees + self.fx + self.disputes + self.payouts
        ) + self.other
        if self.opening_balance + moved != self.closing_balance:
            raise ValueError("closing_balance must equal opening_balance plus the lines")
        return self


EVENT_MODELS[topics.LEDGER_DAY] = LedgerDaySummarized
TOPIC_OF_MODEL[LedgerDaySummarized] = topics.LEDGER_DAY
# Disputes (issue 13, disputes part): a chargeback raised by the issuer (settlement's admin
# call), the merchant's answer through intake, and the dispute as settlement keeps it. Keyed
# by payment id. docs/disputes.md tells the whole lifecycle.


class DisputeResponse(StrEnum):
    ACCEPT = "accept"
    """The merchant accepts the chargeback: the dispute is lost at once."""
    EVIDENCE = "evidence"
    """The merchant contests it: the issuer decides on the evidence."""


class EvidenceDocument(_Frozen):
    """A document the merchant attached; its bytes stay in intake, only its digest travels."""

    document_id: uuid.UUID
    file_name: str = Field(min_length=1, max_length=200)
    content_type: str = Field(max_length=100)
    size: int = Field(gt=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class DisputeResponded(_Frozen):
    """The merchant's answer to a dispute, accepted by intake before its deadline."""

    dispute_id: uuid.UUID
    payment_id: uuid.UUID
    merchant_id: str
    response: DisputeResponse
    text: str | None = Field(default=None, max_length=20_000)
    references: tuple[str, ...] = Field(
        default=(), max_length=20, description="The merchant's own file or tracking references"
    )
    documents: tuple[EvidenceDocument, ...] = Field(default=(), max_length=5)
    responded_at: datetime

    @field_validator("text", "references")
    @classmethod
    def _no_card_number(cls, value: str | tuple[str, ...] | None) -> object:
        texts = (value,) if isinstance(value, str) else (value or ())
        if any(holds_card_number(t) for t in texts):
            raise ValueError("must not contain a card number")
        return value


class DisputeStatus(StrEnum):
    NEEDS_RESPONSE = "needs_response"
    UNDER_REVIEW = "under_review"
    """Evidence submitted: the issuer decides."""
    WON = "won"
    LOST = "lost"


class DisputeLedgerMove(_Frozen):
    """One move of the merchant's payable balance the dispute booked, and the end-of-day
    batch it is in (its net includes it once the batch closes)."""

    kind: Literal["dispute_hold", "dispute_release", "dispute_fee"]
    amount: int = Field(description="Signed change of the payable, minor units")
    batch_id: uuid.UUID


class DisputeUpdated(_Frozen):
    """A dispute as it now stands (key = payment id); the newest `version` wins."""

    dispute_id: uuid.UUID
    payment_id: uuid.UUID
    merchant_id: str
    amount: int = Field(gt=0, description="Disputed (and held) amount, minor units")
    currency: CurrencyCode
    reason_code: str = Field(max_length=10, description="The card scheme's reason code")
    reason: str = Field(max_length=200)
    status: DisputeStatus
    respond_by: datetime
    fee: int = Field(ge=0, description="Debited on top of the amount if the dispute is lost")
    held: int = Field(ge=0, description="Still held from the merchant's balance")
    response: DisputeResponse | None = None
    responded_at: datetime | None = None
    outcome_reason: Literal["accepted", "no_response", "issuer_won", "issuer_lost"] | None = None
    moves: tuple[DisputeLedgerMove, ...] = ()
    created_at: datetime
    updated_at: datetime
    version: int = Field(ge=1)


class DisputeRaised(_Frozen):
    """The issuer disputes a captured payment (the issuer simulator's chargeback)."""

    dispute_id: uuid.UUID
    payment_id: uuid.UUID
    merchant_id: str
    amount: int = Field(gt=0, description="Disputed, minor units")
    currency: CurrencyCode
    reason_code: str = Field(min_length=1, max_length=10)
    reason: str = Field(min_length=1, max_length=200)
    respond_by: datetime | None = Field(
        default=None, description="The merchant's deadline; null: settlement's default"
    )
    raised_at: datetime


class DisputeDecided(_Frozen):
    """The issuer's ruling on a dispute, for the merchant (won) or against it (lost)."""

    dispute_id: uuid.UUID
    payment_id: uuid.UUID
    merchant_id: str
    outcome: Literal["won", "lost"]
    decided_at: datetime


EVENT_MODELS[topics.DISPUTE_RESPONDED] = DisputeResponded
EVENT_MODELS[topics.DISPUTE_UPDATED] = DisputeUpdated
TOPIC_OF_MODEL[DisputeResponded] = topics.DISPUTE_RESPONDED
TOPIC_OF_MODEL[DisputeUpdated] = topics.DISPUTE_UPDATED
EVENT_MODELS[topics.DISPUTE_RAISED] = DisputeRaised
EVENT_MODELS[topics.DISPUTE_DECIDED] = DisputeDecided
TOPIC_OF_MODEL[DisputeRaised] = topics.DISPUTE_RAISED
TOPIC_OF_MODEL[DisputeDecided] = topics.DISPUTE_DECIDED


# --- multi-currency (issue 13, fx) ---
class FxRateUpdated(_Frozen):
    """A rate settlement now holds (key = rate id). Intake keeps the freshest per currency
    pair, to refuse payments its merchant wants converted when no fresh rate exists."""

    rate_id: uuid.UUID
    base: CurrencyCode
    quote: CurrencyCode
    rate: Decimal = Field(
        gt=0, description="Units of quote per unit of base; an exact decimal, never a float"
    )
    source: Literal["tcmb", "ecb", "manual"]
    as_of: datetime = Field(description="When the source published it")
    valid_until: datetime = Field(description="Fresh until then; stale (never used) after")


EVENT_MODELS[topics.FX_RATE_UPDATED] = FxRateUpdated
TOPIC_OF_MODEL[FxRateUpdated] = topics.FX_RATE_UPDATED
# Reconciliation (issue 13): authorization's daily clearing file, like an acquirer's. One
# line per executed operation, so settlement can tell per payment what is missing, duplicated
# or different; long days come in parts (settlement waits for all parts of a version).


class ClearingKind(StrEnum):
    CAPTURE = "capture"
    REFUND = "refund"
    VOID = "void"
    """A capture reversed ("iptal" after capture); a hold released before capture is not money
    and is not in the clearing file."""


class ClearingLine(_Frozen):
    kind: ClearingKind
    payment_id: uuid.UUID
    refund_id: uuid.UUID | None = Field(default=None, description="Refunds only")
    amount: int = Field(gt=0, description="Minor units")
    occurred_at: datetime

    @model_validator(mode="after")
    def _refund_id_on_refunds(self) -> ClearingLine:
        if (self.kind is ClearingKind.REFUND) != (self.refund_id is not None):
            raise ValueError("refund_id is required on refunds and only there")
        return self


class ClearingReported(_Frozen):
    """Authorization's clearing file for one merchant, currency and clearing date (key =
    merchant id). A newer `version` replaces an older one; `part` of `part_count`."""

    merchant_id: str
    currency: CurrencyCode
    clearing_date: date = Field(description="Calendar day of the operations, clearing time zone")
    version: int = Field(ge=1, description="Increases with every re-run for the same day")
    part: int = Field(ge=1)
    part_count: int = Field(ge=1)
    capture_count: int = Field(ge=0, description="Totals of the whole file, every part")
    capture_amount: int = Field(ge=0)
    refund_count: int = Field(ge=0)
    refund_amount: int = Field(ge=0)
    void_count: int = Field(ge=0)
    void_amount: int = Field(ge=0)
    lines: tuple[ClearingLine, ...] = Field(max_length=2000)
    generated_at: datetime

    @model_validator(mode="after")
    def _part_in_range(self) -> ClearingReported:
        if self.part > self.part_count:
            raise ValueError("part must not exceed part_count")
        return self


EVENT_MODELS[topics.CLEARING_REPORTED] = ClearingReported
TOPIC_OF_MODEL[ClearingReported] = topics.CLEARING_REPORTED
