"""The waiter registry, `Prefer: wait` parsing and the wait loop (no database)."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace
from typing import Any

import pytest

from intake.entrypoints.sync_answer import sync_answer
from intake.service_layer.outcome_waiters import (
    OutcomeWaiters,
    format_wait,
    reached_outcome,
    requested_wait,
    wait_for_outcome,
)


@pytest.mark.parametrize(
    ("prefer", "expected"),
    [
        (None, None),
        ("", None),
        ("wait=5", 5.0),
        ("WAIT = 3", 3.0),
        ('wait="7"', 7.0),
        ("handling=lenient, wait=2", 2.0),
        ("wait=2.5; foo=bar", 2.5),
        ("wait=60", 10.0),  # capped at the configured maximum
        ("wait=0", None),
        ("wait=-1", None),
        ("wait=soon", None),
        ("respond-async, wait=5", None),
        ("return=minimal", None),
    ],
)
def test_requested_wait_follows_rfc_7240(prefer: str | None, expected: float | None) -> None:
    assert requested_wait(prefer, 10.0) == expected


def test_format_wait_drops_a_zero_fraction() -> None:
    assert format_wait(5.0) == "5"
    assert format_wait(2.5) == "2.5"


@pytest.mark.parametrize(
    ("status", "capture", "reached"),
    [
        ("pending", True, False),
        ("pending", False, False),
        ("authorized", True, False),  # a sale goes on to captured
        ("authorized", False, True),
        ("captured", True, True),
        ("declined", True, True),
        ("requires_action", False, True),
        ("voided", False, True),
    ],
)
def test_reached_outcome(status: str, capture: bool, reached: bool) -> None:
    assert reached_outcome({"status": status, "capture": capture}) is reached


async def test_wake_sets_only_the_waiters_of_that_payment() -> None:
    waiters = OutcomeWaiters()
    one, other = uuid.uuid4(), uuid.uuid4()
    with (
        waiters.register(one) as first,
        waiters.register(one) as second,
        waiters.register(other) as third,
    ):
        assert len(waiters) == 3
        assert waiters.wake(one) == 2
        assert first.is_set() and second.is_set() and not third.is_set()
    assert len(waiters) == 0
    assert waiters.wake(one) == 0


async def test_wake_all_wakes_everyone() -> None:
    waiters = OutcomeWaiters()
    with waiters.register(uuid.uuid4()) as a, waiters.register(uuid.uuid4()) as b:
        assert waiters.wake_all() == 2
        assert a.is_set() and b.is_set()


class Rows:
    """A payment row whose status the test moves; counts reads."""

    def __init__(self, status: str, capture: bool = True) -> None:
        self.row: dict[str, Any] = {"status": status, "capture": capture}
        self.reads = 0

    async def read(self) -> dict[str, Any]:
        self.reads += 1
        return dict(self.row)


async def test_an_outcome_already_committed_is_seen_without_a_wake_up() -> None:
    rows = Rows("declined")
    row, reached = await wait_for_outcome(OutcomeWaiters(), uuid.uuid4(), 5, rows.read)
    assert reached and row["status"] == "declined"
    assert rows.reads == 1


async def test_a_wake_up_reads_the_row_once_and_answers() -> None:
    waiters, payment_id, rows = OutcomeWaiters(), uuid.uuid4(), Rows("pending")
    waiting = asyncio.create_task(wait_for_outcome(waiters, payment_id, 5, rows.read))
    while rows.reads == 0:
        await asyncio.sleep(0)
    rows.row["status"] = "captured"
    assert waiters.wake(payment_id) == 1
    row, reached = await waiting
    assert reached and row["status"] == "captured"
    assert rows.reads == 2
    assert len(waiters) == 0


async def test_a_wake_up_without_an_outcome_keeps_waiting() -> None:
    waiters, payment_id, rows = OutcomeWaiters(), uuid.uuid4(), Rows("pending")
    waiting = asyncio.create_task(wait_for_outcome(waiters, payment_id, 5, rows.read))
    while rows.reads == 0:
        await asyncio.sleep(0)
    rows.row["status"] = "authorized"  # a sale: its capture is still to come
    waiters.wake(payment_id)
    while rows.reads < 2:
        await asyncio.sleep(0)
    assert not waiting.done()
    rows.row["status"] = "captured"
    waiters.wake(payment_id)
    row, reached = await waiting
    assert reached and row["status"] == "captured"
    assert rows.reads == 3


async def test_no_outcome_in_time_returns_the_current_row() -> None:
    waiters, rows = OutcomeWaiters(), Rows("pending")
    row, reached = await wait_for_outcome(waiters, uuid.uuid4(), 0.05, rows.read)
    assert not reached and row["status"] == "pending"
    assert rows.reads == 1
    assert len(waiters) == 0


async def test_while_the_listener_is_down_nothing_waits() -> None:
    """Nobody could wake the request: it gets the usual 202 at once, no Preference-Applied."""
    container: Any = SimpleNamespace(waiters=OutcomeWaiters(listening=False), max_wait_s=10.0)
    body = {"id": str(uuid.uuid4()), "status": "pending"}
    answer = await sync_answer(container, "mer_a", 202, body, "wait=5", None)
    assert answer == (202, body, {})


async def test_without_waiters_prefer_is_ignored() -> None:
    container: Any = SimpleNamespace(waiters=None, max_wait_s=10.0)
    body = {"id": str(uuid.uuid4()), "status": "pending"}
    assert await sync_answer(container, "mer_a", 202, body, "wait=5", None) == (202, body, {})
