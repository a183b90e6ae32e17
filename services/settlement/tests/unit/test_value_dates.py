from datetime import date

import pytest

from settlement.domain.value_dates import BusinessCalendar, UnknownCalendar, value_date

TR = BusinessCalendar("TR")


def test_next_business_day_skips_the_weekend() -> None:
    friday = date(2026, 6, 5)
    assert value_date(friday, 1, TR) == date(2026, 6, 8)
    assert value_date(date(2026, 6, 1), 2, TR) == date(2026, 6, 3)


def test_a_public_holiday_moves_the_value_date() -> None:
    # 29 October, Republic Day, is a Thursday in 2026
    assert value_date(date(2026, 10, 28), 1, TR) == date(2026, 10, 30)
    assert value_date(date(2026, 10, 28), 2, TR) == date(2026, 11, 2)


def test_a_religious_holiday_of_several_days_is_skipped_whole() -> None:
    # Kurban Bayrami 27-30 May 2026 (Wednesday to Saturday); 19 May is a holiday too
    assert value_date(date(2026, 5, 26), 1, TR) == date(2026, 6, 1)


def test_the_half_day_before_a_holiday_is_a_business_day() -> None:
    # 26 May 2026 (arife) is half a day at the banks: payouts go out in the morning
    assert TR.is_business_day(date(2026, 5, 26))
    assert value_date(date(2026, 5, 25), 1, TR) == date(2026, 5, 26)


def test_zero_days_means_the_batch_date_or_the_next_business_day() -> None:
    assert value_date(date(2026, 6, 3), 0, TR) == date(2026, 6, 3)
    assert value_date(date(2026, 6, 6), 0, TR) == date(2026, 6, 8)


def test_another_country_has_its_own_holidays() -> None:
    germany = BusinessCalendar("DE")
    assert value_date(date(2026, 10, 28), 1, germany) == date(2026, 10, 29)
    assert value_date(date(2026, 10, 2), 1, germany) == date(2026, 10, 5)  # 3 Oct is a Saturday
    assert value_date(date(2026, 12, 24), 1, germany) == date(2026, 12, 28)


def test_a_decreed_extra_day_off_is_skipped() -> None:
    bridged = BusinessCalendar("TR", frozenset({date(2026, 10, 30)}))
    assert value_date(date(2026, 10, 28), 1, bridged) == date(2026, 11, 2)


def test_limits() -> None:
    with pytest.raises(ValueError, match="0 to 30"):
        value_date(date(2026, 6, 1), -1, TR)
    with pytest.raises(ValueError, match="0 to 30"):
        value_date(date(2026, 6, 1), 31, TR)
    with pytest.raises(UnknownCalendar, match="XX"):
        BusinessCalendar("XX")
