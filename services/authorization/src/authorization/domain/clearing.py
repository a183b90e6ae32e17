"""The daily clearing file: one merchant's executed operations of one currency and day, in
parts small enough for a Kafka message. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sanalpos_common.schemas.events import ClearingKind, ClearingLine, ClearingReported

LINES_PER_PART = 2000
"""About 300 kB of JSON per message, well under Kafka's default 1 MB limit."""


def day_bounds(day: date, time_zone: str) -> tuple[datetime, datetime]:
    """The clearing day [start, end) in the clearing time zone, as aware datetimes."""
    zone = ZoneInfo(time_zone)
    start = datetime.combine(day, time(0), zone)
    return start, datetime.combine(day + timedelta(days=1), time(0), zone)


def clearing_file(
    merchant_id: str,
    currency: str,
    day: date,
    version: int,
    lines: Sequence[ClearingLine],
    generated_at: datetime,
    lines_per_part: int = LINES_PER_PART,
) -> list[ClearingReported]:
    """The file's messages, totals on each; at least one part, empty when nothing happened."""
    ordered = sorted(lines, key=lambda line: (line.occurred_at, str(line.payment_id)))

    def total(kind: ClearingKind) -> tuple[int, int]:
        of_kind = [line.amount for line in ordered if line.kind is kind]
        return len(of_kind), sum(of_kind)

    captures, refunds, voids = (total(k) for k in ClearingKind)
    chunks = [
        tuple(ordered[i : i + lines_per_part]) for i in range(0, len(ordered), lines_per_part)
    ] or [()]
    return [
        ClearingReported(
            merchant_id=merchant_id,
            currency=currency,
            clearing_date=day,
            version=version,
            part=number,
            part_count=len(chunks),
            capture_count=captures[0],
            capture_amount=captures[1],
            refund_count=refunds[0],
            refund_amount=refunds[1],
            void_count=voids[0],
            void_amount=voids[1],
            lines=chunk,
            generated_at=generated_at,
        )
        for number, chunk in enumerate(chunks, start=1)
    ]
