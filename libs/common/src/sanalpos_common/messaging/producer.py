"""Idempotent Kafka producer: acks=all, retries without duplicates, small linger for batching."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from sanalpos_common.messaging.security import kafka_client_kwargs


def build_producer(bootstrap_servers: str, client_id: str, linger_ms: int = 5) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=linger_ms,
        max_batch_size=256 * 1024,
        compression_type=None,
        **kafka_client_kwargs(),
    )
