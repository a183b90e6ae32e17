"""Per-card velocity counts kept inside the card's feature-table value, in event time.

Before, each of the two windows was a faust hopping-window table: every payment wrote one
changelog record per window it fell in (size / step: 5 for 10 min, 6 for 1 h). Now the
counts are step buckets (fraud.domain.velocity, the same arithmetic) in the `"v"` field of
the card's value in the `features` table (`card|<fingerprint>`), which the streaming model
features write for every payment anyway: a payment costs one changelog record for its
card, whatever the number of windows, and the value stays bounded (old buckets are pruned
when the card is written).

Reads and writes go through the batch's feature overlay (`BatchFeatures`): a later payment
of the batch sees the earlier ones, and nothing reaches the table (or its changelog) before
the batch's database transaction committed (`apply`), so a redelivered message is never
counted twice and a batch that is retried starts from a fresh overlay.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fraud.adapters.feature_table import BatchFeatures
from fraud.domain.features import Observation, card_key
from fraud.domain.scoring import Velocity
from fraud.domain.velocity import DEFAULT_SPEC, VelocitySpec, counted, stored_counts

VELOCITY_FIELD = "v"
"""Field of the card's feature value that holds the velocity buckets."""


@dataclass
class BatchVelocity:
    """Velocity (and the model's streaming features) for the payments of one batch, in order."""

    streaming: BatchFeatures
    spec: VelocitySpec = DEFAULT_SPEC

    def _card(self, fingerprint: str) -> Mapping[str, Any]:
        return self.streaming.get(card_key(fingerprint)) or {}

    def velocity(self, fingerprint: str, at: float) -> Velocity:
        """Counts in both trailing windows, this payment included."""
        short, long_ = stored_counts(self._card(fingerprint).get(VELOCITY_FIELD), self.spec, at)
        return Velocity(card_10m=short + 1, card_1h=long_ + 1)

    def count(self, fingerprint: str, at: float, partition: int) -> None:
        card = dict(self._card(fingerprint))
        card[VELOCITY_FIELD] = counted(card.get(VELOCITY_FIELD), self.spec, at)
        self.streaming.put(card_key(fingerprint), card, partition)

    def features(self, obs: Observation, partition: int) -> dict[str, float]:
        """Streaming features of this payment (earlier payments only), then count it."""
        return self.streaming.features(obs, partition)

    def apply(self) -> int:
        """Write the batch's values to the table; returns how many keys were written."""
        return self.streaming.apply()
