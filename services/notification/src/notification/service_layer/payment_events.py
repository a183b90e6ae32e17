"""The consumer's handler: payment events (payment.initiated and the outcomes, nearly all of
the traffic) are applied each in one statement, anything else by the transactional handler.

Why one statement keeps every guarantee of the transaction it replaces:
- Atomicity: a statement is applied whole or not at all, inbox row included, and its
  effects (pg_notify wake-ups too) become visible at once, on its commit.
- Idempotency: the inbox row is inserted first and every other write of the statement is
  conditioned on it being new, so a duplicate writes nothing. Two replicas applying the same
  message at once: the second's inbox insert waits for the first's and then conflicts.
- What is read: the one read before the write (endpoints, payment, merchant) is what the
  transaction read too, at READ COMMITTED and without row locks, so a change committed
  between the read and the write was already possible to miss there. Endpoints are read on
  every event (no cache), so a disabled endpoint gets no delivery queued after its disable
  committed; secrets are not read at all: a delivery is signed when sent, with the
  endpoint's secret of that moment (delivery_worker.py).
- Ordering: a partition's messages are applied one after the other, in order; an offset is
  committed only after its statement (the consumer commits after `batch` returns).
- A payment event that needs more than one statement (payment.initiated with outcomes
  waiting for it) writes nothing in its statement and goes through the transactional
  handler, as does any batch holding another event type.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from notification.adapters.payment_events import PaymentEventStore
from notification.domain.shopper_emails import (
    NewEmail,
    ShopperPayment,
    Trigger,
    email_kind,
    plan_email,
)
from notification.domain.webhooks import OutcomeEvent, plan_deliveries_to
from sanalpos_common import topics, tracing
from sanalpos_common.messaging.idempotent import IdempotentHandler
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import EVENT_MODELS, PaymentInitiated

log = logging.getLogger(__name__)

_OUTCOMES = frozenset(EVENT_MODELS[topic] for topic in topics.OUTCOME_TOPICS)


@dataclass(frozen=True)
class PaymentEventHandler:
    store: PaymentEventStore
    transactional: IdempotentHandler
    """The service's handler table under the inbox, one transaction per batch."""
    topics: tuple[str, ...]
    """The table's topics: what the consumer subscribes to."""
    emails: bool = True
    """Shopper emails on (as NotificationHandlers.emails is not None)."""

    async def __call__(self, topic: str, envelope: Envelope[Any]) -> None:
        await self.batch([(topic, envelope)])

    async def batch(self, items: Sequence[tuple[str, Envelope[Any]]]) -> None:
        if not all(self._one_statement(envelope) for _, envelope in items):
            await self.transactional.batch(items)
            return
        for topic, envelope in items:
            if not tracing.active:
                await self._apply(topic, envelope)
                continue
            with tracing.activate(tracing.span_for(envelope.message_id)):
                await self._apply(topic, envelope)

    def _one_statement(self, envelope: Envelope[Any]) -> bool:
        kind = type(envelope.payload)
        return kind in _OUTCOMES or (kind is PaymentInitiated and self.emails)

    async def _apply(self, topic: str, envelope: Envelope[Any]) -> None:
        if isinstance(envelope.payload, PaymentInitiated):
            await self._initiated(topic, envelope)
        else:
            await self._outcome(topic, envelope)

    async def _initiated(self, topic: str, envelope: Envelope[Any]) -> None:
        payment = ShopperPayment.from_initiated(envelope.payload)
        waiting, new = await self.store.add_payment(envelope.message_id, topic, payment)
        if waiting:
            await self.transactional.batch([(topic, envelope)])
        elif not new:
            log.info("duplicate message %s skipped", envelope.message_id)

    async def _outcome(self, topic: str, envelope: Envelope[Any]) -> None:
        event = OutcomeEvent.from_envelope(envelope)
        trigger = Trigger.from_envelope(envelope) if self.emails else None
        facts = await self.store.outcome_facts(
            event.merchant_id, None if trigger is None else trigger.payment_id
        )
        deliveries = plan_deliveries_to(event, facts.endpoint_ids)
        email: NewEmail | None = None
        waits: Trigger | None = None
        if trigger is not None:
            payment = facts.payment
            if payment is None:
                waits = trigger  # payment.initiated travels on another topic
            elif payment.email and email_kind(payment, trigger) is not None:
                email = plan_email(payment, trigger, facts.merchant)
        applied = await self.store.apply_outcome(
            envelope.message_id, topic, deliveries, email, waits
        )
        if not applied.new:
            log.info("duplicate message %s skipped", envelope.message_id)
            return
        if applied.deliveries:
            log.info("%s: %d webhook deliveries queued", event.event_type, applied.deliveries)
        if waits is not None:
            log.info("%s waits for its payment.initiated", waits.event_type)
        if email is not None and applied.emailed:
            log.info("%s email %s queued for the shopper", email.kind.value, email.id)
