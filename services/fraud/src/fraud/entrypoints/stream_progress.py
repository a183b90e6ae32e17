"""What the faust stream has done so far: read by readiness, the stall watchdog and logs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass
class StreamProgress:
    started_monotonic: float | None = None
    ready_monotonic: float | None = None
    last_processed_monotonic: float | None = None
    last_event_time: datetime | None = None
    processed: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    retries: int = 0
    batches: int = 0
    in_flight_since: float | None = None
