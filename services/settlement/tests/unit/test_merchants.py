from datetime import UTC, date, datetime, time

import pytest

from sanalpos_common.schemas.events import MerchantUpdated
from settlement.domain.merchants import (
    InvalidMerchantProfile,
    MerchantProfile,
    profile_from_event,
)


def updated(**changes: object) -> MerchantUpdated:
    fields: dict[str, object] = {
        "merchant_id": "mer_x",
        "name": "X",
        "settlement_currency": "TRY",
        "time_zone": "America/New_York",
        "cutoff_time": time(18, 0),
        "fee_plan": "volume",
        "version": 3,
    }
    return MerchantUpdated.model_validate({**fields, **changes})


def test_unknown_merchant_gets_istanbul_2359_and_the_standard_plan() -> None:
    profile = MerchantProfile("mer_new")
    # 20:58 UTC = 23:58 in Istanbul (UTC+3): still today's batch
    assert profile.batch_date(datetime(2026, 6, 1, 20, 58, tzinfo=UTC)) == date(2026, 6, 1)
    # 20:59 UTC = 23:59 Istanbul: at the cut-off, tomorrow's batch
    assert profile.batch_date(datetime(2026, 6, 1, 20, 59, tzinfo=UTC)) == date(2026, 6, 2)
    assert profile.closes_at(date(2026, 6, 1)) == datetime(2026, 6, 1, 20, 59, tzinfo=UTC)
    assert profile.plan_for(6).name == "standard"


def test_batch_date_follows_the_merchants_zone_and_cutoff() -> None:
    profile = profile_from_event(updated())
    # New York is UTC-4 in June: 17:59 local is 21:59 UTC, 18:00 local is 22:00 UTC
    assert profile.batch_date(datetime(2026, 6, 1, 21, 59, tzinfo=UTC)) == date(2026, 6, 1)
    assert profile.batch_date(datetime(2026, 6, 1, 22, 0, tzinfo=UTC)) == date(2026, 6, 2)
    # already 2 June in UTC, still 1 June locally (21:00) but past the cut-off
    assert profile.batch_date(datetime(2026, 6, 2, 1, 0, tzinfo=UTC)) == date(2026, 6, 2)
    # 2 June 12:00 UTC = 08:00 local: 2 June's batch
    assert profile.batch_date(datetime(2026, 6, 2, 12, 0, tzinfo=UTC)) == date(2026, 6, 2)
    # 03:00 UTC on 1 June is 23:00 on 31 May in New York: after that day's cut-off
    assert profile.batch_date(datetime(2026, 6, 1, 3, 0, tzinfo=UTC)) == date(2026, 6, 1)
    assert profile.closes_at(date(2026, 6, 1)) == datetime(2026, 6, 1, 22, 0, tzinfo=UTC)


def test_plan_that_does_not_allow_the_installments_falls_back() -> None:
    profile = profile_from_event(updated(fee_plan="single-payment"))
    assert profile.plan_for(1).name == "single-payment"
    assert profile.plan_for(3).name == "standard"
    assert profile.plan_for(3, fallback="volume").name == "volume"


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"fee_plan": "platinum"}, "fee_plan"), ({"time_zone": "Mars/Olympus"}, "time_zone")],
)
def test_unknown_plan_or_zone_is_refused_with_the_field(
    changes: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidMerchantProfile, match=f"^{field}:"):
        profile_from_event(updated(**changes))
