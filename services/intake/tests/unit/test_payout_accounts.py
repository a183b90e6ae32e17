"""IBAN validation and the country/currency combinations payouts support."""

from __future__ import annotations

import pytest

from intake.domain.payout_accounts import (
    InvalidPayoutAccount,
    mask_iban,
    parse_iban,
    validated_account,
)
from intake.entrypoints.http.app import build_app

TR = "TR950006100000000000039595"
DE = "DE89370400440532013000"
GB = "GB29NWBK60161331926819"


def test_a_valid_iban_is_kept_compact_with_its_country() -> None:
    iban = parse_iban("TR95 0006 1000 0000 0000 0395 95")
    assert (iban.compact, iban.country, iban.in_sepa_zone) == (TR, "TR", False)
    assert parse_iban(DE).in_sepa_zone


@pytest.mark.parametrize(
    "bad",
    [
        "TR950006100000000000039596",  # checksum
        "TR95000610000000000003959",  # length
        "XX950006100000000000039595",  # country
        "not an iban at all",
    ],
)
def test_an_invalid_iban_is_refused_on_the_iban_field(bad: str) -> None:
    with pytest.raises(InvalidPayoutAccount) as refused:
        validated_account(bad, "TRY")
    assert (refused.value.field, refused.value.code) == ("iban", "invalid_iban")


@pytest.mark.parametrize(
    ("iban", "currency"),
    [(TR, "TRY"), (TR, "EUR"), (DE, "EUR"), (TR, "USD"), (GB, "GBP"), (TR, "GBP")],
)
def test_supported_combinations_pass(iban: str, currency: str) -> None:
    assert validated_account(iban, currency).compact == iban


@pytest.mark.parametrize(("iban", "currency"), [(DE, "TRY"), (GB, "TRY"), (DE, "USD"), (DE, "GBP")])
def test_a_country_that_cannot_receive_the_currency_is_refused_on_the_iban_field(
    iban: str, currency: str
) -> None:
    with pytest.raises(InvalidPayoutAccount) as refused:
        validated_account(iban, currency)
    assert (refused.value.field, refused.value.code) == ("iban", "unsupported_country_currency")
    assert currency in refused.value.message


def test_a_currency_without_payouts_is_refused_on_the_currency_field() -> None:
    with pytest.raises(InvalidPayoutAccount) as refused:
        validated_account(TR, "JPY")
    assert refused.value.field == "currency"


def test_masking_keeps_only_the_last_four() -> None:
    assert mask_iban(TR) == "*" * 22 + "9595"
    assert mask_iban("TR95 0006 1000 0000 0000 0395 95").endswith("*9595")
    assert "0006" not in mask_iban(TR)


def test_the_payout_operations_are_in_the_openapi_document_with_examples() -> None:
    document = build_app().openapi()
    paths = document["paths"]
    for path, method in [
        ("/v1/payout-accounts", "post"),
        ("/v1/payout-accounts", "get"),
        ("/v1/payout-accounts/{account_id}", "delete"),
        ("/v1/payout-accounts/{account_id}/default", "post"),
        ("/v1/payouts", "get"),
        ("/v1/payouts/{payout_id}", "get"),
        ("/v1/payouts.csv", "get"),
    ]:
        operation = paths[path][method]
        assert operation["summary"] and operation["description"], (path, method)
    schemas = document["components"]["schemas"]
    for name in ("CreatePayoutAccount", "PayoutAccountOut", "PayoutOut", "PayoutLineOut"):
        for field, prop in schemas[name]["properties"].items():
            assert prop.get("description") and prop.get("examples"), (name, field)
    iban = schemas["CreatePayoutAccount"]["properties"]["iban"]["examples"][0]
    assert validated_account(iban, "TRY").compact == iban
