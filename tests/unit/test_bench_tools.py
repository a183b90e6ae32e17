"""The pure pieces of `make bench` (scripts/bench/): percentiles, the approving card numbers,
/proc CPU accounting and the Kafka record deltas."""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from bench import cards, cpu, offsets, stats

# --- percentiles ---------------------------------------------------------------------------


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 101))  # 1..100
    random.Random(7).shuffle(values)
    assert stats.percentile(values, 50) == 50
    assert stats.percentile(values, 99) == 99
    assert stats.percentile(values, 100) == 100
    assert stats.percentile(values, 0) == 1
    assert stats.percentile([3.0, 1.0, 2.0], 50) == 2.0


def test_p99_of_a_small_sample_is_its_maximum() -> None:
    assert stats.percentile([0.01] * 9 + [5.0], 99) == 5.0


def test_percentile_of_nothing_is_nan_and_out_of_range_is_refused() -> None:
    assert math.isnan(stats.percentile([], 50))
    assert stats.latency_summary([])["p50_ms"] is None
    with pytest.raises(ValueError):
        stats.percentile([1.0], 101)


def test_latency_summary_is_in_milliseconds() -> None:
    summary = stats.latency_summary([0.010, 0.020, 0.030, 0.040])
    assert summary == {"count": 4, "p50_ms": 20.0, "p99_ms": 40.0, "max_ms": 40.0}
    assert stats.ratio(50.0, 200.0) == 0.25
    assert stats.ratio(50.0, 0.0) is None


# --- cards -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("4111111111111111", True),
        ("5555555555554444", True),
        ("4000000000009995", True),
        ("4111111111111112", False),
        ("79927398713", True),
        ("79927398710", False),
    ],
)
def test_luhn(number: str, valid: bool) -> None:
    assert cards.luhn_valid(number) is valid


def test_generated_cards_are_fresh_luhn_valid_and_approving() -> None:
    rng = random.Random(1)
    numbers = [cards.approving_card(rng) for _ in range(2000)]
    assert all(len(n) == 16 and cards.luhn_valid(n) and cards.approves(n) for n in numbers)
    assert len(set(numbers)) == len(numbers)


def test_declining_ranges_do_not_approve() -> None:
    for prefix in ("40000099", "40000002", "40000069"):
        partial = prefix + "1234567"
        assert not cards.approves(partial + cards.luhn_check_digit(partial))
    assert not cards.approves("4000000000000002")


# --- CPU accounting ----------------------------------------------------------------------

# /proc/<pid>/stat of a process whose name holds spaces and a ')': fields are counted from
# the last ')'. ppid 1, session 4242, utime 150, stime 50.
STAT = (
    "4242 (python (x) y) S 1 4242 4242 0 -1 4194560 5000 0 0 0 150 50 0 0 20 0 3 0 "
    "1000 100000000 5000 18446744073709551615 1 1 0 0 0 0 0 16781312 16386 0 0 0 17 1 0 0"
)


def test_parse_stat_counts_fields_from_the_last_parenthesis() -> None:
    parsed = cpu.parse_stat(STAT)
    assert parsed == cpu.ProcStat(pid=4242, ppid=1, session=4242, cpu_ticks=200)


def test_machine_busy_excludes_idle_and_iowait() -> None:
    text = "cpu  100 5 50 800 20 3 2 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"
    busy, total = cpu.parse_proc_stat_total(text)
    assert (busy, total) == (160, 980)


def test_group_ticks_sums_sessions_and_splits_postgres() -> None:
    pids = cpu.StackPids(services={"intake": 10}, postmaster=20, kafka=30)
    procs = [
        cpu.ProcStat(10, 1, 10, 100),  # intake itself
        cpu.ProcStat(11, 10, 10, 40),  # its child, same session
        cpu.ProcStat(20, 1, 20, 5),  # postmaster
        cpu.ProcStat(21, 20, 20, 70),  # a backend
        cpu.ProcStat(30, 1, 30, 900),  # the broker
        cpu.ProcStat(99, 1, 99, 12345),  # someone else's process
    ]
    ticks = cpu.group_ticks(procs, pids)
    assert ticks == {"intake": 140, "kafka broker (JVM)": 900, "pg:20": 5, "pg:21": 70}
    later = {**ticks, "intake": 190, "pg:21": 95, "pg:22": 8}  # pg:22 born in between
    spent = cpu.attribute_postgres(cpu.delta(ticks, later), {21: "sanalpos_intake"})
    assert spent == {
        "intake": 50,
        "kafka broker (JVM)": 0,
        "postgres (background)": 8,
        "postgres sanalpos_intake": 25,
    }


def test_records_between_ignores_idle_topics_and_sorts() -> None:
    before = {"a": 10, "b": 5, "c": 7}
    after = {"a": 12, "b": 25, "c": 7, "new": 3}
    assert list(offsets.records_between(before, after).items()) == [("b", 20), ("new", 3), ("a", 2)]
