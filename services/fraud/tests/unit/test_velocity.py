"""Card velocity as buckets inside the card's feature value (fraud.domain.velocity and
fraud.adapters.velocity), checked against what the faust hopping-window tables counted
before: `HoppingReference` below is that old adapter's arithmetic, with faust's own
HoppingWindow (ranges written per payment, the earliest window containing t read)."""

from __future__ import annotations

import json
import random
import zlib
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from faust.windows import HoppingWindow

from fraud.adapters.feature_table import BatchFeatures, FeatureTable
from fraud.adapters.velocity import VELOCITY_FIELD, BatchVelocity
from fraud.config import FraudSettings
from fraud.domain.features import card_key
from fraud.domain.features_live import observation_of
from fraud.domain.scoring import PaymentFacts, ScoringRules, Velocity, assess
from fraud.domain.velocity import DEFAULT_SPEC, WindowSpec, add, count
from sanalpos_common.schemas.events import EncryptedCard, PaymentInitiated

T0 = 1_700_000_400.0  # a multiple of 120 s and 600 s
PARTITIONS = 3


class HoppingReference:
    """The hopping-window velocity as it was (faust's window arithmetic, batch overlay)."""

    def __init__(self) -> None:
        self.windows = (HoppingWindow(600, 120, 1200), HoppingWindow(3600, 600, 7200))
        self.table: dict[tuple[int, str, tuple[float, float]], int] = defaultdict(int)
        self.pending: dict[tuple[int, str, tuple[float, float]], int] = defaultdict(int)

    def velocity(self, card: str, at: float) -> Velocity:
        counts = []
        for index, window in enumerate(self.windows):
            trailing = (index, card, tuple(window.earliest(at)))
            counts.append(self.table.get(trailing, 0) + self.pending.get(trailing, 0) + 1)
        return Velocity(card_10m=counts[0], card_1h=counts[1])

    def count(self, card: str, at: float) -> None:
        for index, window in enumerate(self.windows):
            for window_range in window.ranges(at):
                self.pending[(index, card, tuple(window_range))] += 1

    def apply(self) -> None:
        for key, n in self.pending.items():
            self.table[key] += n
        self.pending.clear()


class FakePartitionedTable(dict[str, Any]):
    """A dict recording the changelog partition of every write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[str, int]] = []
        self._partition: int | None = None

    @contextmanager
    def writing_to(self, partition: int) -> Iterator[None]:
        self._partition = partition
        try:
            yield
        finally:
            self._partition = None

    def __setitem__(self, key: str, value: Any) -> None:
        assert self._partition is not None, "writes must name their changelog partition"
        self.writes.append((key, self._partition))
        super().__setitem__(key, value)

    def recovered(self) -> FakePartitionedTable:
        """What a restarted worker rebuilds from the changelog (JSON values)."""
        fresh = FakePartitionedTable()
        fresh.update({k: json.loads(json.dumps(v)) for k, v in self.items()})
        return fresh


def ledger_over(table: FakePartitionedTable) -> BatchVelocity:
    return BatchVelocity(BatchFeatures(FeatureTable(table, PARTITIONS)), DEFAULT_SPEC)


def payment(card: str, at: float, amount: int) -> PaymentInitiated:
    return PaymentInitiated(
        payment_id=uuid4(),
        merchant_id="mer_x",
        amount=amount,
        currency="TRY",
        capture=True,
        installments=1,
        card=EncryptedCard(
            pan_ciphertext="x",
            fingerprint=card,
            bin="41111111",
            last4="1111",
            exp_month=12,
            exp_year=2030,
            brand="visa",
        ),
        created_at=datetime.fromtimestamp(at, UTC),
    )


def traffic(rng: random.Random, n: int, late_s: int) -> list[tuple[str, float, int]]:
    """n payments of a few busy cards, created_at drifting forward, each up to late_s late."""
    cards = [f"card-{i}" for i in range(4)]
    out, clock = [], T0 + 37.5
    for _ in range(n):
        clock += rng.expovariate(1 / 15)
        amount = rng.choice([150, 5_000, 120_000, 1_500_000])
        out.append((rng.choice(cards), clock - rng.uniform(0, late_s), amount))
    return out


def run_both(
    payments: list[tuple[str, float, int]], rng: random.Random, restart_every: int = 0
) -> tuple[list[Any], list[Any], FakePartitionedTable]:
    """Scores each payment with the old velocity and the new one, in random batches."""
    rules = ScoringRules()
    reference, table = HoppingReference(), FakePartitionedTable()
    old, new = [], []
    i = batches = 0
    while i < len(payments):
        batch = payments[i : i + rng.randint(1, 12)]
        ledger = ledger_over(table)
        for card, at, amount in batch:
            partition = zlib.crc32(card.encode()) % PARTITIONS
            facts = PaymentFacts(amount, "TRY")
            expected = reference.velocity(card, at)
            reference.count(card, at)
            got = ledger.velocity(card, at)
            ledger.count(card, at, partition)
            ledger.features(observation_of(payment(card, at, amount)), partition)
            old.append((expected, assess(facts, expected, rules)))
            new.append((got, assess(facts, got, rules)))
        reference.apply()
        ledger.apply()
        i += len(batch)
        batches += 1
        if restart_every and batches % restart_every == 0:
            table = table.recovered()
    return old, new, table


@pytest.mark.parametrize("late_s", [0, 300, 600])
def test_same_counts_and_scores_as_the_hopping_windows(late_s: int) -> None:
    rng = random.Random(late_s)
    old, new, _ = run_both(traffic(rng, 800, late_s), rng, restart_every=7)
    assert new == old
    velocities = [v for v, _ in new]
    # the sequence reached every velocity rule: raise and decline bands of both windows
    assert max(v.card_10m for v in velocities) > 8
    assert max(v.card_1h for v in velocities) > 20
    assert {a.decision for _, a in new} == {a.decision for _, a in old}
    assert len({a.decision for _, a in new}) == 3


def test_one_changelog_write_per_card_per_batch() -> None:
    table = FakePartitionedTable()
    ledger = ledger_over(table)
    for offset in (0, 1, 200, 3000):
        ledger.count("card-a", T0 + offset, 1)
    ledger.count("card-b", T0, 2)
    assert table.writes == []  # nothing before the batch's commit
    ledger.apply()
    assert sorted(table.writes) == [(card_key("card-a"), 1), (card_key("card-b"), 2)]


def test_a_batch_sees_its_own_earlier_payments() -> None:
    table = FakePartitionedTable()
    ledger = ledger_over(table)
    assert ledger.velocity("card", T0) == Velocity(1, 1)
    ledger.count("card", T0, 2)
    ledger.count("card", T0 + 30, 2)
    assert ledger.velocity("card", T0 + 60) == Velocity(3, 3)
    assert ledger.velocity("other", T0 + 60) == Velocity(1, 1)
    ledger.apply()
    assert ledger_over(table).velocity("card", T0 + 60) == Velocity(3, 3)


def test_a_retried_batch_counts_nothing_twice() -> None:
    table = FakePartitionedTable()
    ledger_over(table).count("card", T0, 0)  # the transaction failed: never applied
    retried = ledger_over(table)
    assert retried.velocity("card", T0) == Velocity(1, 1)
    retried.count("card", T0, 0)
    retried.apply()
    assert ledger_over(table).velocity("card", T0) == Velocity(2, 2)


def test_the_features_and_the_counts_share_the_cards_value() -> None:
    table = FakePartitionedTable()
    ledger = ledger_over(table)
    ledger.count("card", T0, 0)
    row = ledger.features(observation_of(payment("card", T0, 5_000)), 0)
    assert row["card_prev_count"] == 0
    ledger.apply()
    value = table[card_key("card")]
    assert value[VELOCITY_FIELD] == {"10m": [[int(T0 // 120), 1]], "1h": [[int(T0 // 600), 1]]}
    assert value["p"]["n"] == 1


SHORT = WindowSpec("10m", 600, 120)


def test_trailing_window_is_the_last_size_over_step_buckets() -> None:
    buckets: list[list[int]] = []
    for offset in (0, 150, 290, 430):  # four 2-minute steps
        buckets = add(buckets, SHORT, T0 + offset)
    assert count(buckets, SHORT, T0 + 430) == 4
    assert count(buckets, SHORT, T0 + 600) == 3  # T0's step has left (8-10 min of history)
    assert count(buckets, SHORT, T0 + 1200) == 0
    assert count(buckets, SHORT, T0 - 1) == 0  # later buckets are never summed


def test_an_out_of_order_payment_goes_to_its_own_bucket() -> None:
    buckets = add(add([], SHORT, T0 + 500), SHORT, T0 + 10)
    assert buckets == [[int(T0 // 120), 1], [int((T0 + 500) // 120), 1]]
    assert count(buckets, SHORT, T0 + 20) == 1
    assert count(buckets, SHORT, T0 + 510) == 2


def test_a_burst_of_very_old_payments_counts_among_itself() -> None:
    """A replayed 2024 burst on a card that has recent payments (the integration test
    test_event_time_windows_use_created_at, run after other tests used the same card)."""
    now, long_ago = T0 + 90 * 86400, T0
    buckets = add(add([], SHORT, now), SHORT, now + 30)
    for n in range(4):
        assert count(buckets, SHORT, long_ago) == n
        buckets = add(buckets, SHORT, long_ago)
    assert count(buckets, SHORT, now + 60) == 2  # the old burst is not in today's window
    buckets = add(buckets, SHORT, now + 60)
    assert all(b >= int(now // 120) for b, _ in buckets)  # ... and is pruned once we move on


def test_buckets_stay_bounded_whatever_the_order() -> None:
    rng = random.Random(3)
    buckets: list[list[int]] = []
    for i in range(5000):
        buckets = add(buckets, SHORT, T0 + i * 37)
        assert len(buckets) <= 2 * SHORT.span + 1  # in order: 2 x size / step + 1
    for _ in range(5000):
        buckets = add(buckets, SHORT, T0 + rng.uniform(-1e7, 1e7))
        assert len(buckets) <= SHORT.max_buckets
    assert buckets == sorted(buckets)


def test_settings_build_the_velocity_spec() -> None:
    spec = FraudSettings(short_window_step_s=300, long_window_step_s=900).velocity_spec()
    assert (spec.short.span, spec.long.span) == (2, 4)
    with pytest.raises(ValueError):
        WindowSpec("bad", 600, 7)
