"""Idempotent Kafka producer: acks=all, retries without duplicates, small linger for batching."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from sanalpos_common.messaging.security import kafka_client_kwargs

MAX_MESSAGE_BYTES = 1024 * 1024
"""The largest record this platform publishes, and the limit it sets on the topics it creates
(`max.message.bytes`), matching Kafka's defaults (broker `message.max.bytes` is 1 MiB plus a
12-byte batch overhead): a record the producer accepts the broker accepts too. A record over
it is refused by the producer at once (MessageSizeTooLargeError) and never retried: the
outbox relay poisons its row, dead-lettering truncates the value."""
TOPIC_MAX_MESSAGE_BYTES = MAX_MESSAGE_BYTES + 12
"""What `max.message.bytes` counts: the record batch, one record plus the batch header."""


def build_producer(bootstrap_servers: str, client_id: str, linger_ms: int = 5) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=linger_ms,
        max_batch_size=256 * 1024,
        max_request_size=MAX_MESSAGE_BYTES,
        compression_type=None,
        **kafka_client_kwargs(),
    )
