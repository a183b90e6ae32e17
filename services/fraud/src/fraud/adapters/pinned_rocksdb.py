"""faust's RocksDB table store, filing each key under the partition the table pinned.

faust's own store files a write (and looks a key up) under the partition of faust's *current
event*. The feature table is written after the batch's database commit, when the current
event is some other payment, and each write is pinned to the stream partition of the payment
that caused it (`PartitionedTable.writing_to`): the changelog record goes there, so the
local database must too, or a restart finds the value under the wrong partition (or misses
it). Reads ignore the current event for the same reason and look in the database that holds
the key (each key lives in exactly one partition: see fraud.domain.features).

With this store a restart reads only the changelog written since the offsets kept in each
partition's database, instead of the whole compacted changelog (docs/performance.md).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from faust.stores.rocksdb import Store as RocksDBStore

from sanalpos_common.messaging.security import kafka_client_kwargs


class PinnedPartitionRocksDBStore(RocksDBStore):
    def _pinned_partition(self) -> int | None:
        pinned = getattr(self.table, "_explicit_partition", None)
        return pinned if isinstance(pinned, int) else None

    def _set(self, key: bytes, value: bytes | None) -> None:
        partition = self._pinned_partition()
        if partition is None:
            super()._set(key, value)
            return
        self._db_for_partition(partition).put(key, value)
        self._key_index[key] = partition

    def _get(self, key: bytes) -> bytes | None:
        partition = self._pinned_partition()
        if partition is not None:
            value: bytes | None = self._db_for_partition(partition).get(key)
            return value
        found = self._get_bucket_for_key(key)
        return None if found is None else found.value

    def read(self, key: Any, partition: int | None) -> Any | None:
        """The decoded value, or None: one lookup in `partition`'s database when the key's
        partition is known (None when this worker does not hold that partition), otherwise
        where the key index or the open databases have it. Mapping.get on the table costs
        two lookups for a hit (`in`, then the item) and probes every open database for a
        key of a partition it knows."""
        encoded = self._encode_key(key)
        if partition is None:
            raw = self._get(encoded)
        else:
            db = self._dbs.get(partition)
            raw = None if db is None else db.get(encoded)
        return None if raw is None else self._decode_value(raw)

    def _contains(self, key: bytes) -> bool:
        return self._get(key) is not None

    def _del(self, key: bytes) -> None:
        partition = self._pinned_partition()
        if partition is None:
            super()._del(key)
            return
        self._db_for_partition(partition).delete(key)
        self._key_index.pop(key, None)


def is_rocksdb(url: Any) -> bool:
    return str(url).startswith("rocksdb:")


CLUSTER_MARKER = "kafka-cluster-id"
APP_MARKER = "faust-app-id"


async def kafka_cluster_id(bootstrap_servers: str) -> str:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id="sanalpos-fraud-datadir",
        **kafka_client_kwargs(),
    )
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    return str(cluster["cluster_id"])


def forget_foreign_tables(datadir: Path, cluster_id: str, app_id: str) -> bool:
    """Drop faust's table databases when they mirror changelogs this app does not read: those
    of another Kafka cluster (or a wiped one), or of another faust app id.

    Each partition's database keeps the changelog offset it has read up to, and its path
    names only the table, not the app. Against a new cluster, or under a new app id (whose
    changelog topic is another one), those offsets point past the end: faust would keep the
    old values and skip the new records, or refuse to start (ConsistencyError). Only faust's
    `v<version>/tables` folders are removed, never anything else in the directory. Tables
    without both markers cannot be tied to a cluster and an app, and are dropped too. Returns
    whether anything was removed.
    """
    cluster_marker, app_marker = datadir / CLUSTER_MARKER, datadir / APP_MARKER
    known = tuple(
        m.read_text().strip() if m.exists() else None for m in (cluster_marker, app_marker)
    )
    if known == (cluster_id, app_id):
        return False
    stale = sorted(datadir.glob("v*/tables")) if datadir.exists() else []
    for tables in stale:
        shutil.rmtree(tables)
    datadir.mkdir(parents=True, exist_ok=True)
    cluster_marker.write_text(cluster_id + "\n")
    app_marker.write_text(app_id + "\n")
    return bool(stale)
