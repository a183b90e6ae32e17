"""End offsets of every topic on the broker: records written between two snapshots."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

EXCLUDED = frozenset({"__consumer_offsets"})


async def end_offsets(bootstrap: str) -> dict[str, int]:
    """Sum of end offsets per topic (all topics, internal faust ones included, but not
    __consumer_offsets)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = sorted(t for t in await admin.list_topics() if t not in EXCLUDED)
        described = await admin.describe_topics(names) if names else []
    finally:
        await admin.close()
    partitions = [
        TopicPartition(topic["topic"], p["partition"])
        for topic in described
        if topic["topic"] in names
        for p in topic["partitions"]
    ]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        offsets = await consumer.end_offsets(partitions) if partitions else {}
    finally:
        await consumer.stop()
    per_topic: dict[str, int] = dict.fromkeys(names, 0)
    for tp, offset in offsets.items():
        per_topic[tp.topic] += offset
    return per_topic


def records_between(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Records per topic written in between (topics created in between count from zero),
    largest first, topics with none left out."""
    grown = {t: after[t] - before.get(t, 0) for t in after}
    return dict(sorted(((t, n) for t, n in grown.items() if n > 0), key=lambda kv: -kv[1]))
