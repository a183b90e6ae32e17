#!/usr/bin/env python3
"""CPU per feature read: fraud's FeatureTable over faust's RocksDB store, no Kafka, no service.

    python scripts/bench/feature_reads.py [--partitions 3] [--keys 3000] [--passes 5]

A throwaway data dir holds a PartitionedTable like fraud's: per partition, --keys shared keys
(`ip|...|p`), a third as many card keys and 20 category keys, each filed under its partition.
Then every key, and as many shared keys nobody wrote (a first payment from a new address),
is read --passes times in a shuffled order through `FeatureTable.get`, the call the feature
engine makes about 1 + 5 x partitions + 6 times per payment. Prints the process CPU time per
read. Run it on two commits to compare them; asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time

import faust

from fraud.adapters.feature_table import FeatureTable, PartitionedTable
from fraud.domain.features import card_key, category_key, shared_key


def filled_table(datadir: str, partitions: int, keys: int) -> tuple[PartitionedTable, list[str]]:
    app = faust.App(
        "feature-reads-bench", store="rocksdb://", datadir=datadir, Table=PartitionedTable
    )
    table = app.Table("features", default=None, partitions=partitions)
    assert isinstance(table, PartitionedTable)
    written: list[str] = []
    for partition in range(partitions):
        with table.writing_to(partition):
            for i in range(keys):
                key = shared_key("ip", f"10.0.{i // 256}.{i % 256}", partition)
                table.data[key] = {"w": {"10m": [[1, 2, 300]]}}
                written.append(key)
                if i % partitions == partition:
                    card = card_key(f"fingerprint-{i}")
                    table.data[card] = {"n": 1, "w": {}}
                    written.append(card)
            for code in range(20):
                table.data[category_key(code, partition)] = {"p": {"n": 1, "s": 100, "q": "1e4"}}
                written.append(category_key(code, partition))
    return table, written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--keys", type=int, default=3000)
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="feature-reads-") as datadir:
        table, written = filled_table(datadir, args.partitions, args.keys)
        unwritten = [
            shared_key("email", f"new-{i}@example.com", i % args.partitions)
            for i in range(args.keys)
        ]
        reads = written + unwritten
        random.Random(1).shuffle(reads)
        features = FeatureTable(table, args.partitions)
        started = time.process_time()
        found = 0
        for _ in range(args.passes):
            for key in reads:
                found += features.get(key) is not None
        spent = time.process_time() - started
    count = args.passes * len(reads)
    print(
        f"{1e6 * spent / count:.2f} us CPU per read: {count} reads ({found} found) over"
        f" {args.partitions} partitions"
    )


if __name__ == "__main__":
    main()
