"""Bodies of the merchant admin API and the BIN lookup. Requests reject unknown fields."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    WithJsonSchema,
    field_validator,
)

from intake.domain.checkout import MAX_FRAME_ANCESTORS, ORIGIN_PATTERN
from intake.domain.commands import JsonInt, RequestBody, json_integer
from intake.domain.merchant import (
    CUTOFF_PATTERN,
    MAX_PAYOUT_DELAY_DAYS,
    MERCHANT_ID_PATTERN,
    check_field,
)
from sanalpos_common.business_day import DEFAULT_CUTOFF, DEFAULT_TIME_ZONE
from sanalpos_common.fees import DEFAULT_FEE_PLAN, FEE_PLANS
from sanalpos_common.money import CurrencyCode

# The schema names the plans, so a client (and schemathesis) knows the valid values.
InstallmentCount = Annotated[StrictInt, Field(ge=1, le=12), BeforeValidator(json_integer)]
TimeZoneName = Annotated[
    str, WithJsonSchema({"type": "string", "enum": sorted(available_timezones())})
]
PayoutDelay = Annotated[
    StrictInt, Field(ge=0, le=MAX_PAYOUT_DELAY_DAYS), BeforeValidator(json_integer)
]
PAYOUT_DELAY_DOC = (
    "Payout plan: the value date (valör) is the batch date plus this many business days "
    "(weekends and Turkish public holidays skipped); 1 = next business day"
)
PAYOUT_PLAN_DOC = (
    "`batch`: each end-of-day batch's net is paid on its value date (payout_delay_days); "
    "`per_installment`: a sale in N installments is paid in N monthly parts, the k-th at the "
    "batch date + k months (next business day), refunds at the batch's value date"
)
PayoutPlanName = Literal["batch", "per_installment"]
FeePlanName = Annotated[str, WithJsonSchema({"type": "string", "enum": sorted(FEE_PLANS)})]
# --- multi-currency (issue 13, fx) ---
CurrencySettlement = dict[CurrencyCode, Literal["convert", "in_currency"]]
FxMarkup = Annotated[StrictInt, Field(ge=0, le=1000), BeforeValidator(json_integer)]
CURRENCY_SETTLEMENT_DOC = (
    "Per currency you accept: `convert` it into settlement_currency at the rate fixed at "
    "capture, or `in_currency` (settled and paid out in that currency). A currency not named "
    "settles in itself"
)
FX_MARKUP_DOC = "FX markup on converted amounts, basis points (0 to 1000), its own ledger line"
FX_NO_RATE_DOC = (
    "A payment to convert while no fresh rate exists: `in_currency` settles it in its own "
    "currency, `refuse` refuses it (422 fx-rate-unavailable)"
)


_Request = RequestBody


def _checked(field: str, value: Any) -> Any:
    if value is None:
        return None
    try:
        check_field(field, value)
    except ValueError as exc:
        raise ValueError(getattr(exc, "message", str(exc))) from None
    return value


# Some character that JSON Schema's, Rust's and Python's regexes (and str.strip) all agree is
# not whitespace: their `\s` differ on \x1c-\x1f and \x85.
NOT_ONLY_SPACE = r"[^\s\x1c-\x1f\x85]"
CREATED_EXAMPLE = "2026-11-27T09:15:00Z"
UPDATED_EXAMPLE = "2026-11-27T10:02:41Z"
RATE_LIMIT_EXAMPLE: dict[str, Any] = {"per_second": 50, "burst": 100}
KEY_EXAMPLE: dict[str, Any] = {
    "id": "0b6c1c1e-3f4e-4d7c-9a57-1f2e3d4c5b6a",
    "object": "api_key",
    "merchant_id": "mer_kadikoy_kitap",
    "mode": "test",
    "prefix": "sk_test_Xy3q",
    "active": True,
    "created_at": CREATED_EXAMPLE,
    "revoked_at": None,
    "rate_limit": None,
}
MERCHANT_EXAMPLE: dict[str, Any] = {
    "id": "mer_kadikoy_kitap",
    "object": "merchant",
    "name": "Moda Kitap Evi",
    "settlement_currency": "TRY",
    "time_zone": "Europe/Istanbul",
    "cutoff_time": "23:59",
    "fee_plan": "standard",
    "max_installments": 12,
    "payout_delay_days": 1,
    "payout_plan": "batch",
    "always_three_d_secure": False,
    "version": 1,
    "created_at": CREATED_EXAMPLE,
    "updated_at": CREATED_EXAMPLE,
    "checkout_locale": "tr",
    "checkout_frame_ancestors": [],
    "currency_settlement": {},
    "fx_markup_bps": 0,
    "fx_no_rate": "in_currency",
}
API_KEY_EXAMPLE = "sk_test_Xy3qv0Lr8Tb2Wn6Hs1Dj5Fg3Ak8Ue0Oi2Mc4Ny7Pa9Q"

NAME = Field(
    min_length=1,
    max_length=200,
    pattern=NOT_ONLY_SPACE,
    description="Trading name",
    examples=["Moda Kitap Evi"],
)
TIME_ZONE_DOC = "IANA time zone of the merchant's business day"
CUTOFF_DOC = "End-of-day cut-off, HH:MM local time: captures after it go into the next batch"
FEE_PLAN_DOC = f"Fee plan: one of {', '.join(sorted(FEE_PLANS))}"
CHECKOUT_LOCALE_DOC = "Default language of the hosted payment page: tr or en"
FRAME_ANCESTORS_DOC = (
    "Origins allowed to show the hosted payment page in an iframe (CSP frame-ancestors); "
    "empty: none may"
)
MAX_INSTALLMENTS_DOC = "Most installments this merchant offers (cards and fee plan may allow fewer)"
ALWAYS_3DS_DOC = (
    "3-D Secure on every payment: intake sends each payment with `three_d_secure: required`, "
    "whatever the request asked"
)


class RateLimitIn(_Request):
    # Strict: a JSON number (integers too), not `true` or "50" as a lax float would take.
    per_second: StrictFloat = Field(
        gt=0, le=100_000, description="Sustained requests per second", examples=[50]
    )
    burst: JsonInt = Field(
        ge=1,
        le=1_000_000,
        description="Requests allowed at once after a quiet spell",
        examples=[100],
    )


class RateLimitOut(BaseModel):
    per_second: float = Field(description="Sustained requests per second", examples=[50])
    burst: int = Field(description="Bucket size", examples=[100])


class CreateMerchant(_Request):
    name: str = NAME
    id: str | None = Field(
        default=None,
        pattern=MERCHANT_ID_PATTERN,
        description="Your id for the merchant; generated when absent",
        examples=["mer_kadikoy_kitap"],
    )
    settlement_currency: CurrencyCode = Field(
        default="TRY", description="Currency paid out in", examples=["TRY"]
    )
    time_zone: TimeZoneName = Field(
        default=DEFAULT_TIME_ZONE,
        max_length=64,
        description=TIME_ZONE_DOC,
        examples=["Europe/Istanbul"],
    )
    cutoff_time: str = Field(
        default=DEFAULT_CUTOFF.strftime("%H:%M"),
        pattern=CUTOFF_PATTERN,
        description=CUTOFF_DOC,
        examples=["23:59"],
    )
    fee_plan: FeePlanName = Field(
        default=DEFAULT_FEE_PLAN, description=FEE_PLAN_DOC, examples=["standard"]
    )
    max_installments: JsonInt = Field(
        default=12, ge=1, le=12, description=MAX_INSTALLMENTS_DOC, examples=[12]
    )
    payout_delay_days: JsonInt = Field(
        default=1, ge=0, le=MAX_PAYOUT_DELAY_DAYS, description=PAYOUT_DELAY_DOC, examples=[1]
    )
    payout_plan: PayoutPlanName = Field(
        default="batch", description=PAYOUT_PLAN_DOC, examples=["batch"]
    )
    always_three_d_secure: StrictBool = Field(
        default=False, description=ALWAYS_3DS_DOC, examples=[False]
    )
    currency_settlement: CurrencySettlement = Field(
        default_factory=dict, description=CURRENCY_SETTLEMENT_DOC, examples=[{"EUR": "convert"}]
    )
    fx_markup_bps: JsonInt = Field(
        default=0, ge=0, le=1000, description=FX_MARKUP_DOC, examples=[150]
    )
    fx_no_rate: Literal["in_currency", "refuse"] = Field(
        default="in_currency", description=FX_NO_RATE_DOC, examples=["refuse"]
    )
    mode: Literal["test", "live"] = Field(
        default="test",
        description="Mode of the first API key: sk_test_ or sk_live_",
        examples=["test"],
    )
    rate_limit: RateLimitIn | None = Field(
        default=None,
        description="The first key's own rate limit; absent = the service default",
        examples=[RATE_LIMIT_EXAMPLE],
    )

    @field_validator("time_zone", "fee_plan")
    @classmethod
    def _known(cls, value: str, info: Any) -> str:
        return str(_checked(info.field_name, value))


class UpdateMerchant(_Request):
    """Only the fields given change; each change makes a new version."""

    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=NOT_ONLY_SPACE,
        description="Trading name",
        examples=["Moda Kitap Evi"],
    )
    settlement_currency: CurrencyCode | None = Field(
        default=None, description="Currency paid out in", examples=["EUR"]
    )
    time_zone: TimeZoneName | None = Field(
        default=None, max_length=64, description=TIME_ZONE_DOC, examples=["Europe/Istanbul"]
    )
    cutoff_time: str | None = Field(
        default=None, pattern=CUTOFF_PATTERN, description=CUTOFF_DOC, examples=["18:00"]
    )
    fee_plan: FeePlanName | None = Field(
        default=None, description=FEE_PLAN_DOC, examples=["volume"]
    )
    max_installments: InstallmentCount | None = Field(
        default=None, description=MAX_INSTALLMENTS_DOC, examples=[6]
    )
    payout_delay_days: PayoutDelay | None = Field(
        default=None, description=PAYOUT_DELAY_DOC, examples=[2]
    )
    payout_plan: PayoutPlanName | None = Field(
        default=None, description=PAYOUT_PLAN_DOC, examples=["per_installment"]
    )
    always_three_d_secure: StrictBool | None = Field(
        default=None, description=ALWAYS_3DS_DOC, examples=[True]
    )

    @field_validator("time_zone", "fee_plan")
    @classmethod
    def _known(cls, value: str | None, info: Any) -> str | None:
        return _checked(info.field_name, value)

    # --- hosted payment page (issue 11) ---
    checkout_locale: Literal["tr", "en"] | None = Field(
        default=None, description=CHECKOUT_LOCALE_DOC, examples=["en"]
    )
    checkout_frame_ancestors: list[Annotated[str, Field(pattern=ORIGIN_PATTERN)]] | None = Field(
        default=None,
        max_length=MAX_FRAME_ANCESTORS,
        description=FRAME_ANCESTORS_DOC,
        examples=[["https://shop.example"]],
    )

    # --- multi-currency (issue 13, fx) ---
    currency_settlement: CurrencySettlement | None = Field(
        default=None,
        description=CURRENCY_SETTLEMENT_DOC + " (the whole map is replaced)",
        examples=[{"EUR": "convert", "USD": "in_currency"}],
    )
    fx_markup_bps: FxMarkup | None = Field(default=None, description=FX_MARKUP_DOC, examples=[150])
    fx_no_rate: Literal["in_currency", "refuse"] | None = Field(
        default=None, description=FX_NO_RATE_DOC, examples=["refuse"]
    )

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True, exclude_none=True)


class MerchantOut(BaseModel):
    id: str = Field(examples=["mer_kadikoy_kitap"], description="Merchant id")
    object: str = Field(default="merchant", description="Always `merchant`", examples=["merchant"])
    name: str = Field(description="Trading name", examples=["Moda Kitap Evi"])
    settlement_currency: str = Field(description="Currency paid out in", examples=["TRY"])
    time_zone: str = Field(description=TIME_ZONE_DOC, examples=["Europe/Istanbul"])
    cutoff_time: str = Field(description=CUTOFF_DOC, examples=["23:59"])
    fee_plan: str = Field(description=FEE_PLAN_DOC, examples=["standard"])
    max_installments: int = Field(description=MAX_INSTALLMENTS_DOC, examples=[12])
    payout_delay_days: int = Field(description=PAYOUT_DELAY_DOC, examples=[1])
    payout_plan: str = Field(default="batch", description=PAYOUT_PLAN_DOC, examples=["batch"])
    always_three_d_secure: bool = Field(description=ALWAYS_3DS_DOC, examples=[False])
    version: int = Field(description="Increases with every change", examples=[1])
    created_at: datetime = Field(
        description="When the merchant was created", examples=[CREATED_EXAMPLE]
    )
    updated_at: datetime = Field(
        description="When the record last changed", examples=[UPDATED_EXAMPLE]
    )
    # --- hosted payment page (issue 11) ---
    checkout_locale: str = Field(default="tr", description=CHECKOUT_LOCALE_DOC, examples=["tr"])
    checkout_frame_ancestors: list[str] = Field(
        default_factory=list, description=FRAME_ANCESTORS_DOC, examples=[["https://shop.example"]]
    )
    # --- multi-currency (issue 13, fx) ---
    currency_settlement: dict[str, str] = Field(
        default_factory=dict, description=CURRENCY_SETTLEMENT_DOC, examples=[{"EUR": "convert"}]
    )
    fx_markup_bps: int = Field(default=0, description=FX_MARKUP_DOC, examples=[0])
    fx_no_rate: str = Field(default="in_currency", description=FX_NO_RATE_DOC, examples=["refuse"])


class WebhookEndpointSummary(BaseModel):
    id: str = Field(description="Endpoint id", examples=["5f0c6a6b-2d1e-4b55-b3e0-c6a9f1d2e3f4"])
    url: str = Field(
        description="Where events are delivered", examples=["https://shop.example/hooks"]
    )
    created_at: datetime = Field(description="When it was registered", examples=[CREATED_EXAMPLE])


class MerchantDetail(MerchantOut):
    webhook_endpoints: list[WebhookEndpointSummary] = Field(
        description="Registered webhook endpoints (POST /v1/webhook-endpoints); secrets never shown",
        examples=[
            [
                {
                    "id": "5f0c6a6b-2d1e-4b55-b3e0-c6a9f1d2e3f4",
                    "url": "https://shop.example/hooks",
                    "created_at": CREATED_EXAMPLE,
                }
            ]
        ],
    )


class MerchantList(BaseModel):
    object: str = Field(default="list", description="Always `list`", examples=["list"])
    data: list[MerchantOut] = Field(
        description="Merchants in id order", examples=[[MERCHANT_EXAMPLE]]
    )
    has_more: bool = Field(description="Whether another page follows", examples=[False])
    next_cursor: str | None = Field(
        default=None, description="Pass as ?cursor= for the next page", examples=["mer_demo"]
    )


class CreateApiKey(_Request):
    mode: Literal["test", "live"] = Field(
        default="test",
        description="`test` (sk_test_ key) or `live` (sk_live_ key)",
        examples=["test"],
    )
    rate_limit: RateLimitIn | None = Field(
        default=None,
        description="This key's own rate limit; absent = the service default",
        examples=[RATE_LIMIT_EXAMPLE],
    )


class RotateApiKey(_Request):
    grace_period_s: JsonInt = Field(
        default=0,
        ge=0,
        le=7 * 24 * 3600,
        description="Seconds the old key keeps working (0: revoked at once)",
        examples=[3600],
    )


class ApiKeyOut(BaseModel):
    id: str = Field(
        description="Key id (not the key)", examples=["0b6c1c1e-3f4e-4d7c-9a57-1f2e3d4c5b6a"]
    )
    object: str = Field(default="api_key", description="Always `api_key`", examples=["api_key"])
    merchant_id: str = Field(description="Owner", examples=["mer_kadikoy_kitap"])
    mode: str = Field(description="test or live", examples=["test"])
    prefix: str = Field(
        description="First characters of the key, to tell keys apart", examples=["sk_test_Xy3q"]
    )
    active: bool = Field(description="Whether the key authenticates now", examples=[True])
    created_at: datetime = Field(description="When the key was made", examples=[CREATED_EXAMPLE])
    revoked_at: datetime | None = Field(
        default=None,
        description="When it stopped (or, during a rotation's grace, stops) working",
        examples=[None],
    )
    rate_limit: RateLimitOut | None = Field(
        default=None,
        description="The key's own limit; null = the service default",
        examples=[RATE_LIMIT_EXAMPLE],
    )


class ApiKeyCreated(ApiKeyOut):
    api_key: str = Field(
        description="The key itself: shown only in this response", examples=[API_KEY_EXAMPLE]
    )


class ApiKeyList(BaseModel):
    object: str = Field(default="list", description="Always `list`", examples=["list"])
    data: list[ApiKeyOut] = Field(
        description="The merchant's keys, newest first", examples=[[KEY_EXAMPLE]]
    )


class ApiKeyRotated(BaseModel):
    key: ApiKeyCreated = Field(
        description="The new key, shown once",
        examples=[{**KEY_EXAMPLE, "api_key": API_KEY_EXAMPLE}],
    )
    previous: ApiKeyOut = Field(
        description="The replaced key and when it stops working",
        examples=[
            {
                **KEY_EXAMPLE,
                "id": "9a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
                "prefix": "sk_test_Pq7m",
                "revoked_at": UPDATED_EXAMPLE,
            }
        ],
    )


class MerchantCreated(MerchantOut):
    api_key: str = Field(
        description="The first API key: shown only in this response", examples=[API_KEY_EXAMPLE]
    )
    key: ApiKeyOut = Field(description="The first API key's record", examples=[KEY_EXAMPLE])


class InstallmentOptionOut(BaseModel):
    count: int = Field(description="Number of installments", examples=[3])
    commission_bps: int = Field(
        description="Commission for this count, basis points (1/100 of 1%)", examples=[299]
    )


class BinOut(BaseModel):
    object: str = Field(default="bin", description="Always `bin`", examples=["bin"])
    bin: str = Field(description="The digits looked up", examples=["45260310"])
    scheme: str = Field(description="Card scheme id", examples=["visa"])
    scheme_name: str = Field(description="Card scheme, for display", examples=["Visa"])
    card_type: Literal["credit", "debit", "prepaid", "unknown"] = Field(
        description="`unknown` when the BIN table has no row for it", examples=["credit"]
    )
    issuer: str | None = Field(default=None, description="Issuing bank", examples=["Garanti BBVA"])
    programme: str | None = Field(default=None, description="Card programme", examples=["Bonus"])
    country: str | None = Field(
        default=None, description="Issuer country, ISO 3166", examples=["TR"]
    )
    known: bool = Field(
        description="Whether the BIN table has a row for these digits", examples=[True]
    )
    fee_plan: str = Field(description="Your fee plan the rates come from", examples=["standard"])
    installments: list[InstallmentOptionOut] = Field(
        description="Installment counts this card may be paid in at your shop, with commission",
        examples=[[{"count": 1, "commission_bps": 0}, {"count": 3, "commission_bps": 299}]],
    )
