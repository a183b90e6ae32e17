"""POSTs one signed webhook with the service's shared httpx client."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from sanalpos_common.observability import redact

USER_AGENT = "sanalpos-webhooks/1"


@dataclass(frozen=True)
class SendResult:
    status_code: int | None
    error: str | None
    duration_ms: int


def build_client(timeout_s: float, max_connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s),
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        # A redirect would send the signed body somewhere the merchant never registered.
        follow_redirects=False,
        headers={"user-agent": USER_AGENT},
        trust_env=False,
    )


class HttpSender:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def send(self, url: str, headers: dict[str, str], body: str) -> SendResult:
        started = time.perf_counter()
        try:
            # Streamed and never read: only the status matters, and a receiver cannot make
            # us buffer a large response body.
            async with self.client.stream(
                "POST", url, content=body.encode(), headers=headers
            ) as response:
                status = response.status_code
        except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
            return SendResult(None, _describe(exc), _elapsed_ms(started))
        return SendResult(status, None, _elapsed_ms(started))


def _describe(exc: Exception) -> str:
    detail = str(exc)
    text = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return redact(text)[:500]


def _elapsed_ms(started: float) -> int:
    return max(0, round(1000 * (time.perf_counter() - started)))
