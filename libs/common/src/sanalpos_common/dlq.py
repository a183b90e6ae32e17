"""Dead letters as an operations tool: list, show, replay and mark handled, with an audit trail.

- Every consumer dead-letters to `dlq.<consumer>.v1` (messaging/deadletter.py): the original
  key, value and headers, plus `dlq.*` headers (reason, original topic/partition/offset,
  attempts, when).
- Replaying sends a record's original key, value and headers back to its original topic. The
  envelope keeps its message id, so every consumer's inbox still sees it once: the consumer
  that failed processes it now, the others drop it as a duplicate.
- Kafka cannot delete a single record, so "handled" is bookkeeping: each replay or purge is a
  record on the audit topic `ops.dlq-audit.v1` (who, when, what, where to), and the consumer
  group `sanalpos-dlq-handled.<consumer>` is committed at the first not-yet-handled offset of each
  partition, so listing starts there. `list` shows only records neither replayed nor purged.
"""

from __future__ import annotations

import getpass
import json
import socket
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from sanalpos_common import topics
from sanalpos_common.messaging.admin import ensure_topics
from sanalpos_common.messaging.security import kafka_client_kwargs
from sanalpos_common.topics import dead_letter_topic

AUDIT_TOPIC = topics.DLQ_AUDIT
HANDLED_GROUP_PREFIX = "sanalpos-dlq-handled."  # the ops Kafka user may use sanalpos-dlq*

# The consumers (hence dead-letter topics) of each service.
SERVICE_CONSUMERS: dict[str, tuple[str, ...]] = {
    "intake": ("intake", "intake-requests"),
    "fraud": ("fraud", "fraud-feedback"),
    "authorization": ("authorization",),
    "settlement": ("settlement",),
    "notification": ("notification",),
}


def handled_group(consumer: str) -> str:
    return f"{HANDLED_GROUP_PREFIX}{consumer}"


def default_operator() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


@dataclass
class DeadLetter:
    consumer: str
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    handled: str | None = None
    """None while unhandled; else what handled it ("replayed by ...", "purged by ...")."""

    @property
    def ref(self) -> str:
        return f"{self.partition}:{self.offset}"

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode(errors="replace")
        return None

    @property
    def reason(self) -> str:
        return self.header("dlq.error") or "?"

    @property
    def original_topic(self) -> str | None:
        return self.header("dlq.original.topic")

    @property
    def original_position(self) -> str:
        return f"{self.original_topic}[{self.header('dlq.original.partition')}]@{self.header('dlq.original.offset')}"

    @property
    def age_s(self) -> float:
        return max(0.0, time.time() - self.timestamp_ms / 1000)

    @property
    def message_id(self) -> str | None:
        """The envelope's message id, when the value is an envelope at all."""
        try:
            parsed = json.loads(self.value or b"")
        except ValueError:
            return None
        value = parsed.get("message_id") if isinstance(parsed, dict) else None
        return str(value) if value is not None else None

    @property
    def replayable(self) -> bool:
        return (
            self.value is not None
            and self.original_topic is not None
            and self.header("dlq.value-dropped") is None
        )

    def original_headers(self) -> list[tuple[str, bytes]]:
        return [(k, v) for k, v in self.headers if not k.startswith("dlq.")]


@dataclass(frozen=True)
class Selection:
    """Which dead letters an operation applies to; every given criterion must hold."""

    refs: frozenset[str] = frozenset()
    message_ids: frozenset[str] = frozenset()
    keys: frozenset[str] = frozenset()
    reason_contains: str | None = None
    original_topic: str | None = None
    every: bool = False

    @property
    def empty(self) -> bool:
        return not (
            self.every
            or self.refs
            or self.message_ids
            or self.keys
            or self.reason_contains
            or self.original_topic
        )

    def matches(self, record: DeadLetter) -> bool:
        key = (record.key or b"").decode(errors="replace")
        return (
            (not self.refs or record.ref in self.refs)
            and (not self.message_ids or record.message_id in self.message_ids)
            and (not self.keys or key in self.keys)
            and (not self.reason_contains or self.reason_contains in record.reason)
            and (not self.original_topic or record.original_topic == self.original_topic)
        )


@dataclass
class AuditRecord:
    action: str  # "replay" | "purge"
    operator: str
    consumer: str
    dlq_topic: str
    partition: int
    offset: int
    original: str
    message_id: str | None
    reason: str
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    replayed_to: str | None = None
    note: str | None = None
    audit_id: str = field(default_factory=lambda: str(uuid.uuid4()))


def consumers_of(service: str | None, consumer: str | None) -> tuple[str, ...]:
    if consumer:
        return (consumer,)
    if service not in SERVICE_CONSUMERS:
        raise ValueError(f"unknown service {service!r}; one of: {', '.join(SERVICE_CONSUMERS)}")
    return SERVICE_CONSUMERS[service]


class DeadLetterOps:
    def __init__(self, bootstrap_servers: str) -> None:
        self.bootstrap = bootstrap_servers

    async def audit(self, consumers: Iterable[str] | None = None) -> list[AuditRecord]:
        wanted = set(consumers) if consumers is not None else None
        records = []
        for message in await self._read_topic(AUDIT_TOPIC):
            try:
                record = AuditRecord(**json.loads(message.value))
            except (TypeError, ValueError):
                continue
            if wanted is None or record.consumer in wanted:
                records.append(record)
        return records

    async def dead_letters(
        self, consumers: Sequence[str], *, include_handled: bool = False
    ) -> list[DeadLetter]:
        handled = {(a.dlq_topic, a.partition, a.offset): a for a in await self.audit(consumers)}
        found: list[DeadLetter] = []
        for consumer in consumers:
            topic = dead_letter_topic(consumer)
            start = {} if include_handled else await self._handled_up_to(consumer)
            for message in await self._read_topic(topic, start):
                record = DeadLetter(
                    consumer=consumer,
                    topic=topic,
                    partition=message.partition,
                    offset=message.offset,
                    timestamp_ms=message.timestamp,
                    key=message.key,
                    value=message.value,
                    headers=list(message.headers or ()),
                )
                audit = handled.get((topic, message.partition, message.offset))
                if audit is not None:
                    record.handled = f"{audit.action} by {audit.operator} at {audit.at}"
                elif message.offset < start.get(message.partition, 0):
                    record.handled = "before the handled mark"
                if include_handled or record.handled is None:
                    found.append(record)
        return found

    async def replay(
        self, records: Sequence[DeadLetter], operator: str, note: str | None = None
    ) -> list[AuditRecord]:
        """Send each record back to its original topic, then audit it and move the marks."""
        await ensure_topics(self.bootstrap, [AUDIT_TOPIC], partitions=1)
        done: list[AuditRecord] = []
        async with self._producer() as producer:
            for record in records:
                if not record.replayable:
                    raise ValueError(f"{record.topic} {record.ref} cannot be replayed (no value)")
                assert record.original_topic is not None
                sent = await producer.send_and_wait(
                    record.original_topic,
                    value=record.value,
                    key=record.key,
                    headers=[
                        *record.original_headers(),
                        ("dlq.replayed-from", f"{record.topic}:{record.ref}".encode()),
                        ("dlq.replayed-by", operator.encode()),
                    ],
                )
                audit = self._audit_of(record, "replay", operator, note)
                audit.replayed_to = f"{sent.topic}[{sent.partition}]@{sent.offset}"
                await self._write_audit(producer, audit)
                done.append(audit)
        await self._advance_marks({r.consumer for r in records})
        return done

    async def purge(
        self, records: Sequence[DeadLetter], operator: str, note: str | None = None
    ) -> list[AuditRecord]:
        await ensure_topics(self.bootstrap, [AUDIT_TOPIC], partitions=1)
        done = []
        async with self._producer() as producer:
            for record in records:
                audit = self._audit_of(record, "purge", operator, note)
                await self._write_audit(producer, audit)
                done.append(audit)
        await self._advance_marks({r.consumer for r in records})
        return done

    @staticmethod
    def _audit_of(record: DeadLetter, action: str, operator: str, note: str | None) -> AuditRecord:
        return AuditRecord(
            action=action,
            operator=operator,
            consumer=record.consumer,
            dlq_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            original=record.original_position,
            message_id=record.message_id,
            reason=record.reason[:500],
            note=note,
        )

    async def _write_audit(self, producer: AIOKafkaProducer, audit: AuditRecord) -> None:
        await producer.send_and_wait(
            AUDIT_TOPIC, value=json.dumps(asdict(audit)).encode(), key=audit.consumer.encode()
        )

    async def _advance_marks(self, consumers: Iterable[str]) -> None:
        """Commit each consumer's handled group at the first unhandled offset per partition."""
        for consumer in consumers:
            topic = dead_letter_topic(consumer)
            records = await self.dead_letters([consumer], include_handled=True)
            _, ends = await self._read_topic_and_ends(topic, await self._handled_up_to(consumer))
            marks: dict[int, int] = {}
            for partition, end in ends.items():
                unhandled = [
                    r.offset for r in records if r.partition == partition and r.handled is None
                ]
                marks[partition] = min(unhandled) if unhandled else end
            await self._commit(handled_group(consumer), topic, marks)

    async def _handled_up_to(self, consumer: str) -> dict[int, int]:
        topic = dead_letter_topic(consumer)
        consumer_client = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            **kafka_client_kwargs(),
            group_id=handled_group(consumer),
            enable_auto_commit=False,
        )
        await consumer_client.start()
        try:
            await consumer_client._client.force_metadata_update()
            marks = {}
            for partition in consumer_client.partitions_for_topic(topic) or ():
                committed = await consumer_client.committed(TopicPartition(topic, partition))
                if committed is not None:
                    marks[partition] = committed
            return marks
        finally:
            await consumer_client.stop()

    async def _commit(self, group: str, topic: str, marks: dict[int, int]) -> None:
        client = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            **kafka_client_kwargs(),
            group_id=group,
            enable_auto_commit=False,
        )
        await client.start()
        try:
            partitions = [TopicPartition(topic, p) for p in marks]
            client.assign(partitions)
            await client.commit(
                {TopicPartition(topic, p): OffsetAndMetadata(o, "") for p, o in marks.items()}
            )
        finally:
            await client.stop()

    async def _read_topic(self, topic: str, start: dict[int, int] | None = None) -> list[Any]:
        return (await self._read_topic_and_ends(topic, start))[0]

    async def _read_topic_and_ends(
        self, topic: str, start: dict[int, int] | None = None
    ) -> tuple[list[Any], dict[int, int]]:
        """Every record of `topic` from `start` (per partition; default the beginning) to its
        current end, and those ends; nothing when the topic does not exist (yet)."""
        client = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            **kafka_client_kwargs(),
            group_id=None,
            enable_auto_commit=False,
        )
        await client.start()
        try:
            await client._client.force_metadata_update()
            partitions = [
                TopicPartition(topic, p) for p in client.partitions_for_topic(topic) or ()
            ]
            if not partitions:
                return [], {}
            client.assign(partitions)
            ends = await client.end_offsets(partitions)
            for tp in partitions:
                client.seek(tp, (start or {}).get(tp.partition, 0))
            pending = {tp for tp in partitions if await client.position(tp) < ends[tp]}
            found: list[Any] = []
            deadline = time.monotonic() + 60
            while pending and time.monotonic() < deadline:
                batches = await client.getmany(*pending, timeout_ms=1000)
                for tp, messages in batches.items():
                    found.extend(m for m in messages if m.offset < ends[tp])
                for tp in list(pending):
                    if await client.position(tp) >= ends[tp]:
                        pending.discard(tp)
            return found, {tp.partition: end for tp, end in ends.items()}
        finally:
            await client.stop()

    def _producer(self) -> _ProducerContext:
        return _ProducerContext(self.bootstrap)


class _ProducerContext:
    def __init__(self, bootstrap: str) -> None:
        self.producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            **kafka_client_kwargs(),
            acks="all",
            enable_idempotence=True,
            client_id="sanalpos-dlq",
        )

    async def __aenter__(self) -> AIOKafkaProducer:
        await self.producer.start()
        return self.producer

    async def __aexit__(self, *exc: object) -> None:
        await self.producer.stop()
