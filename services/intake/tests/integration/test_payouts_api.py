"""Payout bank accounts and payouts against the real intake database: accounts added,
validated, made default and removed, each change announced through the outbox (IBAN masked in
the logs); settlement.payout-updated.v1 applied as intake's consumer does (inbox included),
shown by GET /v1/payouts, /v1/payouts/{id}, /v1/payouts.csv and in the balance."""

from __future__ import annotations

import csv
import io
import json
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from intake.bootstrap import CONSUMER
from intake.service_layer.consumed import CONSUMER_HANDLERS
from sanalpos_common import topics
from sanalpos_common.messaging.idempotent import idempotent
from sanalpos_common.schemas.codec import new_envelope
from sanalpos_common.schemas.events import PayoutLine, PayoutStatus, PayoutUpdated
from sanalpos_common.service import Platform

from .conftest import http_client, private_intake
from .test_balance_api import TODAY, announce, batch, new_merchant

TR = "TR950006100000000000039595"
TR_OTHER = "TR700006100000000000047514"
DE = "DE89370400440532013000"


@pytest.fixture(scope="module")
async def platform() -> AsyncIterator[Platform]:
    async with private_intake() as platform:
        yield platform


@pytest.fixture(scope="module")
async def http(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(platform) as client:
        yield client


async def add(
    http: httpx.AsyncClient, key: dict[str, str], iban: str, currency: str = "TRY", **kw: Any
) -> httpx.Response:
    body = {"iban": iban, "holder_name": "Payout Shop Ltd", "currency": currency, **kw}
    return await http.post("/v1/payout-accounts", json=body, headers=key)


async def announced(platform: Platform, merchant_id: str) -> list[dict[str, Any]]:
    rows = await platform.pool.fetch(
        "SELECT payload FROM outbox WHERE topic = $1 ORDER BY id", topics.PAYOUT_ACCOUNT_UPDATED
    )
    payloads = [json.loads(r["payload"])["payload"] for r in rows]
    return [p for p in payloads if p["merchant_id"] == merchant_id]


async def test_accounts_are_validated_defaulted_and_announced(
    http: httpx.AsyncClient, platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    merchant_id, key = await new_merchant(http)
    caplog.set_level(logging.INFO)
    first = await add(http, key, "TR95 0006 1000 0000 0000 0395 95")
    assert first.status_code == 201, first.text
    account = first.json()
    assert (account["iban"], account["is_default"], account["currency"]) == (TR, True, "TRY")
    assert TR not in caplog.text and TR[-4:] in caplog.text, "logs carry the IBAN masked"

    replay = await http.post(
        "/v1/payout-accounts",
        json={"iban": TR, "holder_name": "Payout Shop Ltd", "currency": "TRY"},
        headers={**key, "Idempotency-Key": "k-1"},
    )
    again = await http.post(
        "/v1/payout-accounts",
        json={"iban": TR, "holder_name": "Payout Shop Ltd", "currency": "TRY"},
        headers={**key, "Idempotency-Key": "k-1"},
    )
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["id"] == replay.json()["id"]
    assert replay.json()["is_default"] is False, "a later account is not the default unasked"

    wrong_country = await add(http, key, DE)
    assert wrong_country.status_code == 422
    problem = wrong_country.json()
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [
        ("iban", "unsupported_country_currency")
    ]
    bad_checksum = await add(http, key, TR[:-1] + "6")
    assert [e["field"] for e in bad_checksum.json()["errors"]] == ["iban"]
    no_payouts = await add(http, key, TR, "JPY")
    assert [e["field"] for e in no_payouts.json()["errors"]] == ["currency"]
    eur = await add(http, key, DE, "EUR")
    assert eur.status_code == 201 and eur.json()["is_default"] is True

    second_id = replay.json()["id"]
    made = await http.post(f"/v1/payout-accounts/{second_id}/default", headers=key)
    assert made.status_code == 200 and made.json()["is_default"] is True
    listed = (await http.get("/v1/payout-accounts", headers=key)).json()["data"]
    defaults = {(a["currency"], a["id"]) for a in listed if a["is_default"]}
    assert defaults == {("TRY", second_id), ("EUR", eur.json()["id"])}

    removed = await http.delete(f"/v1/payout-accounts/{second_id}", headers=key)
    assert removed.status_code == 204
    gone = await http.get(f"/v1/payout-accounts/{second_id}", headers=key)
    assert gone.status_code == 404
    shown = await http.get(f"/v1/payout-accounts/{account['id']}", headers=key)
    assert shown.json()["is_default"] is True, "the newest other account took over"

    events = await announced(platform, merchant_id)
    latest: dict[str, dict[str, Any]] = {}
    for event in events:
        assert event["version"] > latest.get(event["account_id"], {}).get("version", 0)
        latest[event["account_id"]] = event
    assert latest[second_id]["active"] is False
    assert latest[account["id"]]["is_default"] is True and latest[account["id"]]["iban"] == TR
    assert latest[eur.json()["id"]]["currency"] == "EUR"


def payout(
    merchant_id: str, batch_ids: list[uuid.UUID], amount: int, status: PayoutStatus, version: int
) -> PayoutUpdated:
    now = datetime.now(UTC)
    return PayoutUpdated(
        payout_id=uuid.uuid5(uuid.NAMESPACE_URL, f"payout:{merchant_id}:{batch_ids}"),
        merchant_id=merchant_id,
        currency="TRY",
        amount=amount,
        status=status,
        value_date=TODAY,
        account_id=uuid.uuid4(),
        iban_last4=TR[-4:],
        lines=tuple(
            PayoutLine(batch_id=b, batch_date=TODAY, value_date=TODAY, amount=amount)
            for b in batch_ids
        ),
        reason="account closed" if status is PayoutStatus.RETURNED else None,
        created_at=now,
        updated_at=now + timedelta(seconds=version),
        version=version,
    )


async def apply(platform: Platform, event: PayoutUpdated) -> None:
    handle = idempotent(platform.pool, CONSUMER, CONSUMER_HANDLERS, producer=CONSUMER)
    envelope = new_envelope(
        topics.PAYOUT_UPDATED, event, correlation_id=event.payout_id, producer="settlement"
    )
    await handle(topics.PAYOUT_UPDATED, envelope)


async def test_payouts_are_listed_exported_and_move_the_balance(
    http: httpx.AsyncClient, platform: Platform
) -> None:
    merchant_id, key = await new_merchant(http)
    due = batch(merchant_id, TODAY - timedelta(days=1), TODAY, 9_000)
    await announce(platform, due)

    async def balance() -> dict[str, Any]:
        [shown] = (await http.get("/v1/balance", headers=key)).json()["balances"]
        return {k: shown[k] for k in ("available", "in_transit", "paid_out", "pending")}

    assert await balance() == {"available": 9_000, "in_transit": 0, "paid_out": 0, "pending": 0}
    sent = payout(merchant_id, [due.batch_id], 9_000, PayoutStatus.IN_TRANSIT, 1)
    await apply(platform, sent)
    assert await balance() == {"available": 0, "in_transit": 9_000, "paid_out": 0, "pending": 0}

    returned = payout(merchant_id, [due.batch_id], 9_000, PayoutStatus.RETURNED, 2)
    await apply(platform, returned)
    await apply(platform, sent)  # an older version arriving late changes nothing
    assert await balance() == {"available": 9_000, "in_transit": 0, "paid_out": 0, "pending": 0}
    one = (await http.get(f"/v1/payouts/{sent.payout_id}", headers=key)).json()
    assert (one["status"], one["reason"]) == ("returned", "account closed")
    assert [line["batch_id"] for line in one["lines"]] == [str(due.batch_id)]

    repaid = payout(merchant_id, [due.batch_id, uuid.uuid4()], 9_000, PayoutStatus.PAID, 2)
    await apply(platform, repaid)
    assert await balance() == {"available": 0, "in_transit": 0, "paid_out": 9_000, "pending": 0}

    listed = (await http.get("/v1/payouts", params={"limit": 1}, headers=key)).json()
    assert listed["has_more"] is True and len(listed["data"]) == 1
    rest = await http.get("/v1/payouts", params={"cursor": listed["next_cursor"]}, headers=key)
    ids = {p["id"] for p in [*listed["data"], *rest.json()["data"]]}
    assert ids == {str(sent.payout_id), str(repaid.payout_id)}

    exported = await http.get("/v1/payouts.csv", headers=key)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    by_id = {r["payout_id"]: r for r in rows}
    assert (by_id[str(repaid.payout_id)]["status"], by_id[str(repaid.payout_id)]["amount"]) == (
        "paid",
        "90.00",
    )
    assert by_id[str(sent.payout_id)]["reason"] == "account closed"

    missing = await http.get(f"/v1/payouts/{uuid.uuid4()}", headers=key)
    assert missing.status_code == 404
