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
- faust keeps no committed offset for a partition whose group offset is 0 or was never
  committed (`perform_seek` maps 0 to None), and with none, both its own head check and the
  one above were skipped: a partition that starts at offset 0 (a fresh repartition topic, or
  a fresh source topic on a new cluster) could have its first messages committed past.
  Seen in a clean-clone `make test`: 598 of 600 payments decided, lag 0. The guard therefore
  records where each guarded partition really starts when faust seeks to the committed
  offsets (the committed offset, or the log start when there is none) and uses that as the
  head until faust has a committed offset of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

from aiokafka import TopicPartition

log = logging.getLogger(__name__)


LogStartOffsets = Callable[[list[TopicPartition]], Awaitable[Mapping[TopicPartition, int]]]


class AckGuard:
    def __init__(self, topics: Collection[str], log_start: LogStartOffsets | None = None) -> None:
        self.topics = frozenset(topics)
        self.refused = 0
        self.gaps_refused = 0
        self._released: set[tuple[str, int, int]] = set()
        self._log_start = log_start
        self._head: dict[tuple[str, int], int] = {}

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
        self._note_heads(consumer)
        self._strict_commits(consumer)

    def _note_heads(self, consumer: Any) -> None:
        seek_to_committed = consumer.seek_to_committed

        async def seek_and_note_heads() -> Mapping[Any, int | None]:
            offsets: Mapping[Any, int | None] = await seek_to_committed()
            await self._record_heads(offsets)
            return offsets

        consumer.seek_to_committed = seek_and_note_heads

    async def _record_heads(self, offsets: Mapping[Any, int | None]) -> None:
        """Where each guarded partition resumes: its committed offset, else its log start."""
        guarded = {
            (tp.topic, tp.partition): o for tp, o in offsets.items() if tp.topic in self.topics
        }
        uncommitted = [TopicPartition(t, p) for (t, p), o in guarded.items() if o is None or o < 0]
        starts: Mapping[TopicPartition, int] = {}
        if uncommitted and self._log_start is not None:
            try:
                starts = await self._log_start(uncommitted)
            except Exception as exc:  # no head known: commits behave as before for these
                log.warning("log start offsets unavailable (%s)", type(exc).__name__)
            else:
                log.info(
                    "no committed offset; commits wait for the log start: %s",
                    ", ".join(
                        f"{tp.topic}[{tp.partition}]@{o}" for tp, o in sorted(starts.items())
                    ),
                )
        for key, offset in guarded.items():
            head = (
                offset if offset is not None and offset >= 0 else starts.get(TopicPartition(*key))
            )
            if head is None:
                self._head.pop(key, None)
            else:
                self._head[key] = head

    def _committed(self, consumer: Any, tp: Any) -> int | None:
        committed: int | None = consumer._committed_offset.get(tp)
        if committed is None:  # faust forgets 0 and "never committed"; our head does not
            return self._head.get((tp.topic, tp.partition))
        return committed

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
                acked, committed = consumer._acked.get(tp), self._committed(consumer, tp)
                if acked and committed is not None and min(acked) > committed:
                    return None  # the message at the committed offset is not done yet
            result: int | None = new_offset(tp)
            return result

        consumer._add_gap = no_gap_on_guarded
        consumer._new_offset = head_must_be_acked
