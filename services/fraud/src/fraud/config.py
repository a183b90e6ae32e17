import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Final, Self

from pydantic import Field, SecretStr, model_validator

from fraud.domain.scoring import ScoringRules
from fraud.domain.velocity import VelocitySpec
from sanalpos_common.settings import (
    DEV_ADMIN_TOKEN,
    ServiceSettings,
    local_database_url,
    service_config,
)

SERVICE: Final = "fraud"
"""The service's name: the producer of its events, its dead-letter topic (dlq.fraud.v1), its
metrics label."""


_RULES = ScoringRules()


class FraudSettings(ServiceSettings):
    model_config = service_config("FRAUD_")

    database_url: SecretStr = SecretStr(local_database_url("fraud"))
    http_port: int = 18001
    admin_token: SecretStr = SecretStr(DEV_ADMIN_TOKEN)
    """Bearer token of the management API (/v1/rules, lists, reviews…); refused in production."""
    feedback_consumer_group: str = "fraud-feedback"
    """Kafka consumer group reading payment.fraud-reported.v1 (block list + labeled history)."""
    model_enabled: bool = True
    """Score with the learned model (docs/fraud-model.md) on top of the rules."""
    model_path: Path | None = None
    """Model artifact (JSON, `python -m fraud.model.train`); default: the shipped one."""

    # --- faust-streaming ---------------------------------------------------------------
    faust_app_id: str = "sanalpos-fraud"
    """faust app id: it is also the Kafka consumer group and the prefix of the internal
    topics (repartition and table changelogs). Two deployments must not share it."""
    faust_store: str = "rocksdb://"
    """faust's table store. `rocksdb://` (adapters/pinned_rocksdb.py) keeps each partition's
    table on disk with the changelog offset it has read, so a restart reads only what was
    written since; keep `faust_datadir` on a persistent volume for that. `memory://` reads
    the whole compacted changelog at every start."""
    faust_datadir: Path | None = None
    """faust's tables (RocksDB) and folders; must be writable (the image's /app is not). It
    mirrors one Kafka cluster's changelogs: emptied at start when the cluster differs. One
    per process (RocksDB locks it): the default is per app id and HTTP port under the
    temporary folder (see `faust_data_dir`)."""
    internal_topic_partitions: int = Field(default=3, ge=1)
    """Partitions of the by-card repartition topic and of the changelogs (they must match)."""
    internal_topic_replication: int | None = Field(default=None, ge=1)
    """Replicas of the internal topics; default SANALPOS_KAFKA_REPLICATION_FACTOR (or 1)."""
    commit_interval_s: float = Field(default=1.0, gt=0)
    session_timeout_s: float = Field(default=20.0, ge=6)
    """How long a crashed worker keeps its partitions before the group moves them."""
    heartbeat_interval_s: float = Field(default=3.0, gt=0)
    producer_linger_s: float = Field(default=0.005, ge=0)
    """faust's producer (repartition + changelog writes): batching them saves CPU."""
    batch_max: int = Field(default=200, ge=1)
    """Most messages scored in one database transaction (what is already buffered)."""
    inbox_consumer: str = "fraud"
    """Name under which processed message ids are recorded in the inbox table."""
    heal_after_s: float = Field(default=15.0, gt=0)
    """A partition with lag and no commit progress for this long (nothing in flight) is
    sought back to its committed offset (faust can drop fetched records in memory)."""
    stall_after_s: float = Field(default=30.0, gt=0)
    """/readyz fails when there is lag and no offset progress for this long."""
    lag_probe_cache_s: float = Field(default=2.0, ge=0)
    changelog_segment_ms: int = Field(default=3_600_000, ge=60_000)
    """The features changelog rolls a segment this often (only closed segments compact)."""
    changelog_segment_bytes: int = Field(default=64 * 1024 * 1024, ge=1024 * 1024)
    changelog_min_cleanable_dirty_ratio: float = Field(default=0.1, gt=0, le=1)

    # --- velocity windows (event time = payment created_at; buckets of `step` inside the
    # card's feature value, fraud.domain.velocity) --------------------------------------
    short_window_s: int = Field(default=600, gt=0)
    short_window_step_s: int = Field(default=120, gt=0)
    long_window_s: int = Field(default=3600, gt=0)
    long_window_step_s: int = Field(default=600, gt=0)

    # --- scoring rules ------------------------------------------------------------------
    # Defaults are the domain's (fraud.domain.scoring.ScoringRules), one place for them.
    review_threshold: int = _RULES.review_threshold
    """Default review band (a merchant's own bands are set through the API / CLI)."""
    decline_threshold: int = _RULES.decline_threshold
    amount_high_minor: int = _RULES.amount_high_minor
    amount_very_high_factor: int = _RULES.amount_very_high_factor
    card_testing_max_minor: int = _RULES.card_testing_max_minor
    velocity_10m_raise_above: int = _RULES.velocity_10m_raise_above
    velocity_10m_decline_above: int = _RULES.velocity_10m_decline_above
    velocity_1h_raise_above: int = _RULES.velocity_1h_raise_above
    velocity_1h_decline_above: int = _RULES.velocity_1h_decline_above

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.heartbeat_interval_s * 3 > self.session_timeout_s:
            raise ValueError("heartbeat_interval_s must be at most a third of session_timeout_s")
        for size, step in (
            (self.short_window_s, self.short_window_step_s),
            (self.long_window_s, self.long_window_step_s),
        ):
            if step > size or size % step:
                raise ValueError("a window step must divide its window size")
        self.scoring_rules()  # validates the thresholds at start-up
        return self

    def faust_data_dir(self) -> Path:
        if self.faust_datadir is not None:
            return self.faust_datadir
        return (
            Path(tempfile.gettempdir()) / "sanalpos-fraud" / f"{self.faust_app_id}-{self.http_port}"
        )

    def velocity_spec(self) -> VelocitySpec:
        return VelocitySpec.of(
            self.short_window_s,
            self.short_window_step_s,
            self.long_window_s,
            self.long_window_step_s,
        )

    def scoring_rules(self) -> ScoringRules:
        """The rules from the settings of the same names (FRAUD_REVIEW_THRESHOLD, ...)."""
        return ScoringRules(
            **{rule.name: getattr(self, rule.name) for rule in fields(ScoringRules)}
        )

    @property
    def internal_replication(self) -> int:
        return self.internal_topic_replication or self.kafka_replication_factor or 1
