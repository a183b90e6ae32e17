"""The loop both senders share (webhooks over HTTP, shopper emails over SMTP): claim due rows
under a lease, send them concurrently, wake on NOTIFY or when the next row falls due.

No database transaction is open while a send is in flight: a claim is a short UPDATE that
moves the row's due time a lease ahead, and each subclass records the result in a second
short transaction fenced on the attempt number.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg

from sanalpos_common.db import keeps_session_state

log = logging.getLogger(__name__)


class LeasedStore(Protocol):
    pool: Any

    async def claim(self, limit: int, lease_s: float) -> Sequence[Any]: ...

    async def seconds_until_next_due(self) -> float | None: ...

    async def pending(self) -> int: ...


@dataclass(kw_only=True)
class LeasedWorker:
    concurrency: int = 8
    lease_s: float = 60.0
    idle_poll_s: float = 1.0
    min_wait_s: float = 0.02
    stall_after_s: float = 30.0
    drain_timeout_s: float = 5.0
    rng: random.Random = field(default_factory=random.Random)
    last_cycle_monotonic: float | None = None
    listener_pid: int | None = None
    """Backend pid of the LISTEN connection, for diagnostics."""
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    _in_flight: set[asyncio.Task[None]] = field(default_factory=set)
    _stopping: bool = False

    # What a subclass provides.
    label = "worker"
    channel = ""

    @property
    def leased(self) -> LeasedStore:
        raise NotImplementedError

    async def _deliver(self, item: Any) -> None:
        raise NotImplementedError

    def _task_name(self, item: Any) -> str:
        return f"{self.label}:{item.id}"

    async def _before_cycle(self) -> None:
        """Periodic chores run before each claim (inside the loop's error handling)."""

    def _in_flight_changed(self) -> None:
        """Called whenever a send starts or ends."""

    # The loop.
    def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()

    async def run(self) -> None:
        pool = self.leased.pool
        listener = await pool.acquire()
        keeps_session_state(listener)
        await listener.add_listener(self.channel, self._notified)
        listener.add_termination_listener(self._notified)
        self.listener_pid = listener.get_server_pid()
        try:
            while not self._stopping:
                if listener.is_closed():
                    # The database restarted: crash so the supervisor starts a fresh run with
                    # a new LISTEN connection, rather than silently falling back to polling.
                    raise ConnectionError("LISTEN connection lost")
                self.last_cycle_monotonic = time.monotonic()
                try:
                    await self._before_cycle()
                    claimed = await self.dispatch_due()
                    wait = await self._next_wait(claimed)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("%s database error: %s", self.label, type(exc).__name__)
                    wait = 1.0
                await self._sleep(wait)
            await self._drain()
        finally:
            self.listener_pid = None
            with contextlib.suppress(Exception):
                listener.remove_termination_listener(self._notified)
                await listener.remove_listener(self.channel, self._notified)
            await pool.release(listener)

    async def dispatch_due(self) -> int:
        """Claim what fits in the free concurrency and start sending it. Returns how many."""
        free = self.concurrency - len(self._in_flight)
        claimed = await self.leased.claim(free, self.lease_s)
        for item in claimed:
            task = asyncio.create_task(self._deliver(item), name=self._task_name(item))
            self._in_flight.add(task)
            task.add_done_callback(self._finished)
        self._in_flight_changed()
        return len(claimed)

    async def _next_wait(self, claimed: int) -> float:
        free = self.concurrency - len(self._in_flight)
        if claimed and free > 0:
            return 0.0  # claim again at once: more may be due than fitted in this round
        if free <= 0:
            return self.idle_poll_s  # woken as soon as a send finishes
        due_in = await self.leased.seconds_until_next_due()
        if due_in is None:
            return self.idle_poll_s
        # Due yet nothing claimed means another worker holds those rows for a moment:
        # never spin on them.
        return max(self.min_wait_s, min(due_in, self.idle_poll_s))

    def _notified(self, *_: object) -> None:
        self._wakeup.set()

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._in_flight_changed()
        self._wakeup.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("%s task failed: %r", self.label, task.exception())

    async def _sleep(self, seconds: float) -> None:
        if seconds > 0 and not self._wakeup.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=seconds)
        self._wakeup.clear()

    async def _drain(self) -> None:
        """On shutdown let in-flight sends finish (their leases cover any we abandon)."""
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=self.drain_timeout_s)
        for task in set(self._in_flight):
            task.cancel()

    async def _pending_now(self) -> int:
        return await self.leased.pending()

    async def readiness(self) -> tuple[bool, str]:
        last = self.last_cycle_monotonic
        if last is None:
            return False, f"{self.label} has not started"
        age = time.monotonic() - last
        pending = await self._pending_now()
        return (
            age < self.stall_after_s,
            f"last cycle {age:.1f}s ago, {len(self._in_flight)} in flight, {pending} pending",
        )
