"""Runs one service process: HTTP (API and ops endpoints) plus supervised background loops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import asyncpg
import uvicorn
from aiokafka.errors import KafkaError
from fastapi import FastAPI

log = logging.getLogger(__name__)

Loop = Callable[[], Awaitable[None]]
Closer = Callable[[], Awaitable[None]]
T = TypeVar("T")

# What an unreachable (or still starting) database or broker raises at start-up.
STARTUP_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, timed out (TimeoutError is one)
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,  # "the database system is starting up"
    asyncpg.exceptions.InterfaceError,
    KafkaError,  # unable to bootstrap, no controller yet, ...
)


async def with_startup_retry(
    what: str,
    step: Callable[[], Awaitable[T]],
    *,
    timeout_s: float,
    first_delay_s: float = 0.5,
    max_delay_s: float = 5.0,
) -> T:
    """Runs a start-up step until the infrastructure it needs answers, with a growing delay,
    for at most `timeout_s`; then the last error propagates and the process exits. Services
    started together with (or restarted during an outage of) PostgreSQL or Kafka wait instead
    of dying. `step` builds its own clients on every attempt."""
    deadline = time.monotonic() + timeout_s
    delay = first_delay_s
    attempt = 0
    while True:
        attempt += 1
        try:
            return await step()
        except STARTUP_ERRORS as exc:
            if time.monotonic() + delay > deadline:
                log.error("%s still not reachable after %d attempts; giving up", what, attempt)
                raise
            log.warning(
                "%s not reachable (%s: %s); attempt %d, retrying in %.1fs",
                what,
                type(exc).__name__,
                str(exc)[:200],
                attempt,
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(max_delay_s, delay * 2)


@dataclass
class Runtime:
    name: str
    app: FastAPI
    host: str
    port: int
    loops: dict[str, Loop] = field(default_factory=dict)
    stoppers: list[Callable[[], None]] = field(default_factory=list)
    closers: list[Closer] = field(default_factory=list)

    def add_loop(self, name: str, loop: Loop, stop: Callable[[], None] | None = None) -> None:
        self.loops[name] = loop
        if stop is not None:
            self.stoppers.append(stop)

    def on_close(self, closer: Closer) -> None:
        self.closers.append(closer)

    def add_forever(self, name: str, loop: Loop) -> None:
        """A loop around a run-forever coroutine, cancelled when the runtime stops."""
        stop = asyncio.Event()

        async def run() -> None:
            task = asyncio.ensure_future(loop())
            stopping = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pending in (task, stopping):
                    pending.cancel()
                await asyncio.gather(task, stopping, return_exceptions=True)
            failure = task.exception() if task.done() and not task.cancelled() else None
            if failure is not None:
                raise failure  # supervised() logs it and restarts the loop

        self.add_loop(name, run, stop.set)


async def supervised(name: str, loop: Loop, max_backoff_s: float = 10.0) -> None:
    """Restart a loop that crashed (broker restart, lost connection) instead of dying silently."""
    backoff = 0.5
    while True:
        try:
            await loop()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s crashed; restarting in %.1fs", name, backoff)
            await asyncio.sleep(backoff)
            backoff = min(max_backoff_s, backoff * 2)


def _reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening socket that several worker processes bind at once (the kernel spreads
    new connections over them)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


async def serve(runtime: Runtime, *, reuse_port: bool = False) -> None:
    config = uvicorn.Config(
        runtime.app, host=runtime.host, port=runtime.port, log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    sockets = [_reuse_port_socket(runtime.host, runtime.port)] if reuse_port else None
    tasks = [
        asyncio.create_task(supervised(name, loop), name=name)
        for name, loop in runtime.loops.items()
    ]
    log.info("%s listening on http://%s:%d", runtime.name, runtime.host, runtime.port)
    try:
        await server.serve(sockets=sockets)
    finally:
        for stop in runtime.stoppers:
            stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=10)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for closer in reversed(runtime.closers):
            with contextlib.suppress(Exception):
                await closer()
        log.info("%s stopped", runtime.name)
