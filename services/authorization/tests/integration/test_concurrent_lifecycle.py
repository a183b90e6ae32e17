"""Commands and the expiry scan racing on the same payments and the same card account."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter

from authorization.adapters.authorization_repository import AuthorizationRepository
from authorization.adapters.repositories import PostgresRepositories
from authorization.service_layer.expiry import expire_preauth
from sanalpos_common import topics
from sanalpos_common.db import UnitOfWork
from sanalpos_common.testing import wait_for

from .conftest import PREAUTH_EXPIRY, Clock, Lifecycle


async def test_a_capture_and_an_expiry_racing_never_both_happen(lifecycle: Lifecycle) -> None:
    pan = await lifecycle.card()
    payments = [await lifecycle.pay(pan, 2_000) for _ in range(30)]
    # The capture side still sees the pre-authorizations as valid; the scan sees them as due.
    capturer = Lifecycle(lifecycle.pool, Clock(lifecycle.clock()), lifecycle.issuer)
    lifecycle.clock.advance(PREAUTH_EXPIRY)
    scan = lifecycle.expiry(batch_size=4)

    async def scan_repeatedly() -> None:
        for _ in range(10):
            await scan.expire_due()
            await asyncio.sleep(0)

    captures = [capturer.capture(p, 1_500) for p in payments]
    await asyncio.gather(scan_repeatedly(), *captures[:15], scan_repeatedly(), *captures[15:])
    await scan.expire_due()  # whatever no capture took is due now

    outcomes: Counter[str] = Counter()
    for payment in payments:
        events = await lifecycle.events(payment)
        emitted = [t for t, _ in events]
        state = await lifecycle.state(payment)
        if topics.PAYMENT_CAPTURED in emitted:
            assert emitted == [topics.PAYMENT_AUTHORIZED, topics.PAYMENT_CAPTURED]
            assert (state["status"], state["hold_status"]) == ("captured", "captured")
            outcomes["captured"] += 1
        else:
            # The capture waited for the scan's row lock, then found the payment expired.
            assert emitted == [
                topics.PAYMENT_AUTHORIZED,
                topics.PAYMENT_EXPIRED,
                topics.PAYMENT_OPERATION_FAILED,
            ]
            assert events[-1][1]["reason"] == "cannot capture a payment that is expired"
            assert (state["status"], state["hold_status"]) == ("expired", "released")
            outcomes["expired"] += 1
    assert sum(outcomes.values()) == 30
    await lifecycle.assert_balanced(pan)
    assert await lifecycle.available(pan) == 100_000 - 1_500 * outcomes["captured"]


async def test_concurrent_captures_voids_and_refunds_keep_the_card_balanced(
    lifecycle: Lifecycle,
) -> None:
    rng = random.Random(20261127)
    pan = await lifecycle.card()
    sales = [await lifecycle.pay(pan, rng.randint(1_000, 5_000), capture=True) for _ in range(8)]
    preauths = [await lifecycle.pay(pan, rng.randint(1_000, 5_000)) for _ in range(8)]
    amounts = {p: (await lifecycle.state(p))["amount"] for p in [*sales, *preauths]}
    refund_ids = [uuid.uuid4() for _ in range(4)]  # shared: some sales repeat another's id

    commands = []
    for payment in preauths:  # capture and void race on every pre-authorization
        commands.append(lifecycle.capture(payment, rng.randint(1, amounts[payment])))
        commands.append(lifecycle.void(payment))
    for payment in sales:  # refunds (some over the total, some repeated) race a void
        for _ in range(3):
            commands.append(lifecycle.refund(payment, rng.randint(1, amounts[payment] // 2)))
        commands.append(lifecycle.refund(payment, amounts[payment], rng.choice(refund_ids)))
        commands.append(lifecycle.void(payment))
    rng.shuffle(commands)
    await asyncio.gather(*commands)

    await lifecycle.assert_balanced(pan)
    for payment in preauths:  # whichever came first, the other one fits what it found
        events = await lifecycle.events(payment)
        emitted = [t for t, _ in events]
        if emitted[1] == topics.PAYMENT_CAPTURED:
            assert emitted == [*emitted[:2], topics.PAYMENT_VOIDED]
            assert events[2][1]["after_capture"] is True
            assert events[2][1]["amount"] == events[1][1]["amount"]
        else:
            assert emitted[1:] == [topics.PAYMENT_VOIDED, topics.PAYMENT_OPERATION_FAILED]
            assert events[1][1]["after_capture"] is False
            assert events[1][1]["amount"] == amounts[payment]
        assert (await lifecycle.state(payment))["status"] == "voided"
    for payment in sales:
        state = await lifecycle.state(payment)
        events = await lifecycle.events(payment)
        refunded = sum(e["amount"] for t, e in events if t == topics.PAYMENT_REFUNDED)
        assert refunded == state["refunded_amount"] == state["hold_refunded"]
        assert refunded <= amounts[payment]
        recorded = await lifecycle.pool.fetchval(
            "SELECT coalesce(sum(amount), 0) FROM refunds WHERE payment_id = $1", payment
        )
        assert recorded == refunded
        if topics.PAYMENT_VOIDED in [t for t, _ in events]:
            assert refunded == 0 and state["status"] == "voided"
    # Only the holds still captured count against the limit, and exactly with what is left.
    outstanding = 0
    for payment in sales:
        state = await lifecycle.state(payment)
        if state["status"] != "voided":
            outstanding += state["captured_amount"] - state["refunded_amount"]
    assert await lifecycle.available(pan) == 100_000 - outstanding


async def waiting_on_a_lock(lifecycle: Lifecycle) -> bool:
    waiting = await lifecycle.pool.fetchval(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    return bool(waiting)


async def test_a_capture_waits_for_an_expiry_holding_the_row_and_then_fails(
    lifecycle: Lifecycle,
) -> None:
    pan = await lifecycle.card()
    payment = await lifecycle.pay(pan, 3_000)
    capturer = Lifecycle(lifecycle.pool, Clock(lifecycle.clock()), lifecycle.issuer)
    lifecycle.clock.advance(PREAUTH_EXPIRY)

    async with lifecycle.pool.acquire() as conn, conn.transaction():
        due = await AuthorizationRepository(conn).lock_due_preauths(lifecycle.clock(), 500)
        assert payment in {d.payment_id for d in due}
        capture = asyncio.create_task(capturer.capture(payment, 3_000))
        await wait_for(lambda: waiting_on_a_lock(lifecycle))  # the capture is blocked
        assert not capture.done()
        uow = UnitOfWork(conn, producer="authorization")
        for state in due:
            await expire_preauth(
                uow, lifecycle.issuer, PostgresRepositories(), state, lifecycle.clock()
            )
    await capture

    assert await lifecycle.topics_of(payment) == [
        topics.PAYMENT_AUTHORIZED,
        topics.PAYMENT_EXPIRED,
        topics.PAYMENT_OPERATION_FAILED,
    ]
    await lifecycle.assert_balanced(pan)


async def test_the_scan_skips_a_pre_authorization_a_capture_holds(lifecycle: Lifecycle) -> None:
    pan = await lifecycle.card()
    payment = await lifecycle.pay(pan, 3_000)
    lifecycle.clock.advance(PREAUTH_EXPIRY)

    async with lifecycle.pool.acquire() as conn, conn.transaction():
        assert await AuthorizationRepository(conn).lock(payment) is not None  # capture under way
        await lifecycle.expiry().expire_due()
        assert (await lifecycle.state(payment))["status"] == "authorized"
        await lifecycle.issuer.capture(conn, payment, 3_000)
        await AuthorizationRepository(conn).mark_captured(payment, 3_000)
    await lifecycle.expiry().expire_due()

    state = await lifecycle.state(payment)
    assert (state["status"], state["hold_status"]) == ("captured", "captured")
    assert topics.PAYMENT_EXPIRED not in await lifecycle.topics_of(payment)
    await lifecycle.assert_balanced(pan)
