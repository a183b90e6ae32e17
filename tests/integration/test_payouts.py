"""Money to the merchant's bank on the real stack: a payout account added at intake reaches
settlement; a captured payment's batch closes; the payout job on its value date pays it into
a pain.001 file with the merchant's IBAN; the bank's answer (returned, then paid) moves the
ledger and reaches intake's payouts and balance and the merchant's webhooks. A refund on an
empty balance nets against the next payout. The ledger stays balanced throughout."""

from __future__ import annotations

import json
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from sanalpos_common.settings import DEV_ADMIN_TOKEN
from settlement.domain.payout_file import PAIN_001_NS
from tests.integration.conftest import ADMIN_TOKEN, cutoff_far_from_now
from tests.integration.support import ServiceProcess, WebhookReceiver, close_batches, eventually
from tests.integration.test_end_to_end import approving_card, auth, payment_body, status_reaches

IBAN = "TR950006100000000000039595"
NS = {"p": PAIN_001_NS}
ADMIN = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}


async def shop(
    intake: httpx.AsyncClient, settlement: asyncpg.Pool, webhooks: WebhookReceiver | None = None
) -> dict[str, Any]:
    response = await intake.post(
        "/admin/merchants",
        json={"name": "Payout Shop", "cutoff_time": cutoff_far_from_now(), "payout_delay_days": 1},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert response.status_code == 201, response.text
    merchant = response.json()
    key = auth(merchant["api_key"])
    if webhooks is not None:
        assert webhooks.server is not None
        url = f"http://127.0.0.1:{webhooks.server.server_address[1]}/payouts"
        hook = await intake.post("/v1/webhook-endpoints", json={"url": url}, headers=key)
        assert hook.status_code == 201, hook.text
    account = await intake.post(
        "/v1/payout-accounts",
        json={"iban": IBAN, "holder_name": "Payout Shop Ltd", "currency": "TRY"},
        headers=key,
    )
    assert account.status_code == 201, account.text

    async def known() -> Any:
        return await settlement.fetchval(
            "SELECT 1 FROM payout_accounts WHERE merchant_id = $1 AND is_default",
            merchant["id"],
        )

    await eventually(known, timeout_s=45)
    return merchant


async def sale(intake: httpx.AsyncClient, merchant: dict[str, Any], amount: int) -> str:
    created = await intake.post(
        "/v1/payments",
        json=payment_body(approving_card(), amount),
        headers=auth(merchant["api_key"]),
    )
    assert created.status_code == 202, created.text
    await status_reaches(intake, merchant["api_key"], created.json()["id"], {"captured"})
    return str(created.json()["id"])


async def closed_batch(settlement_url: str, merchant_id: str) -> dict[str, Any]:
    async def close() -> dict[str, Any] | None:
        closed = await close_batches(settlement_url, merchant_id)
        return closed[0] if closed else None

    return await eventually(close, timeout_s=45)


async def run_payouts(settlement_url: str, merchant_id: str, day: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=settlement_url, timeout=10) as client:
        response = await client.post(
            "/admin/payouts/run", json={"date": day, "merchant_id": merchant_id}, headers=ADMIN
        )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def answer(settlement_url: str, payout_id: str, status: str) -> None:
    async with httpx.AsyncClient(base_url=settlement_url, timeout=10) as client:
        response = await client.post(
            f"/admin/payouts/{payout_id}/{status}", json={"reason": "account closed"}, headers=ADMIN
        )
    assert response.status_code == 200, response.text


async def intake_payout(
    intake: httpx.AsyncClient, merchant: dict[str, Any], payout_id: str, status: str
) -> dict[str, Any]:
    async def shown() -> dict[str, Any] | None:
        response = await intake.get(f"/v1/payouts/{payout_id}", headers=auth(merchant["api_key"]))
        body: dict[str, Any] = response.json()
        return body if response.status_code == 200 and body["status"] == status else None

    return await eventually(shown, timeout_s=45)


async def balance(intake: httpx.AsyncClient, merchant: dict[str, Any]) -> dict[str, Any]:
    body = (await intake.get("/v1/balance", headers=auth(merchant["api_key"]))).json()
    [try_] = body["balances"]
    return {k: try_[k] for k in ("pending", "available", "in_transit", "paid_out")}


async def assert_ledger_balanced(settlement: asyncpg.Pool) -> None:
    unbalanced = await settlement.fetch(
        "SELECT transaction_id FROM ledger_entries GROUP BY transaction_id, currency "
        "HAVING sum(CASE WHEN direction = 'debit' THEN amount ELSE -amount END) <> 0"
    )
    assert unbalanced == []


async def test_a_payout_goes_to_the_bank_file_is_returned_then_paid_and_shown(
    intake: httpx.AsyncClient,
    services: dict[str, ServiceProcess],
    databases: dict[str, asyncpg.Pool],
    webhooks: WebhookReceiver,
) -> None:
    settlement_url = services["settlement"].url
    if webhooks.server is None:
        webhooks.start()
    merchant = await shop(intake, databases["settlement"], webhooks)
    await sale(intake, merchant, 20_000)
    batch = await closed_batch(settlement_url, merchant["id"])
    net, value_date = batch["totals"]["net_amount"], batch["value_date"]

    result = await run_payouts(settlement_url, merchant["id"], value_date)
    [payout] = result["payouts"]
    assert (payout["amount"], payout["iban"], payout["status"]) == (net, IBAN, "in_transit")
    root = ET.fromstring(Path(result["file"]["xml_path"]).read_bytes())  # noqa: S314
    transfers = {
        tx.findtext("p:PmtId/p:EndToEndId", namespaces=NS): tx
        for tx in root.iter(f"{{{PAIN_001_NS}}}CdtTrfTxInf")
    }
    tx = transfers[uuid.UUID(payout["id"]).hex]
    assert tx.findtext("p:CdtrAcct/p:Id/p:IBAN", namespaces=NS) == IBAN
    assert tx.findtext("p:Amt/p:InstdAmt", namespaces=NS) == f"{net // 100}.{net % 100:02d}"
    assert (await run_payouts(settlement_url, merchant["id"], value_date))["payouts"] == []

    await intake_payout(intake, merchant, payout["id"], "in_transit")
    assert await balance(intake, merchant) == {
        "pending": 0,
        "available": 0,
        "in_transit": net,
        "paid_out": 0,
    }

    await answer(settlement_url, payout["id"], "returned")
    returned = await intake_payout(intake, merchant, payout["id"], "returned")
    assert returned["reason"] == "account closed"
    assert await balance(intake, merchant) == {
        "pending": net,  # back in the balance; its value date (tomorrow) is still ahead
        "available": 0,
        "in_transit": 0,
        "paid_out": 0,
    }

    [again] = (await run_payouts(settlement_url, merchant["id"], value_date))["payouts"]
    assert again["amount"] == net
    await answer(settlement_url, again["id"], "paid")
    paid = await intake_payout(intake, merchant, again["id"], "paid")
    assert [line["batch_id"] for line in paid["lines"]] == [batch["id"]]
    assert await balance(intake, merchant) == {
        "pending": 0,
        "available": 0,
        "in_transit": 0,
        "paid_out": net,
    }
    exported = await intake.get("/v1/payouts.csv", headers=auth(merchant["api_key"]))
    assert again["id"] in exported.text and payout["id"] in exported.text

    def hooks() -> dict[str, dict[str, Any]]:
        found = {}
        for hook in list(webhooks.received):
            body = json.loads(hook.body)
            if body.get("data", {}).get("merchant_id") == merchant["id"] and body[
                "type"
            ].startswith("payout."):
                found[body["type"]] = body
        return found

    async def both() -> dict[str, dict[str, Any]] | None:
        found = hooks()
        return found if {"payout.paid", "payout.failed"} <= set(found) else None

    received = await eventually(both, timeout_s=60)
    assert received["payout.paid"]["data"]["payout_id"] == again["id"]
    assert received["payout.failed"]["data"]["failure_reason"] == "account closed"
    assert IBAN not in json.dumps(received), "webhooks carry the last four only"
    await assert_ledger_balanced(databases["settlement"])


async def test_a_refund_on_an_empty_balance_nets_against_the_next_payout(
    intake: httpx.AsyncClient,
    services: dict[str, ServiceProcess],
    databases: dict[str, asyncpg.Pool],
) -> None:
    settlement_url = services["settlement"].url
    settlement = databases["settlement"]
    merchant = await shop(intake, settlement)
    first = await sale(intake, merchant, 10_000)
    batch = await closed_batch(settlement_url, merchant["id"])
    [paid] = (await run_payouts(settlement_url, merchant["id"], batch["value_date"]))["payouts"]
    await answer(settlement_url, paid["id"], "paid")

    refund = await intake.post(
        f"/v1/payments/{first}/refunds",
        json={"amount": 10_000, "reason": "returned goods"},
        headers=auth(merchant["api_key"]),
    )
    assert refund.status_code in {201, 202}, refund.text

    async def refund_booked() -> Any:
        return await settlement.fetchval(
            "SELECT 1 FROM ledger_transactions WHERE merchant_id = $1 AND kind = 'refund'",
            merchant["id"],
        )

    await eventually(refund_booked, timeout_s=45)
    negative = await closed_batch(settlement_url, merchant["id"])
    assert negative["totals"]["net_amount"] == -10_000
    held = await run_payouts(settlement_url, merchant["id"], negative["value_date"])
    assert held["payouts"] == []
    assert [(h["reason"], h["amount"]) for h in held["holds"]] == [
        ("balance_not_positive", -10_000)
    ]

    await sale(intake, merchant, 30_000)
    positive = await closed_batch(settlement_url, merchant["id"])
    [netted] = (await run_payouts(settlement_url, merchant["id"], positive["value_date"]))[
        "payouts"
    ]
    assert netted["amount"] == positive["totals"]["net_amount"] - 10_000
    shown = await intake_payout(intake, merchant, netted["id"], "in_transit")
    assert sorted(line["amount"] for line in shown["lines"]) == sorted(
        [-10_000, positive["totals"]["net_amount"]]
    )
    payable = await settlement.fetchval(
        "SELECT coalesce(sum(CASE WHEN direction = 'credit' THEN amount ELSE -amount END), 0) "
        "FROM ledger_entries WHERE account = $1",
        f"merchant:{merchant['id']}:payable",
    )
    assert payable == 0, "never more than the merchant had"
    await assert_ledger_balanced(settlement)
