"""End-of-day batches ("gün sonu"): which business day a moment belongs to for a merchant, and
when that day's batch closes. Shared by intake (may a capture still be voided?) and settlement
(which batch does a capture go into, and when is it closed?). Pure: no I/O, no clock."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DEFAULT_TIME_ZONE = "Europe/Istanbul"
DEFAULT_CUTOFF = time(23, 59)


def batch_date(at: datetime, time_zone: str, cutoff: time) -> date:
    """A moment at or after the local cut-off belongs to the next day's batch."""
    if at.tzinfo is None:
        raise ValueError("aware datetime required")
    local = at.astimezone(ZoneInfo(time_zone))
    day = local.date()
    return day + timedelta(days=1) if local.time() >= cutoff else day


def batch_closes_at(day: date, time_zone: str, cutoff: time) -> datetime:
    """The instant the batch of `day` closes: that day's cut-off, local time."""
    return datetime.combine(day, cutoff, tzinfo=ZoneInfo(time_zone))


def closes_at(at: datetime, time_zone: str, cutoff: time) -> datetime:
    """When the batch that a capture made at `at` goes into closes."""
    return batch_closes_at(batch_date(at, time_zone, cutoff), time_zone, cutoff)
