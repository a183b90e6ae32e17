"""Merchant record rules (domain.merchant) and the admin API's request bodies."""

from __future__ import annotations

from datetime import time
from typing import Any

import pytest
from pydantic import ValidationError

from intake.domain.merchant import (
    InvalidMerchantField,
    check_field,
    check_fields,
    check_merchant_id,
    new_merchant_id,
)
from intake.entrypoints.http.merchant_schemas import CreateMerchant, UpdateMerchant


def test_valid_profile_fields_are_normalised() -> None:
    assert check_fields(
        {
            "name": "  Moda Kitap Evi ",
            "settlement_currency": "TRY",
            "time_zone": "America/New_York",
            "cutoff_time": "18:30",
            "fee_plan": "volume",
            "max_installments": 6,
        }
    ) == {
        "name": "Moda Kitap Evi",
        "settlement_currency": "TRY",
        "time_zone": "America/New_York",
        "cutoff_time": time(18, 30),
        "fee_plan": "volume",
        "max_installments": 6,
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", ""),
        ("settlement_currency", "XXX"),
        ("settlement_currency", "try"),
        ("time_zone", "Mars/Olympus_Mons"),
        ("time_zone", "../../etc/passwd"),
        ("cutoff_time", "24:00"),
        ("cutoff_time", "9:00"),
        ("fee_plan", "platinum"),
        ("max_installments", 0),
        ("max_installments", 13),
        ("max_installments", True),
        ("status", "active"),
        ("version", 7),
    ],
)
def test_invalid_fields_are_named(field: str, value: Any) -> None:
    with pytest.raises(InvalidMerchantField) as refused:
        check_field(field, value)
    assert refused.value.field == field


def test_create_body_defaults() -> None:
    body = CreateMerchant(name="Moda")
    assert (body.time_zone, body.cutoff_time, body.fee_plan, body.max_installments) == (
        "Europe/Istanbul",
        "23:59",
        "standard",
        12,
    )


@pytest.mark.parametrize(
    "extra",
    [{"version": 9}, {"status": "active"}, {"api_key": "sk_test_x"}, {"merchant_id": "mer_x"}],
)
def test_create_body_rejects_unknown_fields(extra: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as refused:
        CreateMerchant.model_validate({"name": "Moda", **extra})
    assert refused.value.errors()[0]["type"] == "extra_forbidden"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"time_zone": "Europe/Istanbull"}, "time_zone"),
        ({"fee_plan": "gold"}, "fee_plan"),
        ({"cutoff_time": "25:00"}, "cutoff_time"),
        ({"id": "merchant_1"}, "id"),
        ({"id": "mer_demo"}, None),
    ],
)
def test_create_body_field_errors(body: dict[str, Any], field: str | None) -> None:
    if field is None:
        CreateMerchant.model_validate({"name": "Moda", **body})
        return
    with pytest.raises(ValidationError) as refused:
        CreateMerchant.model_validate({"name": "Moda", **body})
    assert [e["loc"] for e in refused.value.errors()] == [(field,)]


def test_update_body_changes_only_what_is_given() -> None:
    assert UpdateMerchant(cutoff_time="18:00").changes() == {"cutoff_time": "18:00"}
    assert UpdateMerchant().changes() == {}
    with pytest.raises(ValidationError):
        UpdateMerchant.model_validate({"id": "mer_other"})


def test_a_new_merchant_id_never_holds_a_card_shaped_digit_run() -> None:
    draws = iter(["4111111111111111", "4c1216380949835d", "0123456789abcdef"])
    assert new_merchant_id(lambda _n: next(draws)) == "mer_0123456789abcdef"


def test_new_merchant_ids_are_valid_and_distinct() -> None:
    ids = {new_merchant_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(check_merchant_id(i) == i for i in ids)
