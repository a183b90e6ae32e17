"""payout.paid and payout.failed: from settlement.payout-updated.v1, only the public fields
(never the IBAN, which the event does not carry either); a payout in transit sends nothing."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime

import jsonschema

from notification.domain.public_events import header_of, public_event, webhook_body
from sanalpos_common.schemas import events as internal
from sanalpos_common.schemas.events import event_type
from sanalpos_common.schemas.export import WEBHOOK_SCHEMA_DIR
from sanalpos_common.schemas.webhooks import WEBHOOK_EVENTS, schema_file_name
from sanalpos_common.testing import deliver

from .test_handlers import MERCHANT, FakeWebhooks, registered, table

PAYOUT_ID = uuid.UUID("b0d6f7a2-1c3e-4d5f-8a9b-0c1d2e3f4a5b")
BATCHES = [uuid.uuid4(), uuid.uuid4()]
HEADER = header_of(uuid.uuid4(), datetime(2026, 12, 3, 11, 0, tzinfo=UTC))


def payout(status: internal.PayoutStatus, reason: str | None = None) -> internal.PayoutUpdated:
    now = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
    return internal.PayoutUpdated(
        payout_id=PAYOUT_ID,
        merchant_id=MERCHANT,
        currency="TRY",
        amount=13_700,
        status=status,
        value_date=date(2026, 12, 3),
        account_id=uuid.uuid4(),
        iban_last4="9595",
        lines=tuple(
            internal.PayoutLine(
                batch_id=b, batch_date=date(2026, 12, 2), value_date=date(2026, 12, 3), amount=a
            )
            for b, a in zip(BATCHES, (19_700, -6_000), strict=True)
        ),
        reason=reason,
        created_at=now,
        updated_at=now,
        version=2,
    )


def mapped(p: internal.PayoutUpdated) -> dict[str, object]:
    event = public_event(event_type(internal.topic_of(p)), p.model_dump(mode="json"), HEADER)
    assert event is not None
    document: dict[str, object] = json.loads(webhook_body(event))
    schema = json.loads((WEBHOOK_SCHEMA_DIR / schema_file_name(str(document["type"]))).read_text())
    jsonschema.validate(document, schema)
    assert WEBHOOK_EVENTS[str(document["type"])].model_validate(document) == event
    return document


def test_a_paid_payout_is_payout_paid_with_its_public_fields_only() -> None:
    document = mapped(payout(internal.PayoutStatus.PAID))
    assert document["type"] == "payout.paid"
    assert document["data"] == {
        "payout_id": str(PAYOUT_ID),
        "merchant_id": MERCHANT,
        "amount": 13_700,
        "currency": "TRY",
        "value_date": "2026-12-03",
        "iban_last4": "9595",
        "batch_ids": [str(b) for b in BATCHES],
    }


def test_a_returned_payout_is_payout_failed_with_the_reason() -> None:
    document = mapped(payout(internal.PayoutStatus.RETURNED, "account closed"))
    assert document["type"] == "payout.failed"
    data = document["data"]
    assert isinstance(data, dict)
    assert (data["failure_reason"], data["amount"]) == ("account closed", 13_700)


async def test_the_handler_queues_paid_and_returned_but_not_in_transit() -> None:
    store = FakeWebhooks()
    routes = table(store).table()
    endpoint = registered()
    await deliver(routes, endpoint, producer="notification")
    await deliver(routes, payout(internal.PayoutStatus.IN_TRANSIT), producer="settlement")
    assert store.deliveries == {}
    await deliver(routes, payout(internal.PayoutStatus.PAID), producer="settlement")
    [delivery] = store.deliveries.values()
    assert (delivery.event_type, delivery.payment_id, delivery.endpoint_id) == (
        "payout.paid",
        PAYOUT_ID,
        endpoint.endpoint_id,
    )
    assert "9595" in delivery.body and "account_id" not in delivery.body
