"""Topics are created with the configured replication, min.insync.replicas, retention and
size limit; a replication the cluster cannot give stops start-up with the broker's reason.
Real broker (a single node: replication 1 is all it can hold)."""

from __future__ import annotations

import os
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from sanalpos_common.messaging.admin import TopicSpec, ensure_topics
from sanalpos_common.messaging.producer import TOPIC_MAX_MESSAGE_BYTES

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092")


async def topic_configs(topic: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        (response,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)]
        )
        (resource,) = response.resources
        return {name: value for name, value, *_ in resource[4]}
    finally:
        await admin.delete_topics([topic])
        await admin.close()


async def test_created_topics_carry_the_configured_settings() -> None:
    topic = f"test.topic-admin.{uuid.uuid4().hex[:8]}"
    spec = TopicSpec(partitions=2, replication=1, min_insync_replicas=1, retention_h=5, segment_h=1)
    await ensure_topics(BOOTSTRAP, [topic], spec=spec)
    configs = await topic_configs(topic)
    assert configs["min.insync.replicas"] == "1"
    assert configs["retention.ms"] == str(5 * 3_600_000)
    assert configs["segment.ms"] == str(3_600_000)
    assert configs["max.message.bytes"] == str(TOPIC_MAX_MESSAGE_BYTES)


async def test_a_replication_the_cluster_cannot_hold_stops_start_up() -> None:
    topic = f"test.topic-admin.{uuid.uuid4().hex[:8]}"
    with pytest.raises(RuntimeError, match=f"could not create topics: {topic}"):
        await ensure_topics(BOOTSTRAP, [topic], spec=TopicSpec(replication=3))
