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

Two more of faust's consumer rules can commit past a message nobody processed, and are
narrowed the same way on the guarded topics (whose offsets are contiguous: no transactions,
no compaction):
- `_add_gap`: when a fetched offset jumps past faust's read offset, faust marks the offsets
  in between as done (meant for transaction markers). On our topics such a jump means faust
  dropped fetched records in memory, so nothing is marked; the commit waits, and the stream's
  stall watchdog seeks the partition back to its committed offset.
- `_new_offset` commits a run of acked offsets even when the offset right at the committed
  position is missing (faust-streaming #606). Here a commit needs the committed offset itself
  acked first.
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
        self.gaps_refused = 0
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
        self._strict_commits(consumer)

    def _strict_commits(self, consumer: Any) -> None:
        add_gap, new_offset = consumer._add_gap, consumer._new_offset

        async def no_gap_on_guarded(tp: Any, offset_from: int, offset_to: int) -> None:
            if tp.topic not in self.topics:
                await add_gap(tp, offset_from, offset_to)
                return
            self.gaps_refused += 1
            log.warning(
                "offsets %d..%d of %s[%d] were fetched but never delivered; not treated as done",
                offset_from,
                offset_to - 1,
                tp.topic,
                tp.partition,
            )

        def head_must_be_acked(tp: Any) -> int | None:
            if tp.topic in self.topics:
                acked, committed = consumer._acked.get(tp), consumer._committed_offset.get(tp)
                if acked and committed is not None and min(acked) > committed:
                    return None  # the message at the committed offset is not done yet
            result: int | None = new_offset(tp)
            return result

        consumer._add_gap = no_gap_on_guarded
        consumer._new_offset = head_must_be_acked
