"""POSTs one signed webhook with the service's shared httpx client.

The client connects only to public addresses: its network backend resolves each host name
itself, refuses the connection when any address it resolves to is private, loopback,
link-local, CGNAT, multicast, reserved or unspecified (`sanalpos_common.net`), and then
connects to the address it vetted, so a name that resolves differently a moment later (DNS
rebinding) cannot steer the connection. TLS still verifies the URL's host name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
import typing
from dataclasses import dataclass

import httpcore
import httpx

from sanalpos_common.net import address_refusal
from sanalpos_common.observability import redact

USER_AGENT = "sanalpos-webhooks/1"


@dataclass(frozen=True)
class SendResult:
    status_code: int | None
    error: str | None
    duration_ms: int


class BlockedAddress(httpcore.ConnectError):
    """The endpoint's host is, or resolves to, an address webhooks may not reach."""


Resolver = typing.Callable[[str, int], typing.Awaitable[list[str]]]


async def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to for a TCP connection, in the resolver's order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class PublicOnlyBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to vetted public addresses."""

    def __init__(
        self,
        *,
        allow_loopback: bool = False,
        resolver: Resolver = resolve,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.allow_loopback = allow_loopback
        self.resolver = resolver
        self.inner = inner or httpcore.AnyIOBackend()

    async def vetted(self, host: str, port: int) -> list[str]:
        """The addresses to try; raises BlockedAddress when any of them is refused."""
        try:
            addresses = await self.resolver(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"{host} resolves to no address")
        for text in addresses:
            refusal = address_refusal(
                ipaddress.ip_address(text.split("%", 1)[0]), allow_loopback=self.allow_loopback
            )
            if refusal is not None:
                raise BlockedAddress(f"refused to connect to {host}: {refusal}")
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.vetted(host, port)
        last: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedAddress("webhooks are never sent over unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class PublicOnlyTransport(httpx.AsyncHTTPTransport):
    def __init__(
        self, *, limits: httpx.Limits, backend: PublicOnlyBackend, verify: bool = True
    ) -> None:
        super().__init__(limits=limits, verify=verify, trust_env=False)
        # httpx takes no network backend: the pool it built is replaced by one with ours.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


def build_client(
    timeout_s: float,
    max_connections: int,
    *,
    allow_loopback: bool = False,
    resolver: Resolver = resolve,
) -> httpx.AsyncClient:
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    backend = PublicOnlyBackend(allow_loopback=allow_loopback, resolver=resolver)
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s),
        limits=limits,
        transport=PublicOnlyTransport(limits=limits, backend=backend),
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
