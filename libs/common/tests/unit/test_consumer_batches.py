"""The consumer loop's batch path and its fallback, with fakes for Kafka and the handler."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition

from sanalpos_common import topics
from sanalpos_common.messaging.consumer import ConsumerLoop, NonRetryable
from sanalpos_common.observability import Metrics
from sanalpos_common.schemas.codec import encode, new_envelope
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import PaymentCaptured


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, dict[str, bytes]]] = []

    async def send_and_wait(
        self, topic: str, value: bytes | None, key: bytes | None, headers: list[tuple[str, bytes]]
    ) -> None:
        self.sent.append((topic, value, dict(headers)))


class RecordingHandler:
    """Commits a batch only when every message in it succeeds, like one transaction."""

    def __init__(self, poison: set[uuid.UUID], non_retryable: set[uuid.UUID] = frozenset()) -> None:  # type: ignore[assignment]
        self.poison, self.non_retryable = poison, non_retryable
        self.committed: list[uuid.UUID] = []
        self.batches = 0

    def _check(self, envelope: Envelope[Any]) -> None:
        if envelope.message_id in self.non_retryable:
            raise NonRetryable("not ours")
        if envelope.message_id in self.poison:
            raise ValueError("boom")

    async def __call__(self, topic: str, envelope: Envelope[Any]) -> None:
        self._check(envelope)
        self.committed.append(envelope.message_id)

    async def batch(self, items: list[tuple[str, Envelope[Any]]]) -> None:
        self.batches += 1
        for _, envelope in items:
            self._check(envelope)
        self.committed.extend(e.message_id for _, e in items)


def message(offset: int, value: bytes) -> SimpleNamespace:
    return SimpleNamespace(
        topic=topics.PAYMENT_CAPTURED, partition=0, offset=offset, key=b"k", value=value, headers=[]
    )


def captured() -> Envelope[Any]:
    payment_id = uuid.uuid4()
    payload = PaymentCaptured(
        payment_id=payment_id,
        merchant_id="m",
        amount=100,
        currency="TRY",
        installments=1,
        auth_code="A",
    )
    return new_envelope(topics.PAYMENT_CAPTURED, payload, correlation_id=payment_id, producer="t")


def loop(handler: RecordingHandler, producer: FakeProducer) -> ConsumerLoop:
    return ConsumerLoop(
        name="test",
        topics=(topics.PAYMENT_CAPTURED,),
        bootstrap_servers="unused",
        handler=handler,
        dead_letter_producer=producer,  # type: ignore[arg-type]
        metrics=Metrics("test"),
        retry_backoff_s=0,
    )


async def test_a_clean_batch_commits_in_one_go() -> None:
    envelopes = [captured() for _ in range(5)]
    handler, producer = RecordingHandler(set()), FakeProducer()
    await loop(handler, producer)._process_partition_batch(
        [message(i, encode(e)) for i, e in enumerate(envelopes)]
    )
    assert handler.batches == 1
    assert handler.committed == [e.message_id for e in envelopes]
    assert producer.sent == []


async def test_a_poison_message_falls_back_and_only_it_is_dead_lettered() -> None:
    envelopes = [captured() for _ in range(4)]
    bad = envelopes[2]
    handler, producer = RecordingHandler({bad.message_id}), FakeProducer()
    messages = [message(i, encode(e)) for i, e in enumerate(envelopes)] + [message(9, b"{garbage")]
    await loop(handler, producer)._process_partition_batch(messages)
    assert handler.committed == [e.message_id for e in envelopes if e is not bad]
    dead = {headers["dlq.original.offset"]: headers["dlq.error"] for _, _, headers in producer.sent}
    assert set(dead) == {b"2", b"9"}
    assert b"ValueError" in dead[b"2"] and b"undecodable" in dead[b"9"]


async def test_non_retryable_is_dead_lettered_without_retries() -> None:
    envelopes = [captured() for _ in range(3)]
    handler, producer = RecordingHandler(set(), {envelopes[0].message_id}), FakeProducer()
    await loop(handler, producer)._process_partition_batch(
        [message(i, encode(e)) for i, e in enumerate(envelopes)]
    )
    assert handler.committed == [e.message_id for e in envelopes[1:]]
    assert len(producer.sent) == 1
    assert producer.sent[0][2]["dlq.attempts"] == b"1"


async def test_outcomes_are_counted_per_topic() -> None:
    envelopes = [captured() for _ in range(4)]
    bad = envelopes[1]
    handler, producer = RecordingHandler({bad.message_id}), FakeProducer()
    consumer = loop(handler, producer)
    messages = [message(i, encode(e)) for i, e in enumerate(envelopes)] + [message(9, b"{x")]
    await consumer._process_partition_batch(messages)

    def count(name: str, **extra: str) -> float | None:
        labels = {"consumer": "test", "topic": topics.PAYMENT_CAPTURED, **extra}
        return consumer.metrics.registry.get_sample_value(name, labels)

    assert count("sanalpos_messages_processed_total") == 3
    assert count("sanalpos_messages_dead_lettered_total") == 2  # the failing one, the garbage
    assert count("sanalpos_messages_retried_total", kind="handler") == 2  # 3 attempts, 2 retries
    assert (
        consumer.metrics.registry.get_sample_value(
            "sanalpos_handler_duration_seconds_count", {"consumer": "test"}
        )
        == 3
    )


class FakeConsumer:
    """What the commit path asks of aiokafka: the assignment and commit()."""

    def __init__(self, assigned: set[Any]) -> None:
        self.assigned = assigned
        self.commits: list[dict[Any, int]] = []

    def assignment(self) -> set[Any]:
        return set(self.assigned)

    async def commit(self, offsets: dict[Any, int]) -> None:
        self.commits.append(dict(offsets))


TP0 = TopicPartition(topics.PAYMENT_CAPTURED, 0)
TP1 = TopicPartition(topics.PAYMENT_CAPTURED, 1)


async def test_offsets_are_committed_at_most_once_per_interval_then_all_at_once() -> None:
    consumer_loop = loop(RecordingHandler(set()), FakeProducer())
    consumer_loop.commit_interval_s = 3600
    kafka = FakeConsumer({TP0, TP1})
    consumer_loop._uncommitted[TP0] = 5
    await consumer_loop._commit_if_due(kafka)  # type: ignore[arg-type]
    assert kafka.commits == [{TP0: 5}]  # the first is due at once
    consumer_loop._uncommitted[TP0] = 9
    consumer_loop._uncommitted[TP1] = 2
    await consumer_loop._commit_if_due(kafka)  # type: ignore[arg-type]
    assert kafka.commits == [{TP0: 5}]  # not yet: within the interval
    await consumer_loop.commit_handled(kafka)  # type: ignore[arg-type]  # as at stop
    assert kafka.commits[-1] == {TP0: 9, TP1: 2} and not consumer_loop._uncommitted


async def test_a_dead_letter_commits_at_once() -> None:
    producer = FakeProducer()
    consumer_loop = loop(RecordingHandler(set()), producer)
    consumer_loop.commit_interval_s = 3600
    kafka = FakeConsumer({TP0})
    consumer_loop._uncommitted[TP0] = 1
    await consumer_loop._commit_if_due(kafka)  # type: ignore[arg-type]
    await consumer_loop._process(message(1, b"not json"))  # undecodable: dead-lettered
    consumer_loop._uncommitted[TP0] = 2
    await consumer_loop._commit_if_due(kafka)  # type: ignore[arg-type]
    assert len(producer.sent) == 1 and kafka.commits == [{TP0: 1}, {TP0: 2}]


async def test_a_partition_no_longer_assigned_is_not_committed() -> None:
    consumer_loop = loop(RecordingHandler(set()), FakeProducer())
    kafka = FakeConsumer({TP1})
    consumer_loop._uncommitted[TP0] = 7  # revoked while handled
    consumer_loop._uncommitted[TP1] = 3
    await consumer_loop.commit_handled(kafka)  # type: ignore[arg-type]
    assert kafka.commits == [{TP1: 3}] and not consumer_loop._uncommitted
