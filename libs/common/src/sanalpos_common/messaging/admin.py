"""Topic creation at start-up, so consumers never race auto-creation."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.errors import for_code as error_for_code

from sanalpos_common.messaging.producer import TOPIC_MAX_MESSAGE_BYTES
from sanalpos_common.messaging.security import kafka_client_kwargs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    """How the topics a service creates are laid out (ServiceSettings.topic_spec)."""

    partitions: int = 3
    replication: int = 1
    min_insync_replicas: int | None = None
    retention_h: int | None = None
    segment_h: int | None = None

    def configs(self) -> dict[str, str]:
        configs = {"max.message.bytes": str(TOPIC_MAX_MESSAGE_BYTES)}
        if self.min_insync_replicas is not None:
            configs["min.insync.replicas"] = str(self.min_insync_replicas)
        if self.retention_h is not None:
            configs["retention.ms"] = str(self.retention_h * 3_600_000)
        if self.segment_h is not None:
            configs["segment.ms"] = str(self.segment_h * 3_600_000)
        return configs


async def ensure_topics(
    bootstrap_servers: str,
    names: Iterable[str],
    partitions: int = 3,
    replication: int = 1,
    spec: TopicSpec | None = None,
) -> None:
    """Create the missing topics (existing ones are left as they are)."""
    spec = spec or TopicSpec(partitions=partitions, replication=replication)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, client_id="sanalpos-admin", **kafka_client_kwargs()
    )
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [n for n in dict.fromkeys(names) if n not in existing]
        if not missing:
            return
        # Another service may create a topic between our list and create.
        with contextlib.suppress(TopicAlreadyExistsError):
            response = await admin.create_topics(
                [
                    NewTopic(
                        name=n,
                        num_partitions=spec.partitions,
                        replication_factor=spec.replication,
                        topic_configs=spec.configs(),
                    )
                    for n in missing
                ]
            )
            _raise_topic_errors(response)
        log.info("created topics (replication %d): %s", spec.replication, ", ".join(missing))
    finally:
        await admin.close()


def _raise_topic_errors(response: Any) -> None:
    """The broker answers per topic; a refusal (e.g. a replication factor above the number
    of brokers) must stop start-up, not leave the topic missing."""
    failed = [
        f"{topic}: {message or error_for_code(code).__name__}"
        for topic, code, *rest in getattr(response, "topic_errors", [])
        for message in [rest[0] if rest else None]
        if code not in (0, TopicAlreadyExistsError.errno)
    ]
    if failed:
        raise RuntimeError("could not create topics: " + "; ".join(failed))
