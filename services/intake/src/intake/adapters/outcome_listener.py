"""One dedicated PostgreSQL connection per intake process that LISTENs on the outcome channel
and wakes the local waiters. Reconnects when the connection drops; after every (re)connect all
waiters re-read their row, since notifications sent while disconnected are gone."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

import asyncpg

from intake.service_layer.outcome_waiters import OUTCOME_CHANNEL, OutcomeWaiters
from sanalpos_common.service import Platform

log = logging.getLogger(__name__)
APPLICATION_NAME = "intake-outcome-listener"


class OutcomeListener:
    def __init__(
        self,
        dsn: str,
        waiters: OutcomeWaiters,
        *,
        reconnect_s: float = 1.0,
        keepalive_s: float = 5.0,
    ) -> None:
        self.dsn = dsn
        self.waiters = waiters
        self.reconnect_s = reconnect_s
        self.keepalive_s = keepalive_s
        self.connections = 0
        """How many times a LISTEN connection was established (tests watch reconnects)."""
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        self._stop.clear()
        while not self._stop.is_set():
            try:
                await self._listen_once()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("outcome listener connection lost: %s", type(exc).__name__)
            finally:
                self.waiters.listening = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.reconnect_s)

    async def readiness(self) -> tuple[bool, str]:
        listening = self.waiters.listening
        return (
            listening,
            f"{'listening' if listening else 'reconnecting'}, {len(self.waiters)} waiting",
        )

    async def _listen_once(self) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(
            self.dsn, timeout=10, server_settings={"application_name": APPLICATION_NAME}
        )
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        try:
            await conn.add_listener(OUTCOME_CHANNEL, self._notified)
            self.connections += 1
            self.waiters.listening = True
            woken = self.waiters.wake_all()
            log.info("listening for payment outcomes (%d waiters re-checked)", woken)
            await self._watch(conn, lost)
        finally:
            self.waiters.listening = False
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), timeout=2)

    async def _watch(self, conn: asyncpg.Connection, lost: asyncio.Event) -> None:
        """Returns when stopped; raises when the connection is gone. A periodic ping catches
        a connection that died without the socket telling us."""
        while not self._stop.is_set():
            stop = asyncio.ensure_future(self._stop.wait())
            dropped = asyncio.ensure_future(lost.wait())
            try:
                await asyncio.wait(
                    {stop, dropped}, timeout=self.keepalive_s, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                stop.cancel()
                dropped.cancel()
            if lost.is_set() or conn.is_closed():
                raise asyncpg.InterfaceError("LISTEN connection closed")
            if not self._stop.is_set():
                await conn.fetchval("SELECT 1", timeout=self.keepalive_s)

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        try:
            payment_id = uuid.UUID(str(payload))
        except ValueError:
            log.warning("ignored a malformed outcome notification")
            return
        self.waiters.wake(payment_id)


def start_outcome_listener(platform: Platform, dsn: str) -> OutcomeListener:
    """Registers the listener as a supervised loop of the service, and in its readiness."""
    listener = OutcomeListener(dsn, OutcomeWaiters())
    platform.runtime.add_loop("outcome-listener", listener.run, listener.stop)
    platform.health.add("outcome-listener", listener.readiness)
    return listener
