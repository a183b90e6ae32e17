"""The monthly statement on the real stack: captures, a refund, a payout paid by the bank and
a sale after it; settlement's ledger-day job announces the days; intake's statement for the
month (JSON, CSV and PDF) shows the figures, and its closing balance is the merchant's payable
in settlement's ledger to the minor unit. Another merchant sees only its own; a bad month is
a problem naming the field."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
from pypdf import PdfReader

from sanalpos_common.money import format_money
from tests.integration.support import ServiceProcess, eventually
from tests.integration.test_end_to_end import auth
from tests.integration.test_payouts import (
    ADMIN,
    answer,
    assert_ledger_balanced,
    closed_batch,
    run_payouts,
    sale,
    shop,
)

LINES = ("sales", "refunds", "fees", "fx", "disputes", "payouts", "other")


async def settlement_admin(url: str, method: str, path: str, **kw: Any) -> Any:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        response = await client.request(method, path, headers=ADMIN, **kw)
    assert response.status_code == 200, response.text
    return response.json()


async def fees_in_ledger(settlement: asyncpg.Pool, merchant_id: str) -> int:
    return int(
        await settlement.fetchval(
            "SELECT coalesce(sum(CASE WHEN e.direction = 'credit' THEN e.amount "
            "ELSE -e.amount END), 0) FROM ledger_entries e JOIN ledger_transactions t "
            "ON t.id = e.transaction_id WHERE t.merchant_id = $1 "
            "AND e.account = 'platform:fee_revenue'",
            merchant_id,
        )
    )


async def statement_when_reconciled(
    intake: httpx.AsyncClient, merchant: dict[str, Any], month: str, payable: int
) -> dict[str, Any]:
    """The JSON statement once the announced days reached intake and close on `payable`."""

    async def shown() -> dict[str, Any] | None:
        response = await intake.get(f"/v1/statements/{month}", headers=auth(merchant["api_key"]))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        [try_] = body["currencies"] or [None]
        if try_ and try_["reconciled"] and try_["closing_balance"] == payable:
            return try_
        return None

    return await eventually(shown, timeout_s=60)


async def test_the_months_statement_closes_on_the_ledger_balance(
    intake: httpx.AsyncClient,
    services: dict[str, ServiceProcess],
    databases: dict[str, asyncpg.Pool],
) -> None:
    settlement_url, settlement = services["settlement"].url, databases["settlement"]
    merchant = await shop(intake, settlement)
    other = await shop(intake, settlement)
    key = auth(merchant["api_key"])
    first = await sale(intake, merchant, 20_000)
    await sale(intake, merchant, 15_000)
    refund = await intake.post(
        f"/v1/payments/{first}/refunds",
        json={"amount": 5_000, "reason": "returned goods"},
        headers=key,
    )
    assert refund.status_code in {201, 202}, refund.text

    async def refund_booked() -> Any:
        return await settlement.fetchval(
            "SELECT 1 FROM ledger_transactions WHERE merchant_id = $1 AND kind = 'refund'",
            merchant["id"],
        )

    await eventually(refund_booked, timeout_s=45)
    batch = await closed_batch(settlement_url, merchant["id"])
    [payout] = (await run_payouts(settlement_url, merchant["id"], batch["value_date"]))["payouts"]
    assert payout["amount"] == batch["totals"]["net_amount"]
    await answer(settlement_url, payout["id"], "paid")
    await sale(intake, merchant, 12_345)  # after the payout: stays on the balance
    await sale(intake, other, 7_000)

    async def captured_in_ledger() -> Any:
        return await settlement.fetchval(
            "SELECT count(*) = 4 FROM ledger_transactions WHERE kind = 'capture' "
            "AND merchant_id = ANY($1::text[])",
            [merchant["id"], other["id"]],
        )

    await eventually(captured_in_ledger, timeout_s=45)
    for shop_ in (merchant, other):
        ran = await settlement_admin(
            settlement_url, "POST", "/admin/ledger-days/run", json={"merchant_id": shop_["id"]}
        )
        assert ran["announced"], "the days were announced"
    [balance] = await settlement_admin(
        settlement_url, "GET", "/admin/balances", params={"merchant_id": merchant["id"]}
    )
    payable = balance["payable"]
    fees = await fees_in_ledger(settlement, merchant["id"])
    assert payable == 20_000 + 15_000 + 12_345 - fees - 5_000 - payout["amount"]

    zone = ZoneInfo(merchant.get("time_zone") or "Europe/Istanbul")
    month = datetime.now(UTC).astimezone(zone).strftime("%Y-%m")
    try_ = await statement_when_reconciled(intake, merchant, month, payable)
    assert {k: try_[k] for k in LINES} == {
        "sales": 47_345,
        "refunds": -5_000,
        "fees": -fees,
        "fx": 0,
        "disputes": 0,
        "payouts": -payout["amount"],
        "other": 0,
    }
    assert try_["opening_balance"] == 0, "a new merchant opens the month on nothing"
    assert try_["counts"] == {"captures": 3, "reversals": 0, "refunds": 1, "payouts": 1}

    as_csv = await intake.get(f"/v1/statements/{month}", headers={**key, "Accept": "text/csv"})
    [row] = [r for r in csv.DictReader(io.StringIO(as_csv.text)) if r["date"] == month]
    assert Decimal(row["closing_balance"]).scaleb(2) == payable
    assert Decimal(row["payouts"]).scaleb(2) == -payout["amount"]

    as_pdf = await intake.get(f"/v1/statements/{month}", params={"format": "pdf"}, headers=key)
    assert as_pdf.headers["content-type"] == "application/pdf"
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(as_pdf.content)).pages)
    for amount in (payable, 47_345, -5_000, -fees, -payout["amount"]):
        assert format_money(amount, "TRY") in text

    [their_balance] = await settlement_admin(
        settlement_url, "GET", "/admin/balances", params={"merchant_id": other["id"]}
    )
    theirs = await statement_when_reconciled(intake, other, month, their_balance["payable"])
    assert theirs["sales"] == 7_000 and theirs["refunds"] == theirs["payouts"] == 0

    bad = await intake.get("/v1/statements/2026-13", headers=key)
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["errors"]] == ["month"]
    await assert_ledger_balanced(settlement)
