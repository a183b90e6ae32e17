"""The RocksDB table store files each key under the partition the table pinned, and finds it
again in a fresh process; the data dir is emptied when it mirrors another Kafka cluster."""

from __future__ import annotations

from pathlib import Path

import faust
from faust.types import TP

from fraud.adapters.feature_table import FeatureTable, PartitionedTable
from fraud.adapters.pinned_rocksdb import (
    APP_MARKER,
    CLUSTER_MARKER,
    PinnedPartitionRocksDBStore,
    forget_foreign_tables,
)


def _table(datadir: Path) -> PartitionedTable:
    app = faust.App("pinned-test", store="rocksdb://", datadir=str(datadir), Table=PartitionedTable)
    table = app.Table("features", default=None, partitions=3)
    assert isinstance(table, PartitionedTable)
    return table


def test_a_pinned_write_lands_in_that_partitions_database(tmp_path: Path) -> None:
    table = _table(tmp_path)
    store = table.data
    assert isinstance(store, PinnedPartitionRocksDBStore)
    with table.writing_to(2):
        store["card|abc"] = {"n": 3}
    assert set(store._dbs) == {2}
    with table.writing_to(1):
        assert store.get("card|abc") is None, "partition 1 does not hold the key"
    # No current event and no pin (the batch is scored after the commit): found where it is.
    assert store["card|abc"] == {"n": 3}
    assert "card|abc" in store
    assert "card|other" not in store


def test_a_feature_read_looks_only_in_the_partition_its_key_names(tmp_path: Path) -> None:
    table = _table(tmp_path)
    store = table.data
    with table.writing_to(2):
        store["ip|1.2.3.4|2"] = {"w": {"1": 5}}
        store["card|abc"] = {"n": 3}
    with table.writing_to(0):
        store["ip|1.2.3.4|1"] = {"w": {"1": 9}}  # filed under a partition its name does not say
    features = FeatureTable(table, partitions=3)
    assert features.get("ip|1.2.3.4|2") == {"w": {"1": 5}}
    assert features.get("ip|1.2.3.4|1") is None, "partition 1 was never this worker's"
    assert features.get("card|abc") == {"n": 3}, "a card's key names no partition: searched"
    assert features.get("category|7|0") is None
    assert set(store._dbs) == {0, 2}, "a read opens no database of a partition not held"


def test_a_new_process_reads_what_the_last_one_wrote(tmp_path: Path) -> None:
    first = _table(tmp_path)
    with first.writing_to(0):
        first.data["ip|1.2.3.4|0"] = {"w": {"1": 2}}
    first.data.set_persisted_offset(TP(first.changelog_topic.get_topic_name(), 0), 41)
    for db in first.data._dbs.values():
        db.close()

    again = _table(tmp_path)
    for partition in range(3):
        again.data._db_for_partition(partition)
    assert again.data["ip|1.2.3.4|0"] == {"w": {"1": 2}}
    assert again.data.persisted_offset(TP(again.changelog_topic.get_topic_name(), 0)) == 41
    assert again.data.persisted_offset(TP(again.changelog_topic.get_topic_name(), 1)) is None


def test_tables_of_another_cluster_are_dropped(tmp_path: Path) -> None:
    datadir = tmp_path / "faust"
    assert forget_foreign_tables(datadir, "cluster-a", "app") is False, "nothing to remove"
    tables = datadir / "v1" / "tables"
    (tables / "features-0.db").mkdir(parents=True)
    (datadir / "service.log").write_text("not faust's")
    assert forget_foreign_tables(datadir, "cluster-a", "app") is False, "same cluster: kept"
    assert (tables / "features-0.db").exists()

    assert forget_foreign_tables(datadir, "cluster-b", "app") is True
    assert not tables.exists()
    assert (datadir / "service.log").read_text() == "not faust's", "only faust's tables go"
    assert (datadir / CLUSTER_MARKER).read_text().strip() == "cluster-b"


def test_tables_of_another_app_id_are_dropped(tmp_path: Path) -> None:
    """The databases' paths name the table, not the app: under a new app id (another
    changelog topic) their offsets would point past the new changelog's end."""
    tables = tmp_path / "v1" / "tables"
    assert forget_foreign_tables(tmp_path, "cluster-a", "sanalpos-fraud") is False
    (tables / "features-0.db").mkdir(parents=True)
    assert forget_foreign_tables(tmp_path, "cluster-a", "sanalpos-fraud") is False
    assert (tables / "features-0.db").exists()

    assert forget_foreign_tables(tmp_path, "cluster-a", "sanalpos-fraud-eval-1a3a41") is True
    assert not tables.exists()
    assert (tmp_path / APP_MARKER).read_text().strip() == "sanalpos-fraud-eval-1a3a41"
    assert (tmp_path / CLUSTER_MARKER).read_text().strip() == "cluster-a"


def test_tables_without_both_markers_are_not_trusted(tmp_path: Path) -> None:
    """Tables written before the markers existed cannot be tied to a cluster and an app."""
    (tmp_path / "v1" / "tables").mkdir(parents=True)
    assert forget_foreign_tables(tmp_path, "cluster-a", "app") is True
    assert not (tmp_path / "v1" / "tables").exists()

    (tmp_path / "v1" / "tables").mkdir(parents=True)
    (tmp_path / APP_MARKER).unlink()  # a data dir from before the app id marker
    assert forget_foreign_tables(tmp_path, "cluster-a", "app") is True
    assert not (tmp_path / "v1" / "tables").exists()
