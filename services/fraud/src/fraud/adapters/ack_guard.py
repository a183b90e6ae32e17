"""Only a message we finished may be acked: faust also acks messages it skipped.

faust 0.15's `Stream` acks an event it *skipped* even on a `noack()` stream: an event taken
from a queue while flow control is suspended (a rebalance is revoking partitions) or one
fetched under an older consumer generation is dropped and acked (`value is skipped_value`
in `Stream._py_aiter`). During a revoke faust has just forgotten the partition's committed
offset, so the commit that `wait_empty` makes next takes such an ack at face value and
commits *past* every message before it that nobody processed — on the source topic the
repartitioned copy is never written, on the repartition topic the payment is never scored.
Seen in tests/integration/test_crash_recovery.py: every group offset at the log end, lag 0,
and 121 of 600 payments never decided.

`AckGuard` wraps the consumer's `ack`: for the guarded topics an ack counts only for a
message we released first (the repartition copy was produced, or its database transaction
committed, or it was dead-lettered). A refused ack leaves the offset uncommitted, so after
the rebalance the message is fetched again and handled.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

log = logging.getLogger(__name__)


class AckGuard:
    def __init__(self, topics: Collection[str]) -> None:
        self.topics = frozenset(topics)
        self.refused = 0
        self._released: set[tuple[str, int, int]] = set()

    def release(self, message: Any) -> None:
        """`message` is done: its ack may now count."""
        self._released.add((message.topic, message.partition, message.offset))

    def install(self, consumer: Any) -> None:
        original = consumer.ack

        def ack(message: Any) -> bool:
            if message.topic not in self.topics:
                return bool(original(message))
            key = (message.topic, message.partition, message.offset)
            if key not in self._released:
                self.refused += 1
                log.warning(
                    "refused faust's ack of unprocessed %s[%d]@%d (skipped during a rebalance;"
                    " it will be fetched again)",
                    *key,
                )
                return False
            self._released.discard(key)
            return bool(original(message))

        consumer.ack = ack
