"""Every Kafka topic name in one place. Versioned by suffix; key = payment id."""

from typing import Final

PAYMENT_REQUESTED: Final = "payment.requested.v1"
PAYMENT_INITIATED: Final = "payment.initiated.v1"
PAYMENT_SCORED: Final = "payment.scored.v1"
PAYMENT_AUTHORIZED: Final = "payment.authorized.v1"
PAYMENT_DECLINED: Final = "payment.declined.v1"
PAYMENT_CAPTURED: Final = "payment.captured.v1"
PAYMENT_SETTLED: Final = "payment.settled.v1"
WEBHOOK_ENDPOINT_REGISTERED: Final = "webhook-endpoint.registered.v1"

OUTCOME_TOPICS: Final = (
    PAYMENT_AUTHORIZED,
    PAYMENT_DECLINED,
    PAYMENT_CAPTURED,
    PAYMENT_SETTLED,
)

ALL_TOPICS: Final = (
    PAYMENT_REQUESTED,
    PAYMENT_INITIATED,
    PAYMENT_SCORED,
    *OUTCOME_TOPICS,
    WEBHOOK_ENDPOINT_REGISTERED,
)


def dead_letter_topic(consumer: str) -> str:
    """Each consuming service owns one dead-letter topic."""
    return f"dlq.{consumer}.v1"
