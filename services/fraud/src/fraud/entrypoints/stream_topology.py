"""The faust App of the fraud stream: its topics and tables, built per start, never at import.

payment.initiated.v1 (key = payment id)
    | agent "score-payments"; group_by(card fingerprint) with an explicit topic
    v
<app id>-payment.initiated.v1-by-card-repartition (key = fingerprint)
    | same agent, iterating the grouped stream in order (scoring_agent.py)
    v
table <app id>-features (per-key JSON values; a card's value also holds its velocity
buckets), changelog <app id>-features-changelog co-partitioned with the repartition topic
"""

from __future__ import annotations

from dataclasses import dataclass

import faust
from faust.types.auth import CredentialsT

from fraud.adapters.ack_guard import AckGuard, LogStartOffsets
from fraud.adapters.faust_recovery import SeekFirstTableManager
from fraud.adapters.feature_table import FeatureTable, PartitionedTable
from fraud.config import SERVICE, FraudSettings
from fraud.domain.velocity import VelocitySpec
from sanalpos_common import topics
from sanalpos_common.messaging.security import KafkaSecurity

DEAD_LETTER_CONSUMER = SERVICE  # -> dlq.fraud.v1
METRICS_CONSUMER = SERVICE
AGENT_NAME = "score-payments"


def repartition_topic_name(app_id: str) -> str:
    return f"{app_id}-{topics.PAYMENT_INITIATED}-by-card-repartition"


def stream_topics(app_id: str) -> tuple[str, str]:
    """The topics the stream's consumer group reads: the source and its by-card copy."""
    return (topics.PAYMENT_INITIATED, repartition_topic_name(app_id))


def faust_credentials(security: KafkaSecurity) -> CredentialsT | None:
    """The same SANALPOS_KAFKA_* security as every other client (kafka_client_kwargs), in
    faust's terms: None for PLAINTEXT (faust's default)."""
    context = security.ssl_context()
    if security.uses_sasl:
        assert security.sasl_password is not None  # checked by KafkaSecurity
        return faust.SASLCredentials(
            username=security.sasl_username,
            password=security.sasl_password.get_secret_value(),
            mechanism=security.sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def faust_brokers(bootstrap_servers: str) -> list[str]:
    return [f"kafka://{host.strip()}" for host in bootstrap_servers.split(",") if host.strip()]


@dataclass(frozen=True)
class StreamTopology:
    app: faust.App
    guard: AckGuard
    repartition_topic: str
    source: faust.TopicT
    by_card: faust.TopicT
    velocity: VelocitySpec
    features: FeatureTable


def build_topology(settings: FraudSettings, log_start: LogStartOffsets) -> StreamTopology:
    app = _build_app(settings)
    # faust acks events it skips during a rebalance; only our own acks may count.
    guard = AckGuard(stream_topics(settings.faust_app_id), log_start=log_start)
    guard.install(app.consumer)
    by_card = repartition_topic_name(settings.faust_app_id)
    return StreamTopology(
        app=app,
        guard=guard,
        repartition_topic=by_card,
        source=_raw_topic(app, topics.PAYMENT_INITIATED),
        by_card=_raw_topic(
            app,
            by_card,
            partitions=settings.internal_topic_partitions,
            replicas=settings.internal_replication,
            internal=True,
        ),
        velocity=settings.velocity_spec(),
        # Streaming model features (fraud.domain.features) and the card velocity counts
        # (fraud.domain.velocity): one JSON value per key, the windows are event-time
        # buckets inside the values (not faust windows, which cost a write per window).
        features=FeatureTable(
            app.Table(
                "features",
                partitions=settings.internal_topic_partitions,
                help="streaming fraud features and velocity per card / IP / email / device / "
                "merchant / MCC",
                extra_topic_configs=changelog_topic_config(settings),
            ),
            settings.internal_topic_partitions,
        ),
    )


def changelog_topic_config(s: FraudSettings) -> dict[str, str]:
    """Topic configs of the features changelog, on top of faust's cleanup.policy=compact.

    A compacted topic keeps the latest value per key, but the broker only compacts closed
    segments, and the default segment is 1 GiB: the changelog would be read in full (every
    write ever made) on recovery. Rolling segments hourly or at 64 MiB and cleaning at 10%
    dirty keeps what a restart reads close to one record per key.
    """
    return {
        "segment.ms": str(s.changelog_segment_ms),
        "segment.bytes": str(s.changelog_segment_bytes),
        "min.cleanable.dirty.ratio": str(s.changelog_min_cleanable_dirty_ratio),
    }


def _build_app(s: FraudSettings) -> faust.App:
    s.faust_data_dir().mkdir(parents=True, exist_ok=True)
    return faust.App(
        s.faust_app_id,
        broker=faust_brokers(s.kafka_bootstrap_servers),
        broker_credentials=faust_credentials(s.kafka_security),
        store=s.faust_store,
        autodiscover=False,
        web_enabled=False,
        datadir=str(s.faust_data_dir()),
        topic_partitions=s.internal_topic_partitions,
        topic_replication_factor=s.internal_replication,
        broker_commit_interval=s.commit_interval_s,
        broker_session_timeout=s.session_timeout_s,
        broker_heartbeat_interval=s.heartbeat_interval_s,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger=s.producer_linger_s,
        processing_guarantee="at_least_once",
        Table=PartitionedTable,
        # faust's recovery resumes stream partitions before seeking them, which can
        # silently drop a stretch of a partition after a restart (faust_recovery.py).
        TableManager=SeekFirstTableManager,
    )


def _raw_topic(app: faust.App, name: str, **options: object) -> faust.TopicT:
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        **options,  # type: ignore[arg-type]
    )
