"""Train/serve parity: the live path (payment.initiated -> observation -> per-batch overlay
over a partitioned changelog table) gives exactly the offline features of the same rows."""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pytest

from fraud.adapters.feature_table import BatchFeatures, FeatureTable
from fraud.domain.features_live import observation_of
from fraud.model.dataset import Labeled, default_data_path, read_csv
from fraud.model.sparkov import SparkovRow, merchant_id, occurred_at, risk_context
from sanalpos_common.schemas.events import EncryptedCard, PaymentInitiated, RiskContext

ROWS = 1500
PARTITIONS = 3


class FakePartitionedTable(dict[str, Any]):
    """A dict that records which changelog partition each key was last written to."""

    def __init__(self) -> None:
        super().__init__()
        self.partition_of: dict[str, int] = {}
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
        self.partition_of[key] = self._partition
        super().__setitem__(key, value)

    def recovered(self) -> FakePartitionedTable:
        """What a restarted worker rebuilds from the changelog: the JSON of every key."""
        fresh = FakePartitionedTable()
        for key, value in self.items():
            with fresh.writing_to(self.partition_of[key]):
                fresh[key] = json.loads(json.dumps(value))
        return fresh


def payment_of(row: SparkovRow) -> tuple[PaymentInitiated, int]:
    fingerprint = hashlib.sha256(row.cc_num.encode()).hexdigest()
    card = EncryptedCard(
        pan_ciphertext="x",
        fingerprint=fingerprint,
        bin="424242",
        last4="0000",
        exp_month=12,
        exp_year=2030,
        brand="visa",
    )
    payment = PaymentInitiated(
        payment_id=uuid.uuid4(),
        merchant_id=merchant_id(row.merchant),
        amount=row.amount_minor,
        currency="USD",
        capture=True,
        installments=1,
        card=card,
        created_at=datetime.fromisoformat(occurred_at(row)),
        context=RiskContext.model_validate(risk_context(row)),
    )
    return payment, int(fingerprint, 16) % PARTITIONS


@pytest.fixture(scope="module")
def data() -> Labeled:
    return read_csv(default_data_path(), limit=ROWS)


def live_features(data: Labeled, restart_every: int | None = None) -> list[dict[str, float]]:
    rng = random.Random(7)
    fake = FakePartitionedTable()
    out: list[dict[str, float]] = []
    rows = list(data.rows)
    i = 0
    batches = 0
    while i < len(rows):
        batch = rows[i : i + rng.randint(1, 40)]
        ledger = BatchFeatures(FeatureTable(fake, PARTITIONS))
        for row in batch:
            payment, partition = payment_of(row)
            out.append(ledger.features(observation_of(payment), partition))
        ledger.apply()
        i += len(batch)
        batches += 1
        if restart_every and batches % restart_every == 0:
            fake = fake.recovered()
    return out


def _same(a: dict[str, float], b: dict[str, float]) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)  # NaN == NaN here


def test_live_features_equal_the_offline_ones(data: Labeled) -> None:
    offline = data.feature_rows()
    live = live_features(data)
    assert len(live) == len(offline) == ROWS
    mismatched = [i for i, (a, b) in enumerate(zip(live, offline, strict=True)) if not _same(a, b)]
    assert mismatched == []
    # the replay exercised history: cards seen before, merchants, category profiles
    assert max(row["card_prev_count"] for row in live) >= 3
    assert max(row["merchant_count_24h"] for row in live) >= 1
    assert all(row["category_amount_ratio"] == row["category_amount_ratio"] for row in live[50:])


def test_features_survive_a_restart_from_the_changelog(data: Labeled) -> None:
    """Rebuilding the table from its changelog every few batches changes nothing."""
    assert [json.dumps(r, sort_keys=True) for r in live_features(data, restart_every=5)] == [
        json.dumps(r, sort_keys=True) for r in data.feature_rows()
    ]


def test_nothing_is_written_before_apply(data: Labeled) -> None:
    fake = FakePartitionedTable()
    ledger = BatchFeatures(FeatureTable(fake, PARTITIONS))
    payment, partition = payment_of(data.rows[0])
    ledger.features(observation_of(payment), partition)
    second = ledger.features(observation_of(payment), partition)
    assert second["card_prev_count"] == 1  # the batch sees its own earlier payment
    assert fake == {}
    assert ledger.apply() > 0
    card_keys = [k for k in fake if k.startswith("card|")]
    assert len(card_keys) == 1 and fake.partition_of[card_keys[0]] == partition
