"""The shopper is told, through the whole system: a payment made over intake's API with a
shopper's address gets its receipt from notification over SMTP, and its refund a notice;
neither carries the card number."""

from __future__ import annotations

import uuid
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import asyncpg
import httpx

from tests.integration.canary import fresh_number
from tests.integration.conftest import new_merchant
from tests.integration.support import MailSink, eventually


async def _emails(mail: MailSink, address: str, count: int) -> list[EmailMessage]:
    async def arrived() -> list[bytes] | None:
        found = mail.to(address)
        return found if len(found) >= count else None

    raw = await eventually(arrived, timeout_s=45)
    messages = []
    for data in raw:
        message = message_from_bytes(data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        messages.append(message)
    return messages


def _parts(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


async def test_a_sale_s_receipt_and_its_refund_notice_reach_the_shopper(
    intake: httpx.AsyncClient, mail: MailSink, databases: dict[str, asyncpg.Pool]
) -> None:
    name = f"Kitap & Kahve <{uuid.uuid4().hex[:6]}>"
    shop = await new_merchant(intake, name)
    headers = {"Authorization": f"Bearer {shop['api_key']}"}

    async def named() -> bool | None:
        # merchant.updated travels on its own topic: the name is there before the payment.
        found = await databases["notification"].fetchval(
            "SELECT 1 FROM merchants WHERE name = $1", name
        )
        return True if found else None

    await eventually(named, timeout_s=30)
    card = fresh_number("4111")
    address = f"ayse.{uuid.uuid4().hex[:8]}@example.com"
    response = await intake.post(
        "/v1/payments",
        json={
            "amount": 125_000,
            "currency": "TRY",
            "capture": True,
            "installments": 3,
            "card": {"number": card, "exp_month": 12, "exp_year": 2031, "cvc": "123"},
            "shopper": {"email": address, "name": "Ayse Yilmaz", "locale": "tr"},
        },
        headers=headers,
    )
    assert response.status_code == 202, response.text
    payment_id = response.json()["id"]

    [receipt] = await _emails(mail, address, 1)
    text, html = _parts(receipt)
    assert "ödeme dekontunuz" in str(receipt["Subject"])
    assert name in str(receipt["Subject"]) and name in text
    assert name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in html
    for expected in ("1.250,00 TL", "3 taksit", f"Visa **** **** **** {card[-4:]}", payment_id):
        assert expected in text and expected in html, expected

    async def captured() -> dict[str, Any] | None:
        payment = (await intake.get(f"/v1/payments/{payment_id}", headers=headers)).json()
        return payment if payment["status"] in {"captured", "settled"} else None

    await eventually(captured, timeout_s=45)
    refund = await intake.post(
        f"/v1/payments/{payment_id}/refunds",
        json={"amount": 25_050, "reason": "one book returned"},
        headers=headers,
    )
    assert refund.status_code == 202, refund.text
    messages = await _emails(mail, address, 2)
    [notice] = [m for m in messages if m["Message-ID"] != receipt["Message-ID"]]
    text, html = _parts(notice)
    assert "iade" in str(notice["Subject"])
    assert "250,50 TL" in text and f"**** **** **** {card[-4:]}" in text

    for data in mail.to(address):
        assert card.encode() not in data and card[:8].encode() not in data
    for message in messages:
        assert card not in "".join(_parts(message))
