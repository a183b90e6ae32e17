"""Consumer-group lag as the broker sees it: log-end offsets minus committed offsets.

faust's own view of its consumer lives in the consumer thread and can look healthy while
the fetcher is wedged (the "consumer silently stopped after a rebalance / broker restart"
class of bugs), so readiness asks the broker instead, with two small clients of its own.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from sanalpos_common.messaging.security import kafka_client_kwargs


@dataclass(frozen=True)
class LagSnapshot:
    lag: dict[TopicPartition, int]
    committed: dict[TopicPartition, int]
    taken_monotonic: float
    # where the group resumes: its committed offset, or the log start when it has none
    position: dict[TopicPartition, int] = field(default_factory=dict)

    def total(self) -> int:
        return sum(self.lag.values())

    def by_topic(self) -> dict[str, int]:
        result: dict[str, int] = {}
        for tp, lag in self.lag.items():
            result[tp.topic] = result.get(tp.topic, 0) + lag
        return result


@dataclass
class GroupLagProbe:
    bootstrap_servers: str
    group_id: str
    topics: Sequence[str]
    client_id: str = "sanalpos-lag-probe"
    _admin: AIOKafkaAdminClient | None = None
    _offsets: AIOKafkaConsumer | None = None
    _partitions: list[TopicPartition] = field(default_factory=list)

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._offsets is None:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self.bootstrap_servers,
                client_id=self.client_id,
                **kafka_client_kwargs(),
            )
            offsets = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap_servers,
                client_id=self.client_id,
                group_id=None,
                enable_auto_commit=False,
                **kafka_client_kwargs(),
            )
            try:
                await admin.start()
                await offsets.start()
            except Exception:
                await _close(admin, offsets)
                raise
            self._admin, self._offsets = admin, offsets
        return self._admin, self._offsets

    async def _topic_partitions(self, admin: AIOKafkaAdminClient) -> list[TopicPartition]:
        if self._partitions:
            return self._partitions
        described = await admin.describe_topics(list(self.topics))
        tps = sorted(
            TopicPartition(str(topic["topic"]), int(partition["partition"]))
            for topic in described
            if topic.get("error_code") == 0
            for partition in topic.get("partitions", ())
        )
        if len({tp.topic for tp in tps}) == len(set(self.topics)):
            self._partitions = tps  # cache once every topic exists
        return tps

    async def snapshot(self) -> LagSnapshot:
        admin, offsets = await self._clients()
        try:
            tps = await self._topic_partitions(admin)
            committed_raw = await admin.list_consumer_group_offsets(self.group_id)
            ends = await offsets.end_offsets(tps)
            missing = [tp for tp in tps if _offset(committed_raw.get(tp)) is None]
            starts = await offsets.beginning_offsets(missing) if missing else {}
        except Exception:
            await self.close()  # reconnect on the next probe
            raise
        lag: dict[TopicPartition, int] = {}
        committed: dict[TopicPartition, int] = {}
        positions: dict[TopicPartition, int] = {}
        for tp in tps:
            position = _offset(committed_raw.get(tp))
            if position is None:
                position = starts.get(tp, 0)
            else:
                committed[tp] = position
            positions[tp] = position
            lag[tp] = max(0, ends.get(tp, 0) - position)
        return LagSnapshot(
            lag=lag, committed=committed, taken_monotonic=time.monotonic(), position=positions
        )

    async def log_start_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        _, offsets = await self._clients()
        try:
            return dict(await offsets.beginning_offsets(tps))
        except Exception:
            await self.close()
            raise

    async def close(self) -> None:
        admin, offsets = self._admin, self._offsets
        self._admin = self._offsets = None
        await _close(admin, offsets)


def _offset(meta: object) -> int | None:
    offset = getattr(meta, "offset", None)
    return offset if isinstance(offset, int) and offset >= 0 else None


async def _close(admin: AIOKafkaAdminClient | None, offsets: AIOKafkaConsumer | None) -> None:
    if offsets is not None:
        with contextlib.suppress(Exception):
            await offsets.stop()
    if admin is not None:
        with contextlib.suppress(Exception):
            await admin.close()
