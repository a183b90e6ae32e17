from datetime import UTC, date, datetime, time

import pytest

from sanalpos_common.business_day import batch_date, closes_at
from sanalpos_common.fees import fee_plan

IST = "Europe/Istanbul"  # UTC+3 all year


def test_a_capture_before_the_cutoff_is_in_todays_batch() -> None:
    at = datetime(2026, 11, 27, 20, 58, tzinfo=UTC)  # 23:58 local
    assert batch_date(at, IST, time(23, 59)) == date(2026, 11, 27)
    assert closes_at(at, IST, time(23, 59)) == datetime(2026, 11, 27, 20, 59, tzinfo=UTC)


def test_a_capture_at_or_after_the_cutoff_is_in_tomorrows_batch() -> None:
    at = datetime(2026, 11, 27, 20, 59, tzinfo=UTC)  # 23:59 local
    assert batch_date(at, IST, time(23, 59)) == date(2026, 11, 28)
    assert closes_at(at, IST, time(23, 59)) == datetime(2026, 11, 28, 20, 59, tzinfo=UTC)


def test_the_local_date_not_the_utc_date_decides() -> None:
    at = datetime(2026, 11, 27, 22, 30, tzinfo=UTC)  # 01:30 on the 28th in Istanbul
    assert batch_date(at, IST, time(18, 0)) == date(2026, 11, 28)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError):
        batch_date(datetime(2026, 11, 27, 12, 0), IST, time(23, 59))


def test_fee_plan_rates_grow_with_installments_and_respect_the_maximum() -> None:
    plan = fee_plan("standard")
    assert plan.rate_bps(1) == 179
    assert plan.rate_bps(3) == 299
    assert plan.fee(100_00, 3) == 299
    with pytest.raises(ValueError):
        fee_plan("single-payment").rate_bps(2)
