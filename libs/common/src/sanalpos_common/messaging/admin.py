"""Topic creation at start-up, so consumers never race auto-creation."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from sanalpos_common.messaging.security import kafka_client_kwargs

log = logging.getLogger(__name__)


async def ensure_topics(
    bootstrap_servers: str, names: Iterable[str], partitions: int = 3, replication: int = 1
) -> None:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, client_id="sanalpos-admin", **kafka_client_kwargs()
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in dict.fromkeys(names) if n not in existing]
        if not missing:
            return
        # Another service may create a topic between our list and create.
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(
                [
                    NewTopic(name=n, num_partitions=partitions, replication_factor=replication)
                    for n in missing
                ]
            )
        log.info("created topics: %s", ", ".join(missing))
    finally:
        await admin.close()
