"""sanalpos-fraud end to end on real Kafka and PostgreSQL (see conftest.py for isolation)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from sanalpos_common import topics
from sanalpos_common.schemas.codec import decode
from sanalpos_common.schemas.events import FraudDecision, PaymentInitiated, PaymentScored

from .conftest import FraudService, wait_for


def _scored(record: Any) -> tuple[Any, PaymentScored]:
    envelope = decode(topics.PAYMENT_SCORED, record.value)
    return envelope, envelope.payload


async def test_scores_a_payment_carries_it_forward_and_records_the_decision(
    fraud: FraudService,
) -> None:
    incoming = fraud.payments.envelope(amount=12_500, currency="TRY", capture=False, installments=3)
    payment: PaymentInitiated = incoming.payload
    await fraud.publish(incoming)

    [record] = await fraud.scored(payment.payment_id)
    envelope, scored = _scored(record)
    assert envelope.type == "payment.scored"
    assert envelope.correlation_id == payment.payment_id
    assert envelope.causation_id == incoming.message_id
    assert envelope.producer == "fraud"
    assert dict(record.headers)["type"] == b"payment.scored"
    assert scored.payment_id == payment.payment_id
    assert scored.merchant_id == payment.merchant_id
    assert (scored.amount, scored.currency, scored.capture, scored.installments) == (
        12_500,
        "TRY",
        False,
        3,
    )
    assert scored.card == payment.card  # ciphertexts included, exactly as received
    assert scored.decision is FraudDecision.APPROVE
    assert scored.score == 5
    assert scored.reasons == ()

    row = await fraud.decision(payment.payment_id)
    assert row is not None
    assert row["score"] == scored.score
    assert row["decision"] == "approve"
    assert row["reasons"] == []
    assert row["rules_version"] == "rules-v1"
    assert row["card_fingerprint"] == payment.card.fingerprint
    assert (row["card_bin"], row["card_last4"]) == ("41111111", "1111")
    assert (row["velocity_card_10m"], row["velocity_card_1h"]) == (1, 1)
    assert row["message_id"] == incoming.message_id
    # Never a PAN or a ciphertext in fraud's tables.
    stored = json.dumps({k: str(v) for k, v in dict(row).items()})
    assert payment.card.pan_ciphertext not in stored
    assert "4111111111111111" not in stored
    inbox = await fraud.db.fetchval(
        "SELECT count(*) FROM inbox WHERE message_id = $1", incoming.message_id
    )
    assert inbox == 1


async def test_high_amounts_are_reviewed_or_declined(fraud: FraudService) -> None:
    high = fraud.payments.envelope(pan="4000056655665556", amount=2_000_000)  # 20,000.00 TRY
    very_high = fraud.payments.envelope(pan="4000002500003155", amount=9_000_000)
    await fraud.publish(high)
    await fraud.publish(very_high)

    [high_record] = await fraud.scored(high.payload.payment_id)
    [very_high_record] = await fraud.scored(very_high.payload.payment_id)
    _, high_scored = _scored(high_record)
    _, very_high_scored = _scored(very_high_record)
    assert high_scored.decision is FraudDecision.REVIEW
    assert high_scored.reasons == ("amount_high",)
    assert very_high_scored.decision is FraudDecision.DECLINE
    assert very_high_scored.reasons == ("amount_very_high",)
    row = await fraud.decision(very_high.payload.payment_id)
    assert row is not None and row["decision"] == "decline"


async def test_velocity_per_card_fingerprint(fraud: FraudService) -> None:
    pan = "4242424242424242"
    burst = [fraud.payments.envelope(pan=pan, amount=10_000 + i) for i in range(6)]
    other_card = fraud.payments.envelope(pan="5555555555554444", amount=10_000)
    for envelope in burst:
        await fraud.publish(envelope)
    await fraud.publish(other_card)

    reasons: list[tuple[str, ...]] = []
    for envelope in burst:
        [record] = await fraud.scored(envelope.payload.payment_id)
        reasons.append(_scored(record)[1].reasons)
    velocity = sorted(
        int(m.group(1))
        for rs in reasons
        for r in rs
        if (m := re.fullmatch(r"velocity_card_10m:(\d+)", r))
    )
    assert velocity == [4, 5, 6]  # > 3 in the short window raises; counts include the payment
    counts = await fraud.db.fetch(
        "SELECT velocity_card_10m, velocity_card_1h FROM fraud_decisions "
        "WHERE payment_id = ANY($1::uuid[]) ORDER BY velocity_card_10m",
        [e.payload.payment_id for e in burst],
    )
    assert [(r["velocity_card_10m"], r["velocity_card_1h"]) for r in counts] == [
        (n, n) for n in range(1, 7)
    ]
    [other] = await fraud.scored(other_card.payload.payment_id)
    assert _scored(other)[1].reasons == ()  # another card is not affected


async def test_poison_message_is_dead_lettered_and_the_partition_moves_on(
    fraud: FraudService,
) -> None:
    key = f"poison-{uuid.uuid4()}".encode()
    marker = uuid.uuid4().hex.encode()
    garbage = b'{"message_id": "not-a-uuid", "payload": 42'
    await fraud.publish_raw(garbage, key, headers=[("test-marker", marker)])
    good = fraud.payments.envelope(pan="4000000000000077")
    await fraud.publish(good, key=key)  # same key, same partition, right behind the poison

    async def dead_lettered() -> list[Any]:
        return fraud.reader.where(
            topics.dead_letter_topic("fraud"),
            lambda r: ("test-marker", marker) in list(r.headers),
        )

    [dead] = await wait_for(dead_lettered)
    headers = dict(dead.headers)
    assert dead.value == garbage
    assert dead.key == key
    assert headers["dlq.consumer"] == b"fraud"
    assert headers["dlq.error"].startswith(b"undecodable:")
    assert headers["dlq.original.topic"] == topics.PAYMENT_INITIATED.encode()
    assert int(headers["dlq.original.offset"]) >= 0
    [record] = await fraud.scored(good.payload.payment_id)
    assert _scored(record)[1].decision is FraudDecision.APPROVE


async def test_redelivered_message_is_scored_once_and_counted_once(fraud: FraudService) -> None:
    pan = "4000000000000002"
    twice = fraud.payments.envelope(pan=pan)
    key = str(twice.payload.payment_id).encode()
    await fraud.publish(twice)
    await fraud.publish(twice)  # the same bytes again: a redelivery
    sentinel = fraud.payments.envelope(pan=pan)
    await fraud.publish(sentinel, key=key)  # same source partition and same card: behind both

    await fraud.scored(sentinel.payload.payment_id)
    records = fraud.reader.by_key(topics.PAYMENT_SCORED, str(twice.payload.payment_id))
    assert len(records) == 1
    assert (
        await fraud.db.fetchval(
            "SELECT count(*) FROM fraud_decisions WHERE payment_id = $1", twice.payload.payment_id
        )
        == 1
    )
    sentinel_row = await fraud.decision(sentinel.payload.payment_id)
    assert sentinel_row is not None
    assert sentinel_row["velocity_card_10m"] == 2  # the redelivery did not count
    duplicates = await _metric(fraud, "sanalpos_messages_duplicates_total", 'consumer="fraud"')
    assert duplicates >= 1


async def test_event_time_windows_use_created_at(fraud: FraudService) -> None:
    pan = "4000000000003220"
    long_ago = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    old = [fraud.payments.envelope(pan=pan, created_at=long_ago) for _ in range(4)]
    now = fraud.payments.envelope(pan=pan)
    for envelope in old:
        await fraud.publish(envelope)
    old_reasons = [_scored((await fraud.scored(e.payload.payment_id))[0])[1].reasons for e in old]
    # Four payments within minutes of each other in 2024 (in whatever order they arrive).
    assert sorted(r for rs in old_reasons for r in rs) == ["velocity_card_10m:4"]
    # Only after the burst was scored: a newer payment of the card moves its buckets on, so
    # old payments scored after it would no longer see each other (fraud.domain.velocity).
    await fraud.publish(now)
    [current] = await fraud.scored(now.payload.payment_id)
    assert _scored(current)[1].reasons == ()  # 2024's burst is not in today's window
    row = await fraud.decision(now.payload.payment_id)
    assert row is not None and row["velocity_card_10m"] == 1


async def test_readiness_reports_faust_progress(fraud: FraudService) -> None:
    async with httpx.AsyncClient(base_url=fraud.base_url) as client:
        ready = await client.get("/readyz")
        health = await client.get("/healthz")
    assert health.status_code == 200
    assert ready.status_code == 200
    faust_check = ready.json()["checks"]["faust"]
    assert faust_check["ok"] is True
    assert re.search(r"processed [1-9]\d*", faust_check["detail"]), faust_check
    assert "event time 20" in faust_check["detail"]
    assert await _metric(fraud, "sanalpos_messages_processed_total", 'consumer="fraud"') >= 1
    assert await _metric(fraud, "sanalpos_fraud_decisions_total", 'band="approve"') >= 1
    assert fraud.ready_after_s < 45


async def _metric(fraud: FraudService, name: str, label: str) -> float:
    async with httpx.AsyncClient(base_url=fraud.base_url) as client:
        text = (await client.get("/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") and label in line
    )


async def test_a_message_the_database_refuses_is_dead_lettered_after_retries(
    fraud: FraudService,
) -> None:
    pan = "4000000000000010"
    # Valid JSON and a valid event, but PostgreSQL text cannot hold NUL: every attempt fails.
    refused = fraud.payments.envelope(pan=pan, merchant_id="merchant\x00nul")
    key = str(refused.payload.payment_id).encode()
    marker = uuid.uuid4().hex.encode()
    await fraud.publish(refused, headers=[("test-marker", marker)])
    behind = fraud.payments.envelope(pan=pan)  # same card and partition, right behind it
    await fraud.publish(behind, key=key)

    async def dead_lettered() -> list[Any]:
        return fraud.reader.where(
            topics.dead_letter_topic("fraud"),
            lambda r: ("test-marker", marker) in list(r.headers),
        )

    [dead] = await wait_for(dead_lettered)
    headers = dict(dead.headers)
    assert decode(topics.PAYMENT_INITIATED, dead.value).message_id == refused.message_id
    assert headers["dlq.attempts"] == b"3"
    assert headers["dlq.error"].startswith(b"CharacterNotInRepertoireError")
    assert headers["dlq.original.topic"].endswith(b"-by-card-repartition")
    [record] = await fraud.scored(behind.payload.payment_id)
    assert _scored(record)[1].payment_id == behind.payload.payment_id
    assert await fraud.decision(refused.payload.payment_id) is None
    assert fraud.reader.by_key(topics.PAYMENT_SCORED, str(refused.payload.payment_id)) == []
