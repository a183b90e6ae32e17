"""Rules, lists, reviews and fraud reports through the running service (real Kafka + Postgres)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from sanalpos_common import topics
from sanalpos_common.schemas.codec import decode, new_envelope
from sanalpos_common.schemas.events import FraudDecision, FraudReported, PaymentScored
from sanalpos_common.settings import DEV_ADMIN_TOKEN

from .conftest import FraudService, wait_for

ADMIN = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}", "X-Actor": "alice"}


def api(fraud: FraudService) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=fraud.base_url, headers=ADMIN, timeout=10)


async def score(fraud: FraudService, **payment: Any) -> PaymentScored:
    envelope = fraud.payments.envelope(**payment)
    await fraud.publish(envelope)
    records = await fraud.scored(envelope.payload.payment_id)
    # The relay may publish a row twice after a hiccup, always the same event.
    assert len({decode(topics.PAYMENT_SCORED, r.value).message_id for r in records}) == 1, [
        (r.offset, str(e.message_id), str(e.causation_id), e.payload.decision.value)
        for r in records
        for e in [decode(topics.PAYMENT_SCORED, r.value)]
    ]
    scored: PaymentScored = decode(topics.PAYMENT_SCORED, records[0].value).payload
    return scored


async def test_rules_are_validated_authenticated_and_audited(fraud: FraudService) -> None:
    async with api(fraud) as client:
        unknown = await client.post(
            "/v1/rules",
            json={"name": "bad", "expression": "card.velocity_9h_count > 5", "action": "block"},
        )
        assert unknown.status_code == 422
        assert unknown.json()["errors"] == [
            {"field": "expression", "message": "unknown attribute: card.velocity_9h_count"}
        ]
        unsafe = await client.post(
            "/v1/rules",
            json={"name": "bad", "expression": "__import__('os')", "action": "block"},
        )
        assert unsafe.status_code == 422
        no_token = await client.get("/v1/rules", headers={"Authorization": "Bearer nope"})
        assert no_token.status_code == 401
        no_actor = await client.get("/v1/rules", headers={"X-Actor": ""})
        assert no_actor.status_code == 400

        created = await client.post(
            "/v1/rules",
            json={"name": "audit-me", "expression": "amount > 99999999", "action": "review"},
        )
        assert created.status_code == 201, created.text
        again = await client.post(
            "/v1/rules", json={"name": "audit-me", "expression": "amount > 1", "action": "review"}
        )
        assert again.status_code == 409
        changed = await client.patch(
            "/v1/rules/audit-me",
            json={"expression": "amount > 88888888"},
            headers={"X-Actor": "bob"},
        )
        assert changed.json()["version"] == 2
        disabled = await client.patch("/v1/rules/audit-me", json={"enabled": False})
        assert disabled.json()["enabled"] is False
        history = (await client.get("/v1/rules/audit-me/history")).json()
    assert [(h["change"], h["actor"]) for h in history] == [
        ("create", "alice"),
        ("update", "bob"),
        ("disable", "alice"),
    ]
    assert history[1]["old"]["expression"] == "amount > 99999999"
    assert history[1]["new"]["expression"] == "amount > 88888888"
    assert history[0]["old"] is None and history[2]["new"]["enabled"] is False
    assert (
        history[0]["policy_version"] < history[1]["policy_version"] < history[2]["policy_version"]
    )


async def test_a_list_change_takes_effect_on_the_next_payment(fraud: FraudService) -> None:
    pan = "4000002760003184"
    assert (await score(fraud, pan=pan)).decision is FraudDecision.APPROVE
    fingerprint = fraud.payments.envelope(pan=pan).payload.card.fingerprint
    async with api(fraud) as client:
        added = await client.post("/v1/lists/block_cards/entries", json={"value": fingerprint})
        assert added.status_code == 201
        blocked = await score(fraud, pan=pan)
        assert blocked.decision is FraudDecision.DECLINE
        assert "list:block_cards:card.fingerprint" in blocked.reasons
        removed = await client.delete(f"/v1/lists/block_cards/entries/{fingerprint}")
        assert removed.status_code == 204
        assert (await score(fraud, pan=pan)).decision is FraudDecision.APPROVE
        audit = (await client.get("/v1/audit", params={"entity": "list_entry"})).json()
    mine = [a["change"] for a in audit if a["key"] == f"block_cards:{fingerprint}"]
    assert mine == ["add", "remove"]


async def test_review_rule_queue_resolution_and_readable_decision(fraud: FraudService) -> None:
    async with api(fraud) as client:
        rule = {"name": "review-777700", "expression": "amount == 777701", "action": "review"}
        assert (await client.post("/v1/rules", json=rule)).status_code == 201
        scored = await score(fraud, pan="4000000000002009", amount=777_701)
        assert scored.decision is FraudDecision.REVIEW
        assert "rule:review-777700:review" in scored.reasons

        queue = (await client.get("/v1/reviews")).json()
        assert str(scored.payment_id) in [r["payment_id"] for r in queue]

        decision = (await client.get(f"/v1/decisions/{scored.payment_id}")).json()
        assert decision["decision"] == "review"
        assert decision["rules_fired"] == ["review-777700"]
        assert "rule 'review-777700' matched (action review)" in decision["explanation"]
        assert decision["review"]["status"] == "pending"
        assert decision["versions"]["rules"] == "rules-v1"
        assert decision["versions"]["policy"] >= 1

        resolved = await client.post(
            f"/v1/reviews/{scored.payment_id}/resolve", json={"decision": "decline", "note": "n"}
        )
        assert resolved.status_code == 200, resolved.text
        twice = await client.post(
            f"/v1/reviews/{scored.payment_id}/resolve", json={"decision": "approve"}
        )
        assert twice.status_code == 409
        unknown = await client.post(
            f"/v1/reviews/{uuid.uuid4()}/resolve", json={"decision": "approve"}
        )
        assert unknown.status_code == 404
        queue = (await client.get("/v1/reviews")).json()
        assert str(scored.payment_id) not in [r["payment_id"] for r in queue]
        await client.patch("/v1/rules/review-777700", json={"enabled": False})

    async def emitted() -> list[Any]:
        return fraud.reader.by_key(topics.REVIEW_RESOLVED, str(scored.payment_id))

    [record] = await wait_for(emitted)
    event = decode(topics.REVIEW_RESOLVED, record.value)
    assert event.payload.decision.value == "decline"
    assert (event.payload.resolved_by, event.payload.note) == ("alice", "n")
    assert event.correlation_id == scored.payment_id


async def test_a_fraud_report_blocks_the_card_and_labels_the_payment(fraud: FraudService) -> None:
    scored = await score(fraud, pan="4000000000001091", amount=4_321)
    report = FraudReported(
        payment_id=scored.payment_id,
        merchant_id=scored.merchant_id,
        source="merchant",
        reason="cardholder says it was not them",
        reported_at=datetime.now(UTC),
        card_fingerprint=scored.card.fingerprint,
        card_bin=scored.card.bin,
    )
    envelope = new_envelope(
        topics.FRAUD_REPORTED, report, correlation_id=scored.payment_id, producer="intake"
    )
    for _ in range(2):  # a redelivery changes nothing
        await fraud.kafka.producer.send_and_wait(
            topics.FRAUD_REPORTED,
            envelope.model_dump_json().encode(),
            key=str(scored.payment_id).encode(),
        )

    async def labeled() -> Any:
        return await fraud.db.fetchrow(
            "SELECT * FROM fraud_labeled_history WHERE payment_id = $1", scored.payment_id
        )

    row = await wait_for(labeled, timeout=30)
    assert row["label"] == 1 and row["amount"] == 4_321 and row["source"] == "merchant"
    assert '"card.velocity_10m_count"' in row["features"]
    entry = await fraud.db.fetchrow(
        "SELECT added_by FROM fraud_list_entries WHERE list_name = 'block_cards' AND value = $1",
        scored.card.fingerprint,
    )
    assert entry["added_by"] == "fraud-report"
    audits = await fraud.db.fetch(
        "SELECT actor FROM fraud_policy_audit WHERE entity_key = $1",
        f"block_cards:{scored.card.fingerprint}",
    )
    assert [a["actor"] for a in audits] == ["fraud-report"]
    again = await score(fraud, pan="4000000000001091", amount=4_321)
    assert again.decision is FraudDecision.DECLINE
