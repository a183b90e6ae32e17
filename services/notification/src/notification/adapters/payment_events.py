"""The payment events' statements (service_layer/payment_events.py): each event's inbox row
and everything it changes in one statement, which Postgres applies atomically, as the
transaction around them did; no BEGIN and COMMIT around it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from notification.adapters.repository import DELIVERY_CHANNEL
from notification.adapters.shopper_emails import EMAIL_CHANNEL, shopper_payment_of
from notification.domain.shopper_emails import Merchant, NewEmail, ShopperPayment, Trigger
from notification.domain.webhooks import NewDelivery
from sanalpos_common import tracing

# Written only when nothing waits for the payment (an outcome read before it): otherwise
# nothing is written and the event goes through the transactional handler, which tells the
# waiting outcomes in the same transaction. The inbox row comes first; the payment's row is
# written only if the inbox row is new.
_ADD_PAYMENT = """
WITH waiting AS (
    SELECT EXISTS (SELECT 1 FROM shopper_emails_waiting WHERE payment_id = $4) AS found
), ib AS (
    INSERT INTO inbox (consumer, message_id, topic)
    SELECT $1, $2, $3 FROM waiting WHERE NOT waiting.found
    ON CONFLICT DO NOTHING
    RETURNING 1
), p AS (
    INSERT INTO shopper_payments
        (payment_id, merchant_id, amount, currency, capture, installments, card_brand,
         card_last4, created_at, shopper_email, shopper_name, shopper_locale)
    SELECT $4::uuid, $5::text, $6::bigint, $7::text, $8::boolean, $9::int, $10::text,
           $11::text, $12::timestamptz, $13::text, $14::text, $15::text
    WHERE EXISTS (SELECT 1 FROM ib)
    ON CONFLICT (payment_id) DO NOTHING
)
SELECT (SELECT found FROM waiting) AS waiting, EXISTS (SELECT 1 FROM ib) AS new
"""

# What an outcome needs to know, in one read: the ids of its merchant's enabled endpoints
# (as WebhookRepository.enabled_endpoints, in the same order), and for an outcome that may
# tell the shopper ($2 not NULL) the payment and its merchant.
_OUTCOME_FACTS = """
SELECT ARRAY(
           SELECT endpoint_id FROM webhook_endpoints
           WHERE merchant_id = $1 AND enabled ORDER BY endpoint_id
       ) AS endpoint_ids,
       p.*, m.name AS merchant_name, m.time_zone AS merchant_time_zone
FROM (VALUES (1)) AS one (x)
LEFT JOIN shopper_payments p ON p.payment_id = $2
LEFT JOIN merchants m ON m.merchant_id = p.merchant_id
"""

# An outcome's inbox row, its deliveries, its email or its wait for the payment; each write
# only if the inbox row is new (a duplicate writes nothing). The wake-ups are sent, as
# before, only when a row was inserted, and delivered by Postgres on commit.
_APPLY_OUTCOME = """
WITH ib AS (
    INSERT INTO inbox (consumer, message_id, topic) VALUES ($1, $2, $3)
    ON CONFLICT DO NOTHING
    RETURNING 1
), d AS (
    INSERT INTO webhook_deliveries
        (id, endpoint_id, merchant_id, payment_id, message_id, event_type, body, traceparent)
    SELECT u.*, $11::text
    FROM unnest($4::uuid[], $5::uuid[], $6::text[], $7::uuid[], $8::uuid[], $9::text[],
                $10::text[]) AS u
    WHERE EXISTS (SELECT 1 FROM ib)
    ON CONFLICT DO NOTHING
    RETURNING id
), e AS (
    INSERT INTO shopper_emails
        (id, message_id, payment_id, merchant_id, kind, locale, to_address, to_name,
         subject, text_body, html_body, traceparent)
    SELECT $12::uuid, $26::uuid, $13::uuid, $14::text, $15::text, $16::text, $17::text,
           $18::text, $19::text, $20::text, $21::text, $11::text
    WHERE $12::uuid IS NOT NULL AND EXISTS (SELECT 1 FROM ib)
    ON CONFLICT DO NOTHING
    RETURNING 1
), w AS (
    INSERT INTO shopper_emails_waiting (message_id, payment_id, event)
    SELECT $27::uuid, $22::uuid, $23::jsonb
    WHERE $23::jsonb IS NOT NULL AND EXISTS (SELECT 1 FROM ib)
    ON CONFLICT (message_id) DO NOTHING
)
SELECT EXISTS (SELECT 1 FROM ib) AS new,
       (SELECT count(*) FROM d) AS deliveries,
       EXISTS (SELECT 1 FROM e) AS emailed,
       CASE WHEN EXISTS (SELECT 1 FROM d) THEN pg_notify($24, '') END AS deliveries_woken,
       CASE WHEN EXISTS (SELECT 1 FROM e) THEN pg_notify($25, '') END AS emails_woken
"""


@dataclass(frozen=True)
class OutcomeFacts:
    endpoint_ids: list[uuid.UUID]
    payment: ShopperPayment | None
    merchant: Merchant | None


@dataclass(frozen=True)
class OutcomeApplied:
    new: bool
    """False for a duplicate (the inbox row was there): nothing was written."""
    deliveries: int
    emailed: bool


class PaymentEventStore:
    def __init__(self, pool: asyncpg.Pool, consumer: str) -> None:
        self.pool = pool
        self.consumer = consumer

    async def add_payment(
        self, message_id: uuid.UUID, topic: str, payment: ShopperPayment
    ) -> tuple[bool, bool]:
        """(waiting, new): `waiting` when outcomes wait for this payment, in which case
        nothing was written; otherwise `new` is False for a duplicate."""
        row = await self.pool.fetchrow(
            _ADD_PAYMENT,
            self.consumer,
            message_id,
            topic,
            payment.payment_id,
            payment.merchant_id,
            payment.amount,
            payment.currency,
            payment.capture,
            payment.installments,
            payment.card_brand,
            payment.card_last4,
            payment.created_at,
            payment.email,
            payment.name,
            payment.locale,
        )
        assert row is not None
        return bool(row["waiting"]), bool(row["new"])

    async def outcome_facts(self, merchant_id: str, payment_id: uuid.UUID | None) -> OutcomeFacts:
        row = await self.pool.fetchrow(_OUTCOME_FACTS, merchant_id, payment_id)
        assert row is not None
        merchant = None
        if row["merchant_name"] is not None:
            merchant = Merchant(name=row["merchant_name"], time_zone=row["merchant_time_zone"])
        return OutcomeFacts(list(row["endpoint_ids"]), shopper_payment_of(row), merchant)

    async def apply_outcome(
        self,
        message_id: uuid.UUID,
        topic: str,
        deliveries: Sequence[NewDelivery],
        email: NewEmail | None,
        waiting: Trigger | None,
    ) -> OutcomeApplied:
        row = await self.pool.fetchrow(
            _APPLY_OUTCOME,
            self.consumer,
            message_id,
            topic,
            [d.id for d in deliveries],
            [d.endpoint_id for d in deliveries],
            [d.merchant_id for d in deliveries],
            [d.payment_id for d in deliveries],
            [d.message_id for d in deliveries],
            [d.event_type for d in deliveries],
            [d.body for d in deliveries],
            tracing.current_traceparent(),  # the handler's span: the POSTs are its children
            None if email is None else email.id,
            None if email is None else email.payment_id,
            None if email is None else email.merchant_id,
            None if email is None else email.kind.value,
            None if email is None else email.locale,
            None if email is None else email.to_address,
            None if email is None else email.to_name,
            None if email is None else email.subject,
            None if email is None else email.text_body,
            None if email is None else email.html_body,
            None if waiting is None else waiting.payment_id,
            None if waiting is None else waiting.to_json(),
            DELIVERY_CHANNEL,
            EMAIL_CHANNEL,
            None if email is None else email.message_id,
            None if waiting is None else waiting.message_id,
        )
        assert row is not None
        return OutcomeApplied(bool(row["new"]), int(row["deliveries"]), bool(row["emailed"]))
