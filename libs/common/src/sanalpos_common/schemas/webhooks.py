"""Public webhook events: the merchants' contract, separate from the internal Kafka events.

Every body notification POSTs is one of the `WebhookEvent` models below, and nothing else:
a field reaches a merchant only because it is declared here and an explicit mapping
(`notification.domain.public_events`) fills it. Changing these models changes what merchants
receive; their JSON Schemas are checked in under `libs/common/schemas/webhooks/` and a test
fails when they drift. See `docs/webhooks.md` for the versioning policy.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from sanalpos_common.money import CurrencyCode

API_VERSION: Final = "v1"
"""The contract version every event of this module carries (and its schema files' suffix)."""

_PAYMENT_ID_EXAMPLE = "0b8a5a56-8a44-4f57-8f2d-0d3f4d2f3a11"
_REFUND_ID_EXAMPLE = "3f2b8c1e-5d4a-4e6f-8a9b-0c1d2e3f4a5b"


class _Public(BaseModel):
    # Serialization-mode schemas list defaulted fields as required: they are always sent.
    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_serialization_defaults_required=True
    )


PaymentId = Annotated[
    uuid.UUID,
    Field(
        description="The payment's id, as answered by POST /v1/payments",
        examples=[_PAYMENT_ID_EXAMPLE],
    ),
]
MerchantId = Annotated[str, Field(description="Your merchant id", examples=["mer_demo"])]
Amount = Annotated[int, Field(gt=0, description="Minor units of `currency`", examples=[12500])]
AuthCode = Annotated[str, Field(description="The issuer's authorization code", examples=["A1B2C3"])]
Installments = Annotated[
    int, Field(ge=1, le=12, description="Number of installments, 1 = single", examples=[1])
]
RefundId = Annotated[
    uuid.UUID,
    Field(
        description="The refund's id, as answered by POST /v1/payments/{id}/refunds",
        examples=[_REFUND_ID_EXAMPLE],
    ),
]


class DeclineCode(StrEnum):
    """Why a payment was declined, in words a checkout can act on."""

    DO_NOT_HONOR = "do_not_honor"
    INVALID_CARD = "invalid_card"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    EXPIRED_CARD = "expired_card"
    SUSPECTED_FRAUD = "suspected_fraud"
    SECURITY_CODE_EXPIRED = "security_code_expired"
    AUTHENTICATION_FAILED = "authentication_failed"
    """3-D Secure was needed and not passed (failed, abandoned, or the issuer's ACS did not
    answer): see `authentication.status`."""
    GENERIC_DECLINE = "generic_decline"


class NextAction(StrEnum):
    """What has to happen before a payment held for action is decided."""

    AWAIT_REVIEW = "await_review"
    THREE_D_SECURE = "three_d_secure"


# ----------------------------------------------------------------------------- data objects


class Authentication(_Public):
    """The payment's 3-D Secure result (never the issuer's authentication value)."""

    status: Literal["authenticated", "attempted", "failed", "unavailable", "abandoned"] = Field(
        description="authenticated (passed), attempted (card not enrolled, the attempts server "
        "answered), failed, unavailable (the issuer did not answer) or abandoned (cancelled or "
        "not finished in time)",
        examples=["authenticated"],
    )
    flow: Literal["frictionless", "challenge"] | None = Field(
        description="frictionless or challenge; null when neither happened",
        examples=["challenge"],
    )
    eci: str | None = Field(
        pattern=r"^0[0-7]$",
        description="Electronic Commerce Indicator (05/02 authenticated, 06/01 attempted)",
        examples=["05"],
    )
    liability_shift: bool = Field(
        description="true when fraud chargeback liability moved to the card's issuer",
        examples=[True],
    )


AUTHENTICATION_EXAMPLE: Final = {
    "status": "authenticated",
    "flow": "challenge",
    "eci": "05",
    "liability_shift": True,
}


class PaymentAuthorization(_Public):
    """An approved authorization: a pre-authorization's hold, or a sale taken in one step."""

    payment_id: PaymentId
    merchant_id: MerchantId
    amount: Amount
    currency: CurrencyCode
    installments: Installments
    auth_code: AuthCode
    authentication: Authentication | None = Field(
        default=None,
        description="The 3-D Secure result when the payment was authenticated, else null",
        examples=[AUTHENTICATION_EXAMPLE],
    )


class PaymentCapture(_Public):
    """Money taken from an authorization: a sale's capture, or a pre-authorization's."""

    payment_id: PaymentId
    merchant_id: MerchantId
    amount: Amount = Field(description="Captured, minor units of `currency`", examples=[12500])
    authorized_amount: int | None = Field(
        default=None,
        gt=0,
        description="The hold this capture drew on; the rest was released. Null if unknown",
        examples=[12500],
    )
    currency: CurrencyCode
    installments: Installments
    auth_code: AuthCode


class PaymentFailure(_Public):
    """A declined payment: nothing is held or taken."""

    payment_id: PaymentId
    merchant_id: MerchantId
    amount: Amount
    currency: CurrencyCode
    decline_code: DeclineCode = Field(examples=["insufficient_funds"])
    response_code: str = Field(
        pattern=r"^[0-9A-Z]{2}$",
        description="ISO 8583-style response code, as in GET /v1/payments/{id}",
        examples=["51"],
    )
    decline_reason: str = Field(
        description="A short human-readable reason", examples=["insufficient funds"]
    )
    authentication: Authentication | None = Field(
        default=None,
        description="The 3-D Secure result when authentication was attempted, else null",
        examples=[None],
    )


class PaymentActionRequest(_Public):
    """A payment held before authorization; its outcome follows as another event."""

    payment_id: PaymentId
    merchant_id: MerchantId
    amount: Amount
    currency: CurrencyCode
    next_action: NextAction = Field(examples=["three_d_secure"])
    next_action_url: str | None = Field(
        default=None,
        description="3-D Secure: send the shopper's browser here; null for a review",
        examples=["https://acs.sanalpos.example/acs/challenges/ch_Hq3xW0v9Jr2mUu1dRk7sP4aZ"],
    )
    expires_at: AwareDatetime | None = Field(
        default=None,
        description="3-D Secure: when the challenge stops accepting an answer (then the "
        "payment fails, authentication abandoned); null for a review",
        examples=["2026-12-02T09:40:00Z"],
    )


class PaymentVoid(_Public):
    """A cancelled payment: the hold released, or a same-day capture reversed."""

    payment_id: PaymentId
    merchant_id: MerchantId
    amount: Amount = Field(description="Released or reversed, minor units", examples=[12500])
    currency: CurrencyCode
    after_capture: bool = Field(
        description="true = a capture reversed before the cut-off; false = a hold released",
        examples=[False],
    )


class PaymentExpiry(_Public):
    """A pre-authorization not captured in time: its hold is released."""

    payment_id: PaymentId
    merchant_id: MerchantId
    amount: Amount = Field(description="Released hold, minor units", examples=[12500])
    currency: CurrencyCode
    expired_at: AwareDatetime = Field(examples=["2026-12-09T10:15:00Z"])


class PaymentSettlement(_Public):
    """A captured payment booked in your end-of-day batch, with our fee and your net."""

    payment_id: PaymentId
    merchant_id: MerchantId
    gross_amount: int = Field(description="Minor units", examples=[12500])
    fee_amount: int = Field(description="Our fee, minor units", examples=[224])
    net_amount: int = Field(description="Paid out to you, minor units", examples=[12276])
    currency: CurrencyCode
    batch_id: uuid.UUID | None = Field(
        default=None,
        description="The end-of-day batch it closed in",
        examples=["9d1c3e55-0f7a-4b2e-8c61-2a4f6b8d0e13"],
    )
    batch_date: date | None = Field(
        default=None,
        description="That batch's business date in your time zone",
        examples=["2026-12-02"],
    )


class PaymentCaptureFailure(_Public):
    """A capture you asked for that could not be executed; the payment is unchanged."""

    payment_id: PaymentId
    merchant_id: MerchantId
    amount: int | None = Field(
        default=None, gt=0, description="The amount asked for", examples=[12500]
    )
    failure_reason: str = Field(examples=["cannot capture a payment that is voided"])


class PaymentVoidFailure(_Public):
    """A void you asked for that could not be executed; the payment is unchanged."""

    payment_id: PaymentId
    merchant_id: MerchantId
    failure_reason: str = Field(examples=["cannot void a payment that is settled"])


class Refund(_Public):
    """A refund executed: the amount goes back to the card."""

    refund_id: RefundId
    payment_id: PaymentId
    merchant_id: MerchantId
    amount: Amount
    currency: CurrencyCode
    reason: str = Field(description="Why, as you gave it", examples=["returned goods"])


class RefundFailure(_Public):
    """A refund that could not be executed; its amount is free to refund again."""

    refund_id: RefundId
    payment_id: PaymentId
    merchant_id: MerchantId
    amount: int | None = Field(
        default=None, gt=0, description="The amount asked for", examples=[2500]
    )
    failure_reason: str = Field(examples=["cannot refund a payment that is voided"])


# ----------------------------------------------------------------------------- events


class WebhookEvent(_Public):
    """What every webhook body has. Subclasses fix `type` and the shape of `data`."""

    id: str = Field(
        pattern=r"^evt_[0-9a-f]{32}$",
        description="The event's id: the same for every endpoint and every retry",
        examples=["evt_5f0c6a6b2d1e4b55b3e0c6a9f1d2e3f4"],
    )
    api_version: Literal["v1"] = Field(
        default=API_VERSION, description="The contract version of this body"
    )
    created_at: AwareDatetime = Field(
        description="When it happened, ISO 8601 UTC", examples=["2026-12-02T09:30:00Z"]
    )

    type: str = Field(description="The event type; fixes the shape of `data`")

    @field_validator("created_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)


class PaymentAuthorized(WebhookEvent):
    """A pre-authorization approved: the amount is held until you capture or void it."""

    type: Literal["payment.authorized"] = "payment.authorized"
    data: PaymentAuthorization


class PaymentSucceeded(WebhookEvent):
    """A sale went through: authorized and captured in one step (`payment.captured` follows)."""

    type: Literal["payment.succeeded"] = "payment.succeeded"
    data: PaymentAuthorization


class PaymentFailed(WebhookEvent):
    """A payment declined, by the issuer or by our risk checks."""

    type: Literal["payment.failed"] = "payment.failed"
    data: PaymentFailure


class PaymentRequiresAction(WebhookEvent):
    """A payment held for review or 3-D Secure before it is authorized."""

    type: Literal["payment.requires_action"] = "payment.requires_action"
    data: PaymentActionRequest


class PaymentCaptured(WebhookEvent):
    """Money taken: every capture, a sale's as well as a pre-authorization's."""

    type: Literal["payment.captured"] = "payment.captured"
    data: PaymentCapture


class PaymentVoided(WebhookEvent):
    """Cancelled: a hold released, or a capture reversed before your cut-off (no refund line)."""

    type: Literal["payment.voided"] = "payment.voided"
    data: PaymentVoid


class PaymentExpired(WebhookEvent):
    """A pre-authorization not captured within its period: the hold is released."""

    type: Literal["payment.expired"] = "payment.expired"
    data: PaymentExpiry


class PaymentSettled(WebhookEvent):
    """A captured payment booked when your end-of-day batch closed, with fee and net."""

    type: Literal["payment.settled"] = "payment.settled"
    data: PaymentSettlement


class PaymentCaptureFailed(WebhookEvent):
    """A capture you asked for was refused; the payment is unchanged."""

    type: Literal["payment.capture_failed"] = "payment.capture_failed"
    data: PaymentCaptureFailure


class PaymentVoidFailed(WebhookEvent):
    """A void you asked for was refused; the payment is unchanged."""

    type: Literal["payment.void_failed"] = "payment.void_failed"
    data: PaymentVoidFailure


class RefundSucceeded(WebhookEvent):
    """A refund executed: its amount goes back to the card. Several may follow one capture."""

    type: Literal["refund.succeeded"] = "refund.succeeded"
    data: Refund


class RefundFailed(WebhookEvent):
    """A refund you asked for was refused; its amount is free to refund again."""

    type: Literal["refund.failed"] = "refund.failed"
    data: RefundFailure


def _type_of(model: type[WebhookEvent]) -> str:
    default = model.model_fields["type"].default
    assert isinstance(default, str)
    return default


WEBHOOK_EVENTS: dict[str, type[WebhookEvent]] = {
    _type_of(model): model
    for model in (
        PaymentSucceeded,
        PaymentAuthorized,
        PaymentFailed,
        PaymentRequiresAction,
        PaymentCaptured,
        PaymentVoided,
        PaymentExpired,
        PaymentSettled,
        PaymentCaptureFailed,
        PaymentVoidFailed,
        RefundSucceeded,
        RefundFailed,
    )
}
"""Every public event type, by its `type`."""


def schema_file_name(event_type: str) -> str:
    return f"{event_type}.{API_VERSION}.json"


# ----------------------------------------------------------------------------- payouts


class Payout(_Public):
    """A payout to your bank account: the net of one or more settlement batches."""

    payout_id: uuid.UUID = Field(
        description="The payout's id, as in GET /v1/payouts",
        examples=["b0d6f7a2-1c3e-4d5f-8a9b-0c1d2e3f4a5b"],
    )
    merchant_id: MerchantId
    amount: Amount
    currency: CurrencyCode
    value_date: date = Field(description="The value date it was made on", examples=["2026-12-03"])
    iban_last4: str = Field(description="Last four characters of the IBAN", examples=["9595"])
    batch_ids: list[uuid.UUID] = Field(
        description="The settlement batches it pays",
        examples=[["9d1c3e55-0f7a-4b2e-8c61-2a4f6b8d0e13"]],
    )


class PayoutFailure(Payout):
    """A payout the bank returned: its amount is back in your available balance."""

    failure_reason: str = Field(description="Why the bank returned it", examples=["account closed"])


class PayoutPaid(WebhookEvent):
    """The bank confirmed a payout to your account."""

    type: Literal["payout.paid"] = "payout.paid"
    data: Payout


class PayoutFailed(WebhookEvent):
    """The bank returned a payout; the money is available again and goes with the next one."""

    type: Literal["payout.failed"] = "payout.failed"
    data: PayoutFailure


WEBHOOK_EVENTS.update({_type_of(model): model for model in (PayoutPaid, PayoutFailed)})


# ----------------------------------------------------------------------------- disputes
# (issue 13, disputes part; docs/disputes.md)

DisputeId = Annotated[
    uuid.UUID,
    Field(
        description="The dispute's id, as in GET /v1/disputes",
        examples=["7b0c2f7e-4c5d-4a1b-9e8f-0a1b2c3d4e5f"],
    ),
]


class Dispute(_Public):
    """A chargeback the cardholder's bank raised on one of your payments."""

    dispute_id: DisputeId
    payment_id: PaymentId
    merchant_id: MerchantId
    amount: Amount
    currency: CurrencyCode
    reason_code: str = Field(description="The card scheme's reason code", examples=["13.1"])
    reason: str = Field(description="The issuer's reason", examples=["merchandise not received"])
    respond_by: AwareDatetime = Field(
        description="Accept or send evidence (POST /v1/disputes/{id}/evidence) until then",
        examples=["2026-12-10T09:30:00Z"],
    )
    fee: int = Field(
        ge=0, description="Debited on top of the amount if it is lost", examples=[15000]
    )


class DisputeOutcome(Dispute):
    """A decided dispute: won, the held amount is back in your balance; lost, the amount and
    the fee are debited."""

    outcome_reason: Literal["accepted", "no_response", "issuer_won", "issuer_lost"] = Field(
        description="accepted by you, no answer by the deadline, or the issuer's ruling",
        examples=["issuer_won"],
    )


class DisputeCreated(WebhookEvent):
    """A payment was disputed: its amount is held from your balance until the dispute ends."""

    type: Literal["dispute.created"] = "dispute.created"
    data: Dispute


class DisputeWon(WebhookEvent):
    """The issuer ruled for you: the held amount is released to your balance."""

    type: Literal["dispute.won"] = "dispute.won"
    data: DisputeOutcome


class DisputeLost(WebhookEvent):
    """The dispute is lost: the amount goes back to the cardholder and the fee is debited."""

    type: Literal["dispute.lost"] = "dispute.lost"
    data: DisputeOutcome


WEBHOOK_EVENTS.update(
    {_type_of(model): model for model in (DisputeCreated, DisputeWon, DisputeLost)}
)
