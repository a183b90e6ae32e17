"""Every Kafka topic name in one place. Versioned by suffix; key = payment id."""

from typing import Final

PAYMENT_INITIATED: Final = "payment.initiated.v1"
PAYMENT_SCORED: Final = "payment.scored.v1"
PAYMENT_AUTHORIZED: Final = "payment.authorized.v1"
PAYMENT_DECLINED: Final = "payment.declined.v1"
PAYMENT_CAPTURED: Final = "payment.captured.v1"
PAYMENT_SETTLED: Final = "payment.settled.v1"
PAYMENT_ACTION_REQUIRED: Final = "payment.action-required.v1"
PAYMENT_VOIDED: Final = "payment.voided.v1"
PAYMENT_REFUNDED: Final = "payment.refunded.v1"
PAYMENT_EXPIRED: Final = "payment.expired.v1"
PAYMENT_OPERATION_FAILED: Final = "payment.operation-failed.v1"
WEBHOOK_ENDPOINT_REGISTERED: Final = "webhook-endpoint.registered.v1"
MERCHANT_UPDATED: Final = "merchant.updated.v1"  # key = merchant id
BATCH_CLOSED: Final = "settlement.batch-closed.v1"  # key = the batch id
PAYOUT_ACCOUNT_UPDATED: Final = "merchant.payout-account.v1"  # key = merchant id
PAYOUT_UPDATED: Final = "settlement.payout-updated.v1"  # key = merchant id
# Statements (issue 13): settlement's summary of a merchant's payable per currency and day.
LEDGER_DAY: Final = "settlement.ledger-day.v1"  # key = merchant id
FX_RATE_UPDATED: Final = "settlement.fx-rate.v1"  # key = rate id (issue 13, fx)

# Commands (imperative): intake asks authorization to act on an existing payment.
CAPTURE_PAYMENT: Final = "command.capture-payment.v1"
VOID_PAYMENT: Final = "command.void-payment.v1"
REFUND_PAYMENT: Final = "command.refund-payment.v1"

# Fraud feedback and manual review.
FRAUD_REPORTED: Final = "payment.fraud-reported.v1"
REVIEW_RESOLVED: Final = "payment.review-resolved.v1"

# Merchant-facing Kafka entry point: merchant JSON (not our envelope), HMAC-signed in headers;
# replies are keyed by the merchant's request id. Documented in services/intake/README.md.
MERCHANT_REQUESTS: Final = "merchant.payment-requests.v1"
MERCHANT_REPLIES: Final = "merchant.payment-replies.v1"

# Every event that changes what a merchant sees about a payment (intake's read model,
# webhooks, synchronous answers).
OUTCOME_TOPICS: Final = (
    PAYMENT_AUTHORIZED,
    PAYMENT_DECLINED,
    PAYMENT_CAPTURED,
    PAYMENT_SETTLED,
    PAYMENT_ACTION_REQUIRED,
    PAYMENT_VOIDED,
    PAYMENT_REFUNDED,
    PAYMENT_EXPIRED,
    PAYMENT_OPERATION_FAILED,
)

COMMAND_TOPICS: Final = (CAPTURE_PAYMENT, VOID_PAYMENT, REFUND_PAYMENT)

# Disputes (issue 13, disputes part): the merchant's answer to a chargeback, from intake, and
# settlement's dispute as it now stands. Both keyed by payment id.
DISPUTE_RESPONDED: Final = "merchant.dispute-responded.v1"
DISPUTE_UPDATED: Final = "settlement.dispute-updated.v1"
# The issuer simulator's (authorization's) chargebacks and rulings, for settlement.
DISPUTE_RAISED: Final = "issuer.dispute-raised.v1"
DISPUTE_DECIDED: Final = "issuer.dispute-decided.v1"
DISPUTE_TOPICS: Final = (DISPUTE_RESPONDED, DISPUTE_UPDATED, DISPUTE_RAISED, DISPUTE_DECIDED)
# Reconciliation (issue 13): authorization's daily clearing file, one message per merchant,
# currency, date and part (key = merchant id).
CLEARING_REPORTED: Final = "authorization.clearing-reported.v1"

ALL_TOPICS: Final = (
    PAYMENT_INITIATED,
    PAYMENT_SCORED,
    *OUTCOME_TOPICS,
    *COMMAND_TOPICS,
    FRAUD_REPORTED,
    REVIEW_RESOLVED,
    WEBHOOK_ENDPOINT_REGISTERED,
    MERCHANT_UPDATED,
    BATCH_CLOSED,
    PAYOUT_ACCOUNT_UPDATED,
    PAYOUT_UPDATED,
    LEDGER_DAY,
    FX_RATE_UPDATED,
    MERCHANT_REQUESTS,
    MERCHANT_REPLIES,
    *DISPUTE_TOPICS,
    CLEARING_REPORTED,
)


# Operations: who replayed or purged which dead letter (`sanalpos dlq`, docs/reliability.md).
DLQ_AUDIT: Final = "ops.dlq-audit.v1"  # key = consumer


def dead_letter_topic(consumer: str) -> str:
    """Each consuming service owns one dead-letter topic."""
    return f"dlq.{consumer}.v1"
