"""The clearing file's parts and totals (domain/clearing.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from authorization.domain.clearing import clearing_file, day_bounds
from sanalpos_common.schemas.events import ClearingKind, ClearingLine

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _line(kind: ClearingKind, amount: int, minute: int) -> ClearingLine:
    return ClearingLine(
        kind=kind,
        payment_id=uuid.uuid4(),
        refund_id=uuid.uuid4() if kind is ClearingKind.REFUND else None,
        amount=amount,
        occurred_at=AT + timedelta(minutes=minute),
    )


def test_long_days_come_in_parts_each_with_the_totals_of_the_whole_file() -> None:
    lines = [_line(ClearingKind.CAPTURE, 100 + i, i) for i in range(5)]
    lines += [_line(ClearingKind.REFUND, 30, 10), _line(ClearingKind.VOID, 101, 11)]
    parts = clearing_file("m1", "TRY", date(2026, 3, 2), 3, lines[::-1], AT, lines_per_part=3)
    assert [(p.part, p.part_count, len(p.lines)) for p in parts] == [
        (1, 3, 3),
        (2, 3, 3),
        (3, 3, 1),
    ]
    assert [line for p in parts for line in p.lines] == lines  # in time order
    for p in parts:
        assert (p.capture_count, p.capture_amount) == (5, 510)
        assert (p.refund_count, p.refund_amount, p.void_count, p.void_amount) == (1, 30, 1, 101)
        assert p.version == 3


def test_an_empty_day_is_one_empty_part() -> None:
    (only,) = clearing_file("m1", "TRY", date(2026, 3, 2), 1, [], AT)
    assert (only.part, only.part_count, only.lines, only.capture_count) == (1, 1, (), 0)


def test_the_day_is_the_calendar_day_of_the_clearing_time_zone() -> None:
    start, end = day_bounds(date(2026, 3, 2), "Europe/Istanbul")
    assert start == datetime(2026, 3, 1, 21, 0, tzinfo=UTC)
    assert end - start == timedelta(days=1)
