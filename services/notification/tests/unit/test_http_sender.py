"""The webhook HTTP client reaches public addresses only, judged on what each host name
resolves to at connect time, and connects to the address it vetted (no DNS rebinding).

A real HTTP server on 127.0.0.1 stands in for an internal service; a fake resolver plays a
name that points there."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from notification.adapters.http_sender import HttpSender, build_client


class _Recorder(BaseHTTPRequestHandler):
    hosts: list[str] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        type(self).hosts.append(self.headers.get("host", ""))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def internal_service() -> Iterator[tuple[int, list[str]]]:
    hosts: list[str] = []
    handler = type("Recorder", (_Recorder,), {"hosts": hosts})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1]), hosts
    server.shutdown()


def resolver_of(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    calls: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        await asyncio.sleep(0)
        return table[host]

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


async def send(url: str, **client_options: object) -> tuple[int | None, str | None]:
    client = build_client(2.0, 4, **client_options)  # type: ignore[arg-type,unused-ignore]
    try:
        result = await HttpSender(client).send(url, {"content-type": "application/json"}, "{}")
    finally:
        await client.aclose()
    return result.status_code, result.error


async def test_loopback_target_is_refused_by_default(
    internal_service: tuple[int, list[str]],
) -> None:
    port, hosts = internal_service
    status, error = await send(f"http://127.0.0.1:{port}/hooks")
    assert status is None and error is not None and "loopback" in error
    assert hosts == []


async def test_loopback_target_is_reached_with_the_development_switch(
    internal_service: tuple[int, list[str]],
) -> None:
    port, hosts = internal_service
    assert await send(f"http://127.0.0.1:{port}/hooks", allow_loopback=True) == (204, None)
    assert len(hosts) == 1


@pytest.mark.parametrize(
    "addresses",
    [
        ["127.0.0.1"],
        ["10.0.0.7"],
        ["169.254.169.254"],
        ["100.64.1.1"],
        ["::ffff:127.0.0.1"],
        ["93.184.216.34", "192.168.1.1"],  # one private answer among public ones is enough
    ],
)
async def test_names_resolving_to_internal_addresses_are_refused(
    internal_service: tuple[int, list[str]], addresses: list[str]
) -> None:
    port, hosts = internal_service
    resolver = resolver_of({"hooks.shop.example": addresses})
    status, error = await send(f"http://hooks.shop.example:{port}/h", resolver=resolver)
    assert status is None and error is not None and "refused" in error
    assert hosts == []


async def test_the_connection_goes_to_the_vetted_address(
    internal_service: tuple[int, list[str]],
) -> None:
    """The name is resolved once, by the vetting backend, and that address is dialled:
    nothing resolves it again between the check and the connect."""
    port, hosts = internal_service
    resolver = resolver_of({"hooks.shop.example": ["127.0.0.1"]})
    status, error = await send(
        f"http://hooks.shop.example:{port}/h", resolver=resolver, allow_loopback=True
    )
    assert (status, error) == (204, None)
    assert hosts == [f"hooks.shop.example:{port}"]
    assert resolver.calls == ["hooks.shop.example"]


async def test_unresolvable_names_fail_as_connection_errors() -> None:
    async def nothing(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    status, error = await send("https://nowhere.shop.example/h", resolver=nothing)
    assert status is None and error is not None and "cannot resolve" in error
