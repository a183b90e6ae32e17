"""The merchant's multi-currency settings (issue 13): per-currency choice, markup and what to
do without a fresh rate, checked in the domain and in the admin API's bodies."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from intake.domain.merchant import InvalidMerchantField, check_field
from intake.entrypoints.http.merchant_schemas import CreateMerchant, UpdateMerchant
from intake.service_layer.fx import rate_unavailable


def test_currency_choices_are_kept_sorted() -> None:
    assert check_field("currency_settlement", {"USD": "in_currency", "EUR": "convert"}) == {
        "EUR": "convert",
        "USD": "in_currency",
    }
    assert check_field("fx_markup_bps", 150) == 150
    assert check_field("fx_no_rate", "refuse") == "refuse"


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("currency_settlement", {"EUR": "swap"}, "currency_settlement.EUR"),
        ("currency_settlement", {"XXX": "convert"}, "currency_settlement.XXX"),
        ("currency_settlement", ["EUR"], "currency_settlement"),
        ("fx_markup_bps", 1001, "fx_markup_bps"),
        ("fx_markup_bps", -1, "fx_markup_bps"),
        ("fx_no_rate", "stale", "fx_no_rate"),
    ],
)
def test_bad_fx_settings_name_their_field(field: str, value: Any, named: str) -> None:
    with pytest.raises(InvalidMerchantField) as refused:
        check_field(field, value)
    assert refused.value.field == named


def test_the_bodies_take_the_fx_settings() -> None:
    created = CreateMerchant.model_validate({"name": "Shop"})
    assert (created.currency_settlement, created.fx_markup_bps, created.fx_no_rate) == (
        {},
        0,
        "in_currency",
    )
    update = UpdateMerchant.model_validate(
        {"currency_settlement": {"EUR": "convert"}, "fx_no_rate": "refuse"}
    )
    assert update.changes() == {"currency_settlement": {"EUR": "convert"}, "fx_no_rate": "refuse"}
    with pytest.raises(ValidationError) as refused:
        UpdateMerchant.model_validate({"currency_settlement": {"EUR": "maybe"}})
    assert refused.value.errors()[0]["loc"][:2] == ("currency_settlement", "EUR")


def test_the_refusal_names_the_currency_field() -> None:
    problem = rate_unavailable("EUR", "TRY")
    assert (problem.status, problem.slug) == (422, "fx-rate-unavailable")
    assert [e.field for e in problem.errors] == ["currency"]
