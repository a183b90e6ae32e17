"""Fraud review holds and pre-authorization expiry against the real database."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sanalpos_common import topics
from sanalpos_common.schemas.events import FraudDecision, ReviewDecision, ReviewResolved

from .conftest import PREAUTH_EXPIRY, Lifecycle


async def review_row(lifecycle: Lifecycle, payment_id: uuid.UUID) -> dict[str, object]:
    row = await lifecycle.pool.fetchrow(
        "SELECT status, resolved_by, scored_payload::text AS payload FROM reviews "
        "WHERE payment_id = $1",
        payment_id,
    )
    assert row is not None
    return dict(row)


async def test_review_places_no_hold_and_asks_for_action(lifecycle: Lifecycle) -> None:
    pan = await lifecycle.card()
    scored = lifecycle.scored(pan, 20_000, decision=FraudDecision.REVIEW)
    await lifecycle.deliver(topics.PAYMENT_SCORED, scored)

    events = await lifecycle.events(scored.payment_id)
    assert [t for t, _ in events] == [topics.PAYMENT_ACTION_REQUIRED]
    assert events[0][1] == {
        "payment_id": str(scored.payment_id),
        "merchant_id": scored.merchant_id,
        "amount": 20_000,
        "currency": "TRY",
        "action": "review",
        "score": 75,
        "next_action_url": None,  # 3-D Secure's only
        "expires_at": None,
    }
    assert await lifecycle.available(pan) is None  # no issuer call: not even a balance row
    held = await review_row(lifecycle, scored.payment_id)
    assert held["status"] == "pending"
    assert scored.card.pan_ciphertext in str(held["payload"])
    assert scored.card.cvc_ciphertext is not None
    assert scored.card.cvc_ciphertext in str(held["payload"])

    await lifecycle.capture(scored.payment_id, 20_000)
    topic, failed = await lifecycle.last(scored.payment_id)
    assert topic == topics.PAYMENT_OPERATION_FAILED
    assert failed["reason"] == "payment is awaiting fraud review: nothing is authorized yet"

    await lifecycle.deliver(topics.PAYMENT_SCORED, scored)  # a second score changes nothing
    assert len(await lifecycle.events(scored.payment_id)) == 2


async def test_an_approved_review_authorizes_like_an_approved_score(lifecycle: Lifecycle) -> None:
    pan = await lifecycle.card()
    payment = await lifecycle.pay(pan, 20_000, capture=True, decision=FraudDecision.REVIEW)
    await lifecycle.resolve(payment, ReviewDecision.APPROVE)

    assert await lifecycle.topics_of(payment) == [
        topics.PAYMENT_ACTION_REQUIRED,
        topics.PAYMENT_AUTHORIZED,
        topics.PAYMENT_CAPTURED,
    ]
    state = await lifecycle.state(payment)
    assert (state["status"], state["hold_status"]) == ("captured", "captured")
    assert await lifecycle.available(pan) == 100_000 - 20_000
    resolved = await review_row(lifecycle, payment)
    assert resolved == {"status": "approved", "resolved_by": "analyst@example.com", "payload": None}

    await lifecycle.resolve(payment, ReviewDecision.DECLINE)  # already resolved: ignored
    assert len(await lifecycle.events(payment)) == 3
    await lifecycle.assert_balanced(pan)


async def test_an_approved_pre_authorization_review_can_then_be_captured(
    lifecycle: Lifecycle,
) -> None:
    pan = await lifecycle.card()
    payment = await lifecycle.pay(pan, 20_000, decision=FraudDecision.REVIEW)
    await lifecycle.resolve(payment, ReviewDecision.APPROVE)
    await lifecycle.capture(payment, 20_000)
    assert await lifecycle.topics_of(payment) == [
        topics.PAYMENT_ACTION_REQUIRED,
        topics.PAYMENT_AUTHORIZED,
        topics.PAYMENT_CAPTURED,
    ]


async def test_a_declined_review_is_a_fraud_decline_and_forgets_the_card(
    lifecycle: Lifecycle,
) -> None:
    pan = await lifecycle.card()
    payment = await lifecycle.pay(pan, 20_000, decision=FraudDecision.REVIEW)
    await lifecycle.resolve(payment, ReviewDecision.DECLINE)

    topic, declined = await lifecycle.last(payment)
    assert topic == topics.PAYMENT_DECLINED
    assert (declined["declined_by"], declined["response_code"], declined["reason"]) == (
        "fraud",
        "59",
        "declined in fraud review",
    )
    state = await lifecycle.state(payment)
    assert (state["status"], state["hold_status"]) == ("declined", None)
    assert (await review_row(lifecycle, payment))["payload"] is None
    assert await lifecycle.available(pan) is None  # the issuer was never asked


async def test_a_resolution_for_an_unknown_payment_is_ignored(lifecycle: Lifecycle) -> None:
    stranger = uuid.uuid4()
    await lifecycle.resolve(stranger, ReviewDecision.APPROVE)
    assert await lifecycle.events(stranger) == []


async def test_a_review_approved_after_the_security_code_expired_declines_n7(
    lifecycle: Lifecycle,
) -> None:
    pan = await lifecycle.card()
    payment = await lifecycle.pay(pan, 20_000, decision=FraudDecision.REVIEW)
    lifecycle.clock.advance(timedelta(hours=3))  # the code's hourly key is destroyed after 2 h
    await lifecycle.resolve(payment, ReviewDecision.APPROVE)

    topic, declined = await lifecycle.last(payment)
    assert topic == topics.PAYMENT_DECLINED
    assert (declined["response_code"], declined["declined_by"]) == ("N7", "issuer")
    assert (await review_row(lifecycle, payment))["payload"] is None


async def test_an_uncaptured_pre_authorization_expires_and_releases_its_hold(
    lifecycle: Lifecycle,
) -> None:
    pan = await lifecycle.card()
    payment = await lifecycle.pay(pan, 30_000)
    sale = await lifecycle.pay(pan, 10_000, capture=True)
    state = await lifecycle.state(payment)
    assert state["expires_at"] == lifecycle.clock() + PREAUTH_EXPIRY

    await lifecycle.expiry().expire_due()  # not due yet
    assert (await lifecycle.state(payment))["status"] == "authorized"

    lifecycle.clock.advance(PREAUTH_EXPIRY)
    await lifecycle.expiry().expire_due()

    state = await lifecycle.state(payment)
    assert (state["status"], state["hold_status"]) == ("expired", "released")
    assert (await lifecycle.state(sale))["status"] == "captured"
    assert await lifecycle.available(pan) == 100_000 - 10_000
    topic, expired = await lifecycle.last(payment)
    assert topic == topics.PAYMENT_EXPIRED
    assert expired["amount"] == 30_000
    assert expired["expired_at"].startswith(lifecycle.clock().isoformat()[:19])

    await lifecycle.expiry().expire_due()  # expired once only
    await lifecycle.capture(payment, 30_000)
    await lifecycle.void(payment)
    assert [(e["operation"], e["reason"]) for _, e in (await lifecycle.events(payment))[-2:]] == [
        ("capture", "cannot capture a payment that is expired"),
        ("void", "cannot void a payment that is expired"),
    ]
    expiries = [t for t in await lifecycle.topics_of(payment) if t == topics.PAYMENT_EXPIRED]
    assert len(expiries) == 1
    await lifecycle.assert_balanced(pan)


async def test_a_capture_after_the_deadline_expires_the_pre_authorization_first(
    lifecycle: Lifecycle,
) -> None:
    pan = await lifecycle.card()
    payment = await lifecycle.pay(pan, 30_000)
    lifecycle.clock.advance(PREAUTH_EXPIRY + timedelta(seconds=1))  # before any scan ran
    await lifecycle.capture(payment, 30_000)

    events = await lifecycle.events(payment)
    assert [t for t, _ in events] == [
        topics.PAYMENT_AUTHORIZED,
        topics.PAYMENT_EXPIRED,
        topics.PAYMENT_OPERATION_FAILED,
    ]
    assert events[2][1]["reason"] == "cannot capture a payment that is expired"
    assert await lifecycle.available(pan) == 100_000


async def test_the_scan_works_in_batches(lifecycle: Lifecycle) -> None:
    pan = await lifecycle.card()
    payments = [await lifecycle.pay(pan, 1_000) for _ in range(5)]
    lifecycle.clock.advance(PREAUTH_EXPIRY)
    scan = lifecycle.expiry(batch_size=2)
    counts = [await scan.expire_due()]
    while counts[-1] == 2:
        counts.append(await scan.expire_due())
    # Earlier tests' pre-authorizations in this schema may be due as well: at least these five
    # went, two per transaction, until a batch came back short.
    assert sum(counts) >= 5 and counts[-1] < 2 and set(counts[:-1]) == {2}
    assert {(await lifecycle.state(p))["status"] for p in payments} == {"expired"}
    await lifecycle.assert_balanced(pan)


# --- a resolution read before its score (two topics: no order between them) ----------------


async def early_resolutions(lifecycle: Lifecycle, payment_id: uuid.UUID) -> int:
    return int(
        await lifecycle.pool.fetchval(
            "SELECT count(*) FROM review_resolutions_before_score WHERE payment_id = $1",
            payment_id,
        )
    )


async def test_an_approval_read_before_its_score_authorizes_once_the_score_arrives(
    lifecycle: Lifecycle,
) -> None:
    pan = await lifecycle.card()
    scored = lifecycle.scored(pan, 20_000, capture=True, decision=FraudDecision.REVIEW)
    await lifecycle.resolve(scored.payment_id, ReviewDecision.APPROVE)
    await lifecycle.resolve(scored.payment_id, ReviewDecision.APPROVE)  # redelivered
    assert await lifecycle.events(scored.payment_id) == []  # nothing to authorize yet

    await lifecycle.deliver(topics.PAYMENT_SCORED, scored)

    assert await lifecycle.topics_of(scored.payment_id) == [
        topics.PAYMENT_ACTION_REQUIRED,
        topics.PAYMENT_AUTHORIZED,
        topics.PAYMENT_CAPTURED,
    ]
    state = await lifecycle.state(scored.payment_id)
    assert (state["status"], state["hold_status"]) == ("captured", "captured")
    resolved = await review_row(lifecycle, scored.payment_id)
    assert resolved == {"status": "approved", "resolved_by": "analyst@example.com", "payload": None}
    assert await early_resolutions(lifecycle, scored.payment_id) == 0

    await lifecycle.deliver(topics.PAYMENT_SCORED, scored)  # redelivered: changes nothing
    await lifecycle.resolve(scored.payment_id, ReviewDecision.APPROVE)  # nor does this
    assert len(await lifecycle.events(scored.payment_id)) == 3
    assert await early_resolutions(lifecycle, scored.payment_id) == 0
    assert await lifecycle.available(pan) == 100_000 - 20_000
    await lifecycle.assert_balanced(pan)


async def test_a_decline_read_before_its_score_declines_once_the_score_arrives(
    lifecycle: Lifecycle,
) -> None:
    pan = await lifecycle.card()
    scored = lifecycle.scored(pan, 20_000, decision=FraudDecision.REVIEW)
    await lifecycle.resolve(scored.payment_id, ReviewDecision.DECLINE)
    await lifecycle.deliver(topics.PAYMENT_SCORED, scored)

    assert await lifecycle.topics_of(scored.payment_id) == [
        topics.PAYMENT_ACTION_REQUIRED,
        topics.PAYMENT_DECLINED,
    ]
    _, declined = await lifecycle.last(scored.payment_id)
    assert (declined["response_code"], declined["reason"]) == ("59", "declined in fraud review")
    assert (await lifecycle.state(scored.payment_id))["status"] == "declined"
    assert (await review_row(lifecycle, scored.payment_id))["status"] == "declined"
    assert await lifecycle.available(pan) is None  # the issuer was never asked


async def test_an_early_resolution_of_another_merchant_is_not_applied(
    lifecycle: Lifecycle,
) -> None:
    pan = await lifecycle.card()
    scored = lifecycle.scored(pan, 20_000, decision=FraudDecision.REVIEW)
    await lifecycle.deliver(
        topics.REVIEW_RESOLVED,
        ReviewResolved(
            payment_id=scored.payment_id,
            merchant_id="mer_someone_else",
            decision=ReviewDecision.APPROVE,
            resolved_by="x",
        ),
    )
    await lifecycle.deliver(topics.PAYMENT_SCORED, scored)

    assert await lifecycle.topics_of(scored.payment_id) == [topics.PAYMENT_ACTION_REQUIRED]
    assert (await review_row(lifecycle, scored.payment_id))["status"] == "pending"
    assert await early_resolutions(lifecycle, scored.payment_id) == 0
