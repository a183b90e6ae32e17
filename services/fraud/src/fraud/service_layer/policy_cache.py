"""The policy the scorer applies: reloaded when its version moved (one cheap read per batch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fraud.adapters import policy_store as store
from fraud.domain.policy import Bands, Policy


@dataclass
class PolicyCache:
    default_bands: Bands
    policy: Policy | None = None
    reloads: int = 0

    async def current(self, conn: Any, version: int | None = None) -> Policy:
        """Read inside the batch's transaction, so a change applies from the next batch on
        (`version`: already read in that transaction)."""
        if version is None:
            version = await store.current_version(conn)
        if self.policy is None or self.policy.version != version:
            self.policy = await store.load_policy(conn, self.default_bands)
            self.reloads += 1
        return self.policy
