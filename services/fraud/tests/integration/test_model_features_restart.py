"""Streaming model features survive a restart: the feature table is rebuilt from its
changelog, so a card's history (count, windows, amount profile) carries on after a SIGKILL,
and every decision stores the features it was scored with (what `train --data history`
reads)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from .conftest import FraudService, KafkaIO, fraud_service, wait_for

PAN = "4242424242424242"
T0 = datetime(2021, 3, 4, 10, 0, tzinfo=UTC)


async def _decision_features(fraud: FraudService, payment_id: uuid.UUID) -> dict[str, Any]:
    """This service's own decision (another fraud process may score the same payments)."""

    async def decided() -> Any:
        return await fraud.decision(payment_id)

    row = await wait_for(decided, timeout=60)
    attributes = row["attributes"]
    attributes = json.loads(attributes) if isinstance(attributes, str) else attributes
    return dict(attributes["features"])


async def test_card_history_carries_on_after_a_sigkill(kafka_io: KafkaIO, tmp_path: Path) -> None:
    async with fraud_service(
        kafka_io, tmp_path, "features", session_timeout_s="6", heartbeat_interval_s="1"
    ) as fraud:
        amounts = [1_000, 3_000, 2_000, 4_000]
        for i, amount in enumerate(amounts):  # one at a time, two minutes apart (event time)
            envelope = fraud.payments.envelope(
                pan=PAN, amount=amount, currency="USD", created_at=T0 + timedelta(minutes=2 * i)
            )
            await fraud.publish(envelope)
            await _decision_features(fraud, envelope.payload.payment_id)
        last = await _decision_features(fraud, envelope.payload.payment_id)
        assert last["card_prev_count"] == 3 and last["card_count_10m"] == 3

        await fraud.service.kill()
        await fraud.service.start()

        after = fraud.payments.envelope(
            pan=PAN, amount=10_000, currency="USD", created_at=T0 + timedelta(minutes=9)
        )
        await fraud.publish(after)
        features = await _decision_features(fraud, after.payload.payment_id)
        assert features["card_prev_count"] == 4
        assert features["card_count_10m"] == 4  # minutes 0, 2, 4, 6 are all within 10 min
        assert features["card_sum_24h"] == 100.0
        assert features["card_amount_ratio"] == pytest.approx(10_000 / 2_500)
        assert features["merchant_count_1h"] == 4
