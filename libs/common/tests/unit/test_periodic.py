"""The loop under the services' periodic jobs: a pass, a wait, ready while passes come."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sanalpos_common.periodic import PeriodicJob


@dataclass
class Counting(PeriodicJob):
    name: str
    interval_s: float = 0.01
    passes: int = 0

    async def run_once(self) -> int:
        self.passes += 1
        if self.passes == 3:
            self.stop()
        return self.passes


async def test_passes_repeat_until_stopped_and_readiness_follows_them() -> None:
    job = Counting("job")
    assert await job.readiness() == (True, "no pass yet")
    await asyncio.wait_for(job.run(), timeout=5)
    assert job.passes == 3
    ready, detail = await job.readiness()
    assert ready and detail.startswith("last pass")


async def test_a_stalled_job_is_not_ready() -> None:
    job = Counting("job", interval_s=60)
    job._last_pass = job._started - 1_000
    assert (await job.readiness())[0] is False
