"""Disputes (chargebacks) on the real stack: the issuer raises one through settlement's ops
API; the amount is held (ledger, intake's balance, no payout of it) and the merchant hears
`dispute.created`; the merchant answers through intake before the deadline; the issuer's
ruling releases the hold (won) or debits the amount and the fee (lost), and a lost dispute
reaches fraud's labeled history as a chargeback. Late answers are refused, an unanswered
dispute is lost after its deadline, and another merchant sees none of it."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from tests.integration.support import ServiceProcess, WebhookReceiver, eventually
from tests.integration.test_end_to_end import auth
from tests.integration.test_payouts import (
    ADMIN,
    assert_ledger_balanced,
    closed_batch,
    run_payouts,
    sale,
    shop,
)

FEE = 15_000  # settlement's default dispute fee for TRY


async def raise_dispute(settlement_url: str, payment_id: str, **extra: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=settlement_url, timeout=10) as client:
        response = await client.post(
            "/admin/disputes",
            json={
                "payment_id": payment_id,
                "reason_code": "10.4",
                "reason": "cardholder does not recognise the purchase",
                **extra,
            },
            headers=ADMIN,
        )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def rule(settlement_url: str, dispute_id: str, outcome: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=settlement_url, timeout=10) as client:
        response = await client.post(
            f"/admin/disputes/{dispute_id}/decision", json={"outcome": outcome}, headers=ADMIN
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def shown(
    intake: httpx.AsyncClient, merchant: dict[str, Any], dispute_id: str, status: str
) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        response = await intake.get(f"/v1/disputes/{dispute_id}", headers=auth(merchant["api_key"]))
        body: dict[str, Any] = response.json()
        return body if response.status_code == 200 and body["status"] == status else None

    return await eventually(probe, timeout_s=45)


async def balance(intake: httpx.AsyncClient, merchant: dict[str, Any]) -> dict[str, int]:
    """The TRY balance; empty until intake has heard of the merchant's first batch or dispute."""
    body = (await intake.get("/v1/balance", headers=auth(merchant["api_key"]))).json()
    if not body["balances"]:
        return {}
    [try_] = body["balances"]
    return {k: try_[k] for k in ("pending", "available", "held")}


async def balance_becomes(
    intake: httpx.AsyncClient, merchant: dict[str, Any], wanted: dict[str, int]
) -> None:
    async def probe() -> dict[str, int] | None:
        found = await balance(intake, merchant)
        return found if found == wanted else None

    try:
        await eventually(probe, timeout_s=45)
    except AssertionError:
        assert await balance(intake, merchant) == wanted


async def ledger_kinds(settlement: asyncpg.Pool, dispute_id: str) -> dict[str, int]:
    rows = await settlement.fetch(
        "SELECT t.kind, max(e.amount) AS amount FROM ledger_transactions t "
        "JOIN ledger_entries e ON e.transaction_id = t.id WHERE t.payment_id = $1 "
        "GROUP BY t.kind",
        uuid.UUID(dispute_id),
    )
    return {r["kind"]: r["amount"] for r in rows}


def hooks_of(webhooks: WebhookReceiver, dispute_id: str) -> dict[str, dict[str, Any]]:
    found = {}
    for hook in list(webhooks.received):
        body = json.loads(hook.body)
        if body["type"].startswith("dispute.") and body["data"]["dispute_id"] == dispute_id:
            found[body["type"]] = body
    return found


async def hooks_reach(
    webhooks: WebhookReceiver, dispute_id: str, wanted: set[str]
) -> dict[str, dict[str, Any]]:
    async def probe() -> dict[str, dict[str, Any]] | None:
        found = hooks_of(webhooks, dispute_id)
        return found if wanted <= set(found) else None

    return await eventually(probe, timeout_s=60)


async def labeled(fraud: asyncpg.Pool, payment_id: str) -> asyncpg.Record | None:
    return await fraud.fetchrow(
        "SELECT label, source, reason FROM fraud_labeled_history WHERE payment_id = $1",
        uuid.UUID(payment_id),
    )


async def test_a_lost_dispute_holds_then_debits_the_amount_and_fee_and_labels_the_payment(
    intake: httpx.AsyncClient,
    services: dict[str, ServiceProcess],
    databases: dict[str, asyncpg.Pool],
    webhooks: WebhookReceiver,
) -> None:
    settlement_url, settlement = services["settlement"].url, databases["settlement"]
    if webhooks.server is None:
        webhooks.start()
    merchant = await shop(intake, settlement, webhooks)
    key = auth(merchant["api_key"])
    payment_id = await sale(intake, merchant, 20_000)
    batch = await closed_batch(settlement_url, merchant["id"])
    net = batch["totals"]["net_amount"]
    await balance_becomes(intake, merchant, {"pending": net, "available": 0, "held": 0})

    raised = await raise_dispute(settlement_url, payment_id)
    dispute_id = raised["dispute_id"]
    assert (raised["amount"], raised["fee"], raised["status"]) == (20_000, FEE, "needs_response")
    assert await ledger_kinds(settlement, dispute_id) == {"dispute_hold": 20_000}
    again = await raise_dispute(settlement_url, payment_id, dispute_id=dispute_id)
    assert again["dispute_id"] == dispute_id, "the same dispute id raises nothing new"
    async with httpx.AsyncClient(base_url=settlement_url, timeout=10) as client:
        more = await client.post(
            "/admin/disputes",
            json={"payment_id": payment_id, "reason_code": "10.4", "reason": "twice"},
            headers=ADMIN,
        )
    assert more.status_code == 422, "nothing of the payment is left to dispute"

    view = await shown(intake, merchant, dispute_id, "needs_response")
    assert (view["payment_id"], view["held"], view["response"]) == (payment_id, 20_000, None)
    listed = (await intake.get("/v1/disputes", headers=key)).json()
    assert [d["id"] for d in listed["data"]] == [dispute_id]
    # The hold left the payable (in today's open batch): the sale's net is pending less it.
    await balance_becomes(
        intake, merchant, {"pending": net - 20_000, "available": 0, "held": 20_000}
    )
    created = (await hooks_reach(webhooks, dispute_id, {"dispute.created"}))["dispute.created"]
    assert created["data"]["payment_id"] == payment_id
    assert created["data"]["amount"] == 20_000 and created["data"]["fee"] == FEE

    # Held money is not paid out: the sale's batch is due, the payout waits.
    held = await run_payouts(settlement_url, merchant["id"], batch["value_date"])
    assert held["payouts"] == []
    assert [(h["reason"], h["amount"]) for h in held["holds"]] == [("disputes_held", net)]

    document = base64.b64encode(b"Delivered 2026-11-28, signed by the cardholder.").decode()
    evidence = {
        "text": "The goods were delivered and signed for; tracking TR123456789.",
        "references": ["TR123456789"],
        "documents": [
            {"file_name": "pod.txt", "content_type": "text/plain", "content_base64": document}
        ],
    }
    answered = await intake.post(
        f"/v1/disputes/{dispute_id}/evidence",
        json=evidence,
        headers={**key, "Idempotency-Key": f"ev-{dispute_id}"},
    )
    assert answered.status_code == 202, answered.text
    [doc] = answered.json()["evidence"]["documents"]
    assert doc["size"] == 47 and len(doc["sha256"]) == 64
    replayed = await intake.post(
        f"/v1/disputes/{dispute_id}/evidence",
        json=evidence,
        headers={**key, "Idempotency-Key": f"ev-{dispute_id}"},
    )
    assert replayed.status_code == 202 and replayed.headers["Idempotent-Replayed"] == "true"
    twice = await intake.post(f"/v1/disputes/{dispute_id}/evidence", json=evidence, headers=key)
    assert twice.status_code == 409
    assert twice.json()["type"].endswith("dispute-already-answered")
    review = await shown(intake, merchant, dispute_id, "under_review")
    assert review["response"] == "evidence" and review["held"] == 20_000
    stored = await settlement.fetchval(
        "SELECT evidence FROM disputes WHERE dispute_id = $1", uuid.UUID(dispute_id)
    )
    assert json.loads(stored)["documents"][0]["sha256"] == doc["sha256"]

    decided = await rule(settlement_url, dispute_id, "lost")
    assert (decided["status"], decided["outcome_reason"]) == ("lost", "issuer_lost")
    assert await ledger_kinds(settlement, dispute_id) == {
        "dispute_hold": 20_000,
        "dispute_loss": 20_000,
        "dispute_fee": FEE,
    }
    lost = await shown(intake, merchant, dispute_id, "lost")
    assert lost["held"] == 0
    await balance_becomes(
        intake, merchant, {"pending": net - 20_000 - FEE, "available": 0, "held": 0}
    )
    hooks = await hooks_reach(webhooks, dispute_id, {"dispute.created", "dispute.lost"})
    assert hooks["dispute.lost"]["data"]["outcome_reason"] == "issuer_lost"

    label = await eventually(lambda: labeled(databases["fraud"], payment_id), timeout_s=45)
    assert (label["label"], label["source"]) == (1, "chargeback")
    assert "10.4" in label["reason"]

    # The batch with the dispute's moves closes: its net carries them, the balance stays.
    moves = await closed_batch(settlement_url, merchant["id"])
    assert moves["totals"]["net_amount"] == -20_000 - FEE
    await balance_becomes(
        intake, merchant, {"pending": net - 20_000 - FEE, "available": 0, "held": 0}
    )
    hold_account = await settlement.fetchval(
        "SELECT coalesce(sum(CASE WHEN direction = 'credit' THEN amount ELSE -amount END), 0) "
        "FROM ledger_entries WHERE account = $1",
        f"merchant:{merchant['id']}:dispute_hold",
    )
    assert hold_account == 0
    await assert_ledger_balanced(settlement)


async def test_a_won_dispute_releases_the_hold(
    intake: httpx.AsyncClient,
    services: dict[str, ServiceProcess],
    databases: dict[str, asyncpg.Pool],
    webhooks: WebhookReceiver,
) -> None:
    settlement_url, settlement = services["settlement"].url, databases["settlement"]
    if webhooks.server is None:
        webhooks.start()
    merchant = await shop(intake, settlement, webhooks)
    key = auth(merchant["api_key"])
    payment_id = await sale(intake, merchant, 30_000)
    batch = await closed_batch(settlement_url, merchant["id"])
    net = batch["totals"]["net_amount"]

    raised = await raise_dispute(settlement_url, payment_id, amount=12_000)
    dispute_id = raised["dispute_id"]
    await shown(intake, merchant, dispute_id, "needs_response")
    await balance_becomes(
        intake, merchant, {"pending": net - 12_000, "available": 0, "held": 12_000}
    )
    answered = await intake.post(
        f"/v1/disputes/{dispute_id}/evidence",
        json={"text": "Refund policy accepted at checkout; the service was rendered."},
        headers=key,
    )
    assert answered.status_code == 202, answered.text
    await shown(intake, merchant, dispute_id, "under_review")

    decided = await rule(settlement_url, dispute_id, "won")
    assert (decided["status"], decided["outcome_reason"]) == ("won", "issuer_won")
    assert await ledger_kinds(settlement, dispute_id) == {
        "dispute_hold": 12_000,
        "dispute_release": 12_000,
    }
    assert (await rule(settlement_url, dispute_id, "won"))["version"] == decided["version"]
    async with httpx.AsyncClient(base_url=settlement_url, timeout=10) as client:
        flip = await client.post(
            f"/admin/disputes/{dispute_id}/decision", json={"outcome": "lost"}, headers=ADMIN
        )
    assert flip.status_code == 409, "a decided dispute stays decided"

    won = await shown(intake, merchant, dispute_id, "won")
    assert won["held"] == 0 and won["outcome_reason"] == "issuer_won"
    await balance_becomes(intake, merchant, {"pending": net, "available": 0, "held": 0})
    hooks = await hooks_reach(webhooks, dispute_id, {"dispute.created", "dispute.won"})
    assert hooks["dispute.won"]["data"]["amount"] == 12_000
    assert "dispute.lost" not in hooks
    accept = await intake.post(f"/v1/disputes/{dispute_id}/accept", headers=key)
    assert accept.status_code == 409 and accept.json()["type"].endswith("dispute-closed")
    assert await labeled(databases["fraud"], payment_id) is None
    await assert_ledger_balanced(settlement)


async def test_an_answer_after_the_deadline_is_refused_and_the_dispute_is_lost(
    intake: httpx.AsyncClient,
    services: dict[str, ServiceProcess],
    databases: dict[str, asyncpg.Pool],
) -> None:
    settlement_url, settlement = services["settlement"].url, databases["settlement"]
    merchant = await shop(intake, settlement)
    key = auth(merchant["api_key"])
    payment_id = await sale(intake, merchant, 15_000)
    respond_by = datetime.now(UTC) + timedelta(seconds=3)
    raised = await raise_dispute(settlement_url, payment_id, respond_by=respond_by.isoformat())
    dispute_id = raised["dispute_id"]
    await shown(intake, merchant, dispute_id, "needs_response")
    await asyncio.sleep(max(0.0, (respond_by - datetime.now(UTC)).total_seconds()) + 0.5)

    late = await intake.post(
        f"/v1/disputes/{dispute_id}/evidence", json={"text": "too late"}, headers=key
    )
    assert late.status_code == 409, late.text
    problem = late.json()
    assert problem["type"].endswith("dispute-deadline-passed")
    assert problem["title"] == "The deadline to respond has passed"
    assert (await intake.post(f"/v1/disputes/{dispute_id}/accept", headers=key)).status_code == 409

    async def expired() -> list[str] | None:  # the grace (1 s in these tests) passes first
        async with httpx.AsyncClient(base_url=settlement_url, timeout=10) as client:
            response = await client.post("/admin/disputes/expire", headers=ADMIN)
        assert response.status_code == 200, response.text
        found: list[str] = response.json()
        return found if dispute_id in found else None

    state = await settlement.fetchval(
        "SELECT status FROM disputes WHERE dispute_id = $1", uuid.UUID(dispute_id)
    )
    if state == "needs_response":  # the expiry loop may have been first
        await eventually(expired, timeout_s=20, interval_s=0.5)
    lost = await shown(intake, merchant, dispute_id, "lost")
    assert (lost["outcome_reason"], lost["response"]) == ("no_response", None)
    assert set(await ledger_kinds(settlement, dispute_id)) == {
        "dispute_hold",
        "dispute_loss",
        "dispute_fee",
    }
    label = await eventually(lambda: labeled(databases["fraud"], payment_id), timeout_s=45)
    assert label["source"] == "chargeback"


async def test_another_merchants_dispute_is_not_found_and_evidence_holds_no_card_number(
    intake: httpx.AsyncClient,
    services: dict[str, ServiceProcess],
    databases: dict[str, asyncpg.Pool],
) -> None:
    settlement_url, settlement = services["settlement"].url, databases["settlement"]
    owner = await shop(intake, settlement)
    other = await shop(intake, settlement)
    payment_id = await sale(intake, owner, 10_000)
    dispute_id = (await raise_dispute(settlement_url, payment_id))["dispute_id"]
    await shown(intake, owner, dispute_id, "needs_response")

    stranger = auth(other["api_key"])
    assert (await intake.get(f"/v1/disputes/{dispute_id}", headers=stranger)).status_code == 404
    foreign = await intake.post(
        f"/v1/disputes/{dispute_id}/evidence", json={"text": "mine now"}, headers=stranger
    )
    assert foreign.status_code == 404 and foreign.json()["type"].endswith("not-found")
    accept = await intake.post(f"/v1/disputes/{dispute_id}/accept", headers=stranger)
    assert accept.status_code == 404
    assert (await intake.get("/v1/disputes", headers=stranger)).json()["data"] == []

    owner_key = auth(owner["api_key"])
    card = "4111 1111 1111 1111"
    for body, field in (
        ({"text": f"the card was {card}"}, "text"),
        ({"text": "see the file", "references": [card]}, "references.0"),
        (
            {
                "text": "see the file",
                "documents": [
                    {
                        "file_name": "note.txt",
                        "content_type": "text/plain",
                        "content_base64": base64.b64encode(card.encode()).decode(),
                    }
                ],
            },
            "documents.0.content_base64",
        ),
        (
            {
                "text": "see the file",
                "documents": [
                    {
                        "file_name": "x.pdf",
                        "content_type": "application/pdf",
                        "content_base64": "!!",
                    }
                ],
            },
            "documents.0.content_base64",
        ),
    ):
        refused = await intake.post(
            f"/v1/disputes/{dispute_id}/evidence", json=body, headers=owner_key
        )
        assert refused.status_code == 422, refused.text
        problem = refused.json()
        assert [e["field"] for e in problem["errors"]] == [field]
        assert "4111" not in refused.text
    accepted = await intake.post(f"/v1/disputes/{dispute_id}/accept", headers=owner_key)
    assert accepted.status_code == 202, accepted.text
    lost = await shown(intake, owner, dispute_id, "lost")
    assert (lost["outcome_reason"], lost["response"]) == ("accepted", "accept")
    assert "4111111111111111" not in json.dumps(
        [dict(r) for r in await settlement.fetch("SELECT evidence FROM disputes")], default=str
    )


async def test_the_issuer_simulator_raises_and_rules_a_dispute_through_events(
    intake: httpx.AsyncClient,
    services: dict[str, ServiceProcess],
    databases: dict[str, asyncpg.Pool],
) -> None:
    """Authorization's issuer side: its chargeback and its ruling reach settlement as events."""
    settlement_url, settlement = services["settlement"].url, databases["settlement"]
    issuer_url = services["authorization"].url
    merchant = await shop(intake, settlement)
    payment_id = await sale(intake, merchant, 8_000)
    dispute_id = str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=issuer_url, timeout=10) as client:
        too_much = await client.post(
            "/admin/issuer/disputes",
            json={"payment_id": payment_id, "reason_code": "13.1", "reason": "x", "amount": 9_000},
            headers=ADMIN,
        )
        assert too_much.status_code == 422, too_much.text
        assert too_much.json()["type"].endswith("amount-not-disputable")
        unauthorized = await client.post("/admin/issuer/disputes", json={})
        assert unauthorized.status_code == 401
        raised = await client.post(
            "/admin/issuer/disputes",
            json={
                "payment_id": payment_id,
                "reason_code": "13.1",
                "reason": "merchandise not received",
                "dispute_id": dispute_id,
            },
            headers=ADMIN,
        )
        assert raised.status_code == 201, raised.text
        assert raised.json()["amount"] == 8_000

    view = await shown(intake, merchant, dispute_id, "needs_response")
    assert (view["amount"], view["reason_code"]) == (8_000, "13.1")
    assert await ledger_kinds(settlement, dispute_id) == {"dispute_hold": 8_000}

    async with httpx.AsyncClient(base_url=issuer_url, timeout=10) as client:
        ruled = await client.post(
            f"/admin/issuer/disputes/{dispute_id}/decision", json={"outcome": "won"}, headers=ADMIN
        )
        assert ruled.status_code == 200, ruled.text
        again = await client.post(
            f"/admin/issuer/disputes/{dispute_id}/decision", json={"outcome": "lost"}, headers=ADMIN
        )
        assert again.status_code == 409
    won = await shown(intake, merchant, dispute_id, "won")
    assert won["outcome_reason"] == "issuer_won"
    assert await ledger_kinds(settlement, dispute_id) == {
        "dispute_hold": 8_000,
        "dispute_release": 8_000,
    }
    async with httpx.AsyncClient(base_url=settlement_url, timeout=10) as client:
        row = (await client.get(f"/admin/disputes/{dispute_id}", headers=ADMIN)).json()
    assert row["status"] == "won"
    await assert_ledger_balanced(settlement)
