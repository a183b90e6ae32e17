"""Writes the Strimzi KafkaTopic and KafkaUser resources of the production overlay from the
topic names in `sanalpos_common.topics`, so the ACLs cannot drift from the code.

    uv run python scripts/deploy/kafka_resources.py          # rewrite the two files
    uv run python scripts/deploy/kafka_resources.py --check  # exit 1 when they are stale

tests/deploy/test_k8s_production.py runs the check and compares the topics each service
writes with the event types its source code constructs.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sanalpos_common import topics

ROOT = Path(__file__).resolve().parents[2]
OVERLAY = ROOT / "deploy" / "k8s" / "overlays" / "production"
CLUSTER = "sanalpos"
PARTITIONS = 12
REPLICAS = 3
MIN_INSYNC_REPLICAS = 2
DLQ_RETENTION_MS = 14 * 24 * 3_600_000  # the replay window (docs/operations.md#dead-letters)
MERCHANT_REQUESTS_RETENTION_MS = 72 * 3_600_000  # intake's INTAKE_REQUEST_TOPIC_RETENTION_H
FRAUD_APP_ID = "sanalpos-fraud"  # FRAUD_FAUST_APP_ID: faust's group and internal topic prefix

ALL_SERVICE_TOPICS = (
    *topics.ALL_TOPICS,
    *(topics.dead_letter_topic(c) for c in ("intake", "intake-requests", "fraud")),
    *(topics.dead_letter_topic(c) for c in ("fraud-feedback", "authorization")),
    *(topics.dead_letter_topic(c) for c in ("settlement", "notification")),
    topics.DLQ_AUDIT,
)


@dataclass(frozen=True)
class Access:
    """What one service does on Kafka. Every service also gets Describe on every topic: at
    start-up it lists them (ensure_topics), and a topic it may not describe looks missing."""

    reads: tuple[str, ...]
    writes: tuple[str, ...]
    groups: tuple[str, ...]  # consumer group name prefixes
    own_topic_prefix: str | None = None  # topics it creates itself (faust's internal ones)
    alter_configs: tuple[str, ...] = field(default=())


ACCESS: dict[str, Access] = {
    "intake": Access(
        reads=(
            *topics.OUTCOME_TOPICS,
            topics.BATCH_CLOSED,
            topics.PAYOUT_UPDATED,
            topics.LEDGER_DAY,
            topics.MERCHANT_REQUESTS,
            topics.DISPUTE_UPDATED,
            topics.FX_RATE_UPDATED,  # issue 13, fx
        ),
        writes=(
            topics.PAYMENT_INITIATED,
            *topics.COMMAND_TOPICS,
            topics.FRAUD_REPORTED,
            topics.MERCHANT_UPDATED,
            topics.WEBHOOK_ENDPOINT_REGISTERED,
            topics.PAYOUT_ACCOUNT_UPDATED,
            topics.MERCHANT_REPLIES,
            topics.DISPUTE_RESPONDED,
            topics.dead_letter_topic("intake"),
            topics.dead_letter_topic("intake-requests"),
        ),
        groups=("intake",),  # intake, intake-requests
        # configure_request_topic sets the same values the KafkaTopic holds.
        alter_configs=(topics.MERCHANT_REQUESTS,),
    ),
    "fraud": Access(
        reads=(topics.PAYMENT_INITIATED, topics.FRAUD_REPORTED),
        writes=(
            topics.PAYMENT_SCORED,
            topics.REVIEW_RESOLVED,
            topics.dead_letter_topic("fraud"),
            topics.dead_letter_topic("fraud-feedback"),
        ),
        groups=(FRAUD_APP_ID, "fraud-feedback"),
        own_topic_prefix=f"{FRAUD_APP_ID}-",
    ),
    "authorization": Access(
        reads=(topics.PAYMENT_SCORED, topics.REVIEW_RESOLVED, *topics.COMMAND_TOPICS),
        writes=(
            *(t for t in topics.OUTCOME_TOPICS if t != topics.PAYMENT_SETTLED),
            topics.DISPUTE_RAISED,
            topics.DISPUTE_DECIDED,
            topics.CLEARING_REPORTED,
            topics.dead_letter_topic("authorization"),
        ),
        groups=("authorization",),
    ),
    "settlement": Access(
        reads=(
            topics.PAYMENT_CAPTURED,
            topics.PAYMENT_VOIDED,
            topics.PAYMENT_REFUNDED,
            topics.MERCHANT_UPDATED,
            topics.PAYOUT_ACCOUNT_UPDATED,
            topics.DISPUTE_RESPONDED,
            topics.DISPUTE_RAISED,
            topics.DISPUTE_DECIDED,
            topics.CLEARING_REPORTED,
        ),
        writes=(
            topics.PAYMENT_SETTLED,
            topics.BATCH_CLOSED,
            topics.PAYOUT_UPDATED,
            topics.LEDGER_DAY,
            topics.DISPUTE_UPDATED,
            topics.FX_RATE_UPDATED,  # issue 13, fx
            topics.dead_letter_topic("settlement"),
        ),
        groups=("settlement",),
    ),
    "notification": Access(
        # payment.initiated (the shopper's contact, the masked card) and merchant.updated
        # (display name) for the shopper's receipts.
        reads=(
            *topics.OUTCOME_TOPICS,
            topics.WEBHOOK_ENDPOINT_REGISTERED,
            topics.PAYMENT_INITIATED,
            topics.MERCHANT_UPDATED,
            topics.PAYOUT_UPDATED,
            topics.DISPUTE_UPDATED,
        ),
        writes=(topics.dead_letter_topic("notification"),),
        groups=("notification",),
    ),
}
# The operators' `sanalpos dlq list|show|replay|purge|history` runs as this user: it reads
# every dead-letter topic, writes a replayed message back to the topic it came from, records
# each action on the audit topic and commits its "handled up to" groups (sanalpos-dlq-handled.*).
OPS_USER = "sanalpos-ops"
OPS_GROUP_PREFIX = "sanalpos-dlq"


def _literal(kind: str, name: str, operations: list[str]) -> dict[str, Any]:
    return {
        "resource": {"type": kind, "name": name, "patternType": "literal"},
        "operations": operations,
        "host": "*",
    }


def _prefix(kind: str, name: str, operations: list[str]) -> dict[str, Any]:
    return {
        "resource": {"type": kind, "name": name, "patternType": "prefix"},
        "operations": operations,
        "host": "*",
    }


def service_acls(access: Access) -> list[dict[str, Any]]:
    acls = []
    for topic in ALL_SERVICE_TOPICS:
        operations = ["Describe"]
        if topic in access.reads:
            operations.append("Read")
        if topic in access.writes:
            operations.append("Write")
        if topic in access.alter_configs:
            operations += ["DescribeConfigs", "AlterConfigs"]
        acls.append(_literal("topic", topic, operations))
    if access.own_topic_prefix:
        acls.append(
            _prefix(
                "topic",
                access.own_topic_prefix,
                ["Create", "Describe", "Read", "Write", "DescribeConfigs"],
            )
        )
    acls += [_prefix("group", group, ["Read", "Describe"]) for group in access.groups]
    return acls


def ops_acls() -> list[dict[str, Any]]:
    return [
        _prefix("topic", "dlq.", ["Describe", "Read", "Write", "Delete"]),
        *(_literal("topic", t, ["Describe", "Write"]) for t in topics.ALL_TOPICS),
        _literal("topic", topics.DLQ_AUDIT, ["Describe", "Read", "Write"]),
        _prefix("group", OPS_GROUP_PREFIX, ["Read", "Describe"]),
    ]


def _user(name: str, acls: list[dict[str, Any]], component: str) -> dict[str, Any]:
    return {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "KafkaUser",
        "metadata": {
            "name": name,
            "labels": {
                "strimzi.io/cluster": CLUSTER,
                "app.kubernetes.io/name": component,
                "app.kubernetes.io/part-of": "sanalpos",
            },
        },
        "spec": {
            # The User Operator writes the password into the Secret <name> (key "password").
            "authentication": {"type": "scram-sha-512"},
            "authorization": {"type": "simple", "acls": acls},
        },
    }


def users() -> list[dict[str, Any]]:
    return [
        *(_user(f"sanalpos-{svc}", service_acls(a), svc) for svc, a in ACCESS.items()),
        _user(OPS_USER, ops_acls(), "sanalpos-ops"),
    ]


def topic_resources() -> list[dict[str, Any]]:
    resources = []
    for topic in ALL_SERVICE_TOPICS:
        config: dict[str, Any] = {"min.insync.replicas": MIN_INSYNC_REPLICAS}
        if topic.startswith("dlq."):
            config["retention.ms"] = DLQ_RETENTION_MS
        if topic == topics.MERCHANT_REQUESTS:
            config["message.timestamp.type"] = "LogAppendTime"
            config["retention.ms"] = MERCHANT_REQUESTS_RETENTION_MS
        resources.append(
            {
                "apiVersion": "kafka.strimzi.io/v1",
                "kind": "KafkaTopic",
                "metadata": {
                    "name": topic,
                    "labels": {
                        "strimzi.io/cluster": CLUSTER,
                        "app.kubernetes.io/name": "kafka-topic",
                        "app.kubernetes.io/part-of": "sanalpos",
                    },
                },
                "spec": {
                    "topicName": topic,
                    "partitions": PARTITIONS,
                    "replicas": REPLICAS,
                    "config": config,
                },
            }
        )
    return resources


HEADER = (
    "# GENERATED by scripts/deploy/kafka_resources.py from sanalpos_common.topics: do not edit.\n"
)


def render(documents: list[dict[str, Any]], title: str) -> str:
    body = "---\n".join(yaml.safe_dump(d, sort_keys=False, width=100) for d in documents)
    return f"{HEADER}# {title}\n{body}"


def outputs() -> dict[Path, str]:
    return {
        OVERLAY / "kafka-topics.yaml": render(
            topic_resources(), f"{PARTITIONS} partitions, replication {REPLICAS}, min ISR 2."
        ),
        OVERLAY / "kafka-users.yaml": render(
            users(), "One SCRAM-SHA-512 user per service, with only the ACLs it needs."
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when a file is stale")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(path)
        else:
            path.write_text(text)
    for path in stale:
        print(f"stale: {path.relative_to(ROOT)} (run scripts/deploy/kafka_resources.py)")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
