"""Value dates ("valör"): the business day a batch's money reaches the merchant. Pure.

Business days are Monday to Friday less the country's public holidays, from the maintained
`holidays` package (data only, no I/O). Half days before a religious holiday ("arife") are
business days: banks send payouts in the morning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property

import holidays

MAX_PAYOUT_DELAY_DAYS = 30
"""The longest payout plan a merchant may choose, in business days."""


class UnknownCalendar(ValueError):
    pass


@dataclass(frozen=True)
class BusinessCalendar:
    country: str = "TR"
    """ISO 3166-1 alpha-2 code whose public holidays are skipped."""
    extra_holidays: frozenset[date] = field(default_factory=frozenset)
    """Days off announced after the package's release (e.g. a bridge day by decree)."""

    def __post_init__(self) -> None:
        if self.country not in holidays.list_supported_countries():
            raise UnknownCalendar(f"no holiday calendar for country {self.country!r}")

    @cached_property
    def _holidays(self) -> holidays.HolidayBase:
        return holidays.country_holidays(self.country)

    def is_business_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self._holidays and day not in self.extra_holidays

    def add_business_days(self, day: date, count: int) -> date:
        """The count-th business day after `day`; 0 gives `day` itself when it is a business
        day, else the next one."""
        if count < 0:
            raise ValueError("a payout delay cannot be negative")
        current = day
        while not self.is_business_day(current):
            current += timedelta(days=1)
        for _ in range(count):
            current += timedelta(days=1)
            while not self.is_business_day(current):
                current += timedelta(days=1)
        return current


def value_date(batch_date: date, delay_days: int, calendar: BusinessCalendar) -> date:
    """Batch date plus the merchant's payout delay in business days (T+N)."""
    if not 0 <= delay_days <= MAX_PAYOUT_DELAY_DAYS:
        raise ValueError(f"payout delay must be 0 to {MAX_PAYOUT_DELAY_DAYS} business days")
    return calendar.add_business_days(batch_date, delay_days)
