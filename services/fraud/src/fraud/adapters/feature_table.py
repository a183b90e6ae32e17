"""Streaming feature state in a faust changelog table, read and written per batch.

One faust table (`<app id>-features`, not windowed: the windows are buckets inside each
value, in event time, see `fraud.domain.features`) holds every key's state as JSON. A batch
reads through an overlay (`BatchFeatures`), so a later payment of the batch sees the
earlier ones, and the overlay is written to the table only after the batch's database
commit (`apply`); the card's velocity buckets live in the same value
(fraud.adapters.velocity), so a payment costs one write for its card. A redelivered message never counts
twice. Each write's changelog partition is the stream partition of the payment that caused
it (`PartitionedTable.writing_to`), so table partition p is recovered with stream
partition p after a restart or a rebalance.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

import faust
from faust.types import StoreT
from yarl import URL

from fraud.adapters.pinned_rocksdb import PinnedPartitionRocksDBStore, is_rocksdb
from fraud.domain.features import FeatureEngine, Observation, key_partition


class PartitionedTable(faust.Table):
    """A faust Table whose changelog partition can be pinned for a block of writes.

    Table writes happen after the batch's commit, when faust's "current event" is no longer
    the one that caused them; each write goes to the stream partition of its payment.
    """

    _explicit_partition: int | None = None

    @contextmanager
    def writing_to(self, partition: int) -> Iterator[None]:
        previous, self._explicit_partition = self._explicit_partition, partition
        try:
            yield
        finally:
            self._explicit_partition = previous

    def read(self, key: Any, partition: int | None) -> Any | None:
        """`key`'s value read from `partition` alone when it is known (see
        PinnedPartitionRocksDBStore.read), or None."""
        store = self.data
        if isinstance(store, PinnedPartitionRocksDBStore):
            return store.read(key, partition)
        return self.get(key)

    def partition_for_key(self, key: Any) -> int | None:
        if self._explicit_partition is not None:
            return self._explicit_partition
        return super().partition_for_key(key)

    def _new_store_by_url(self, url: str | URL) -> StoreT:
        if not is_rocksdb(url):
            return super()._new_store_by_url(url)
        return PinnedPartitionRocksDBStore(
            url,
            self.app,
            self,
            table_name=self.name,
            key_type=self.key_type,
            key_serializer=self.key_serializer,
            value_serializer=self.value_serializer,
            value_type=self.value_type,
            loop=self.loop,
            options=self.options,
        )


class TableLike(Protocol):
    def get(self, key: Any, /) -> Any: ...

    def __setitem__(self, key: Any, value: Any, /) -> None: ...


class FeatureTable:
    """The faust table (or any mapping with `writing_to(partition)`) behind the features."""

    def __init__(self, table: TableLike, partitions: int) -> None:
        self.table = table
        self.partitions = partitions

    def get(self, key: str) -> Mapping[str, Any] | None:
        read = getattr(self.table, "read", None)
        value = self.table.get(key) if read is None else read(key, key_partition(key))
        return value if value else None

    def write(self, values: Mapping[str, tuple[Mapping[str, Any], int]]) -> None:
        by_partition: dict[int, list[tuple[str, Mapping[str, Any]]]] = {}
        for key, (value, partition) in values.items():
            by_partition.setdefault(partition, []).append((key, value))
        writing_to = getattr(self.table, "writing_to", None)
        if writing_to is None:
            raise TypeError("the feature table must be a PartitionedTable (App(Table=...))")
        for partition, items in by_partition.items():
            with writing_to(partition):
                for key, value in items:
                    self.table[key] = dict(value)


class BatchFeatures:
    """Features for the payments of one batch, in order; durable only after `apply`."""

    def __init__(self, table: FeatureTable) -> None:
        self._table = table
        self._pending: dict[str, tuple[Mapping[str, Any], int]] = {}
        self._engine = FeatureEngine(self, table.partitions)

    # StateStore, for the engine
    def get(self, key: str) -> Mapping[str, Any] | None:
        pending = self._pending.get(key)
        return pending[0] if pending is not None else self._table.get(key)

    def put(self, key: str, value: Mapping[str, Any], partition: int) -> None:
        self._pending[key] = (value, partition)

    def features(self, obs: Observation, partition: int) -> dict[str, float]:
        """This payment's features (from earlier payments only), then count it."""
        row = self._engine.features(obs)
        self._engine.observe(obs, partition)
        return row

    def apply(self) -> int:
        written = len(self._pending)
        self._table.write(self._pending)
        self._pending = {}
        return written
