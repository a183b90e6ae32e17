"""Where rates come from: a provider gives quotes of one source. Rate files are read from
local paths (the samples shipped in settlement/rate_samples, or files an operator drops in):
nothing is fetched from a network at run time. Rates set by hand come in through the admin
API instead (entrypoints/fx_admin.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from settlement.domain.fx import Quote, RateSource, parse_rate_file

SAMPLES = Path(__file__).resolve().parents[1] / "rate_samples"
SAMPLE_FILES = {
    RateSource.TCMB: SAMPLES / "today.xml",
    RateSource.ECB: SAMPLES / "eurofxref-daily.xml",
}


class RateProvider(Protocol):
    source: RateSource

    async def quotes(self) -> list[Quote]: ...


@dataclass(frozen=True)
class FileRateProvider:
    """A TCMB `today.xml` or ECB `eurofxref-daily.xml` on the local disk."""

    source: RateSource
    path: Path

    async def quotes(self) -> list[Quote]:
        raw = await asyncio.to_thread(self.path.read_bytes)
        return parse_rate_file(self.source, raw)
