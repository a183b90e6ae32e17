"""AckGuard against faust's own commit arithmetic (`Consumer._new_offset`), no Kafka.

The case that lost 2 of 600 payments in a clean-clone `make test`: a partition whose group
offset is 0 (or was never committed) has no committed offset inside faust, so a run of
acked messages was committed even when the first messages of the partition were missing.
"""

from __future__ import annotations

import types
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import pytest
from aiokafka import TopicPartition
from faust.transport.consumer import Consumer
from faust.types import TP
from intervaltree import IntervalTree

from fraud.adapters.ack_guard import AckGuard

GUARDED = "payment.initiated.v1"
OTHER = "other.v1"


class FakeConsumer:
    """The attributes AckGuard wraps, with faust's real `_new_offset` and `perform_seek`."""

    def __init__(self, committed: Mapping[TP, int | None]) -> None:
        self._acked: defaultdict[TP, list[int]] = defaultdict(list)
        self._acked_index: defaultdict[TP, set[int]] = defaultdict(set)
        self._gap: defaultdict[TP, IntervalTree] = defaultdict(IntervalTree)
        self._committed_offset: defaultdict[TP, int | None] = defaultdict(lambda: None)
        self._read_offset: defaultdict[TP, int | None] = defaultdict(lambda: None)
        self._group_offsets = dict(committed)
        self._new_offset = types.MethodType(Consumer._new_offset, self)
        self.perform_seek = types.MethodType(Consumer.perform_seek, self)

    async def seek_to_committed(self) -> Mapping[TP, int | None]:
        return dict(self._group_offsets)

    def ack(self, message: Any) -> bool:
        self._acked[message.tp].append(message.offset)
        self._acked_index[message.tp].add(message.offset)
        return True

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        raise AssertionError("not used here")


def message(tp: TP, offset: int) -> Any:
    return types.SimpleNamespace(topic=tp.topic, partition=tp.partition, offset=offset, tp=tp)


async def installed(
    committed: Mapping[TP, int | None], log_start: Mapping[TP, int]
) -> tuple[FakeConsumer, AckGuard]:
    async def starts(tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: log_start[TP(tp.topic, tp.partition)] for tp in tps}

    consumer = FakeConsumer(committed)
    guard = AckGuard((GUARDED,), log_start=starts)
    guard.install(consumer)
    await consumer.perform_seek()
    return consumer, guard


def ack(consumer: FakeConsumer, guard: AckGuard, tp: TP, *offsets: int) -> None:
    for offset in offsets:
        guard.release(message(tp, offset))
        assert consumer.ack(message(tp, offset))


@pytest.mark.parametrize("group_offset", [0, None], ids=["committed-at-0", "never-committed"])
async def test_a_missing_first_message_holds_the_commit(group_offset: int | None) -> None:
    tp = TP(GUARDED, 0)
    consumer, guard = await installed({tp: group_offset}, log_start={tp: 0})
    assert consumer._committed_offset[tp] is None  # what faust itself knows: nothing

    ack(consumer, guard, tp, 1, 2, 3)
    assert consumer._new_offset(tp) is None  # offset 0 was never processed

    ack(consumer, guard, tp, 0)
    assert consumer._new_offset(tp) == 4


async def test_the_head_of_a_never_committed_partition_is_its_log_start() -> None:
    tp = TP(GUARDED, 1)
    consumer, guard = await installed({tp: None}, log_start={tp: 40})

    ack(consumer, guard, tp, 41, 42)
    assert consumer._new_offset(tp) is None
    ack(consumer, guard, tp, 40)
    assert consumer._new_offset(tp) == 43


async def test_a_committed_offset_of_faust_wins_over_the_recorded_head() -> None:
    tp = TP(GUARDED, 2)
    consumer, guard = await installed({tp: 0}, log_start={tp: 0})
    consumer._committed_offset[tp] = 10  # faust committed 10 since

    ack(consumer, guard, tp, 10, 11)
    assert consumer._new_offset(tp) == 12


async def test_unguarded_topics_keep_fausts_rules() -> None:
    tp = TP(OTHER, 0)
    consumer, _ = await installed({tp: 0}, log_start={})

    assert consumer.ack(message(tp, 1))
    assert consumer._new_offset(tp) == 2
