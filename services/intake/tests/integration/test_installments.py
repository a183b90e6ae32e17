"""BIN lookup and installment eligibility on POST /v1/payments, in-process against the real
intake database: a refused count is a 422 on `installments` before anything is written or
emitted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from sanalpos_common import topics
from sanalpos_common.crypto.card import luhn_check_digit
from sanalpos_common.settings import DEV_ADMIN_TOKEN

from .conftest import http_client, running_intake

CREDIT = "4111111111111111"  # seed: Visa credit, no programme ceiling
DEBIT = "4000056655665556"  # seed: Visa debit
PREPAID = "5105105105105100"  # seed: Mastercard prepaid


def number(prefix: str, length: int = 16) -> str:
    body = prefix + "7" * (length - 1 - len(prefix))
    return body + luhn_check_digit(body)


CARDFINANS = number("40366000")  # seed: credit, programme allows 6
TROY_DEBIT = number("97920300")
UNKNOWN_MASTERCARD = number("51990000")  # in no seed row


@dataclass
class Intake:
    client: httpx.AsyncClient
    pool: asyncpg.Pool

    async def merchant(self, **fields: Any) -> dict[str, str]:
        created = await self.client.post(
            "/admin/merchants",
            json={"name": "Installment Shop", **fields},
            headers={"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"},
        )
        assert created.status_code == 201, created.text
        body = created.json()
        return {"Authorization": f"Bearer {body['api_key']}", "id": body["id"]}

    async def pay(self, merchant: dict[str, str], card: str, installments: int) -> httpx.Response:
        return await self.client.post(
            "/v1/payments",
            json={
                "amount": 120_000,
                "currency": "TRY",
                "installments": installments,
                "card": {"number": card, "exp_month": 12, "exp_year": 2031, "cvc": "123"},
            },
            headers=auth(merchant),
        )

    async def written(self, merchant: dict[str, str]) -> tuple[int, int]:
        payments = await self.pool.fetchval(
            "SELECT count(*) FROM payments WHERE merchant_id = $1", merchant["id"]
        )
        initiated = await self.pool.fetchval(
            "SELECT count(*) FROM outbox WHERE topic = $1 AND convert_from(payload, 'UTF8') "
            "LIKE '%' || $2 || '%'",
            topics.PAYMENT_INITIATED,
            merchant["id"],  # random, so it appears only in this merchant's messages
        )
        return int(payments), int(initiated)


def auth(merchant: dict[str, str]) -> dict[str, str]:
    return {"Authorization": merchant["Authorization"]}


@pytest.fixture(scope="module")
async def intake() -> AsyncIterator[Intake]:
    async with running_intake() as platform, http_client(platform) as client:
        yield Intake(client, platform.pool)


def refused_because(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    body = response.json()
    [error] = body["errors"]
    assert error["field"] == "installments"
    message: str = error["message"]
    return message


@pytest.mark.parametrize(
    ("card", "kind"), [(DEBIT, "debit"), (PREPAID, "prepaid"), (TROY_DEBIT, "debit")]
)
async def test_debit_and_prepaid_cards_are_refused_installments(
    intake: Intake, card: str, kind: str
) -> None:
    merchant = await intake.merchant()
    response = await intake.pay(merchant, card, 3)
    assert refused_because(response) == f"{kind} cards pay in a single installment (installments=1)"
    assert response.json()["allowed_installments"] == [1]
    assert await intake.written(merchant) == (0, 0)
    assert (await intake.pay(merchant, card, 1)).status_code == 202
    assert await intake.written(merchant) == (1, 1)


async def test_over_the_merchants_maximum_is_refused(intake: Intake) -> None:
    merchant = await intake.merchant(max_installments=3)
    response = await intake.pay(merchant, CREDIT, 6)
    assert refused_because(response) == "this merchant allows at most 3 installments"
    assert response.json()["allowed_installments"] == [1, 2, 3]
    assert (await intake.pay(merchant, CREDIT, 3)).status_code == 202
    assert await intake.written(merchant) == (1, 1)


async def test_over_the_programmes_maximum_is_refused(intake: Intake) -> None:
    merchant = await intake.merchant()
    response = await intake.pay(merchant, CARDFINANS, 9)
    assert refused_because(response) == "CardFinans allows at most 6 installments"
    assert (await intake.pay(merchant, CARDFINANS, 6)).status_code == 202


async def test_over_the_fee_plans_maximum_is_refused(intake: Intake) -> None:
    merchant = await intake.merchant(fee_plan="single-payment")
    response = await intake.pay(merchant, CREDIT, 2)
    assert refused_because(response) == "the merchant's fee plan allows at most 1 installments"


async def test_test_cards_and_unknown_bins_keep_their_installments(intake: Intake) -> None:
    merchant = await intake.merchant()
    for card in (CREDIT, "5555555555554444", "4242424242424242", UNKNOWN_MASTERCARD):
        response = await intake.pay(merchant, card, 12)
        assert response.status_code == 202, (card[:6], response.text)


async def test_a_stored_debit_card_is_refused_installments_too(intake: Intake) -> None:
    merchant = await intake.merchant()
    saved = await intake.client.post(
        "/v1/cards",
        json={"card": {"number": DEBIT, "exp_month": 12, "exp_year": 2031}},
        headers=auth(merchant),
    )
    assert saved.status_code == 201, saved.text
    response = await intake.client.post(
        "/v1/payments",
        json={
            "amount": 5000,
            "currency": "TRY",
            "installments": 2,
            "card_token": saved.json()["id"],
            "initiated_by": "merchant",
        },
        headers=auth(merchant),
    )
    assert refused_because(response).startswith("debit cards")
    assert await intake.written(merchant) == (0, 0)


async def test_bin_lookup_for_a_known_programme(intake: Intake) -> None:
    merchant = await intake.merchant(max_installments=9)
    response = await intake.client.get("/v1/bins/45260310", headers=auth(merchant))
    assert response.status_code == 200, response.text
    body = response.json()
    assert {k: body[k] for k in ("scheme", "scheme_name", "card_type", "issuer", "programme")} == {
        "scheme": "visa",
        "scheme_name": "Visa",
        "card_type": "credit",
        "issuer": "Garanti BBVA",
        "programme": "Bonus",
    }
    assert (body["country"], body["known"], body["fee_plan"]) == ("TR", True, "standard")
    assert body["installments"][:3] == [
        {"count": 1, "commission_bps": 179},
        {"count": 2, "commission_bps": 239},
        {"count": 3, "commission_bps": 299},
    ]
    assert len(body["installments"]) == 9  # the merchant's maximum, below Bonus's 12


@pytest.mark.parametrize(
    ("bin_digits", "expected"),
    [
        ("97920300", ("troy", "debit", [1])),
        ("540667", ("mastercard", "credit", list(range(1, 10)))),
        ("37441100", ("amex", "credit", list(range(1, 7)))),
        ("65123456", ("discover", "unknown", list(range(1, 13)))),
        ("222100", ("mastercard", "unknown", list(range(1, 13)))),
    ],
)
async def test_bin_lookup(
    intake: Intake, bin_digits: str, expected: tuple[str, str, list[int]]
) -> None:
    merchant = await intake.merchant()
    body = (await intake.client.get(f"/v1/bins/{bin_digits}", headers=auth(merchant))).json()
    assert (body["scheme"], body["card_type"], [o["count"] for o in body["installments"]]) == (
        expected
    )


@pytest.mark.parametrize("bad", ["12345", "1234567", "123456789", "41111a11"])
async def test_bin_must_be_6_or_8_digits(intake: Intake, bad: str) -> None:
    merchant = await intake.merchant()
    response = await intake.client.get(f"/v1/bins/{bad}", headers=auth(merchant))
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["bin"]


async def test_bin_lookup_needs_an_api_key(intake: Intake) -> None:
    assert (await intake.client.get("/v1/bins/41111111")).status_code == 401
