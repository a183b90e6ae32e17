"""Shopper emails end to end: events through the real broker and database, out over SMTP to a
real (in-process aiosmtpd) server."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, time
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from pydantic import BaseModel

from notification.adapters.timeline import payment_timeline
from notification.domain.shopper_emails import Trigger, email_id
from sanalpos_common import topics
from sanalpos_common.crypto.aad import pan_aad
from sanalpos_common.crypto.card import fingerprint
from sanalpos_common.crypto.envelope import encrypt
from sanalpos_common.crypto.keyring import Keyring
from sanalpos_common.schemas.codec import new_envelope
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import (
    EncryptedCard,
    MerchantUpdated,
    PaymentCaptured,
    PaymentInitiated,
    PaymentRefunded,
    PaymentVoided,
    Shopper,
    correlation_id_of,
)
from sanalpos_common.settings import DEV_PAN_KEYRING

from .conftest import Mail, Service, SmtpSink, wait_for

PAN_RING = Keyring.from_json(DEV_PAN_KEYRING)
# Test card numbers (Luhn-valid): none of them may ever appear in an email.
VISA = "4111111111111111"
MASTERCARD = "5555555555554444"
TROY = "9792030000000005"


def _merchant() -> str:
    return f"m-{uuid.uuid4().hex[:12]}"


def _envelope(topic: str, payload: BaseModel) -> Envelope[Any]:
    return new_envelope(topic, payload, correlation_id=correlation_id_of(payload), producer="tests")


async def _announce(service: Service, merchant: str, name: str) -> None:
    event = MerchantUpdated(
        merchant_id=merchant,
        name=name,
        settlement_currency="TRY",
        time_zone="Europe/Istanbul",
        cutoff_time=time(23, 59),
        fee_plan="standard",
        version=1,
    )
    await service.publish(topics.MERCHANT_UPDATED, _envelope(topics.MERCHANT_UPDATED, event))

    async def known() -> bool:
        return bool(
            await service.pool.fetchval(
                "SELECT 1 FROM merchants WHERE merchant_id = $1 AND name = $2", merchant, name
            )
        )

    await wait_for(known)


async def _initiate(
    service: Service,
    merchant: str,
    pan: str,
    *,
    shopper: Shopper | None,
    amount: int = 125_000,
    capture: bool = True,
    brand: str = "visa",
    wait: bool = True,
) -> PaymentInitiated:
    payment_id = uuid.uuid4()
    event = PaymentInitiated(
        payment_id=payment_id,
        merchant_id=merchant,
        amount=amount,
        currency="TRY",
        capture=capture,
        installments=3,
        card=EncryptedCard(
            pan_ciphertext=encrypt(PAN_RING, pan.encode(), pan_aad(merchant, payment_id)),
            fingerprint=fingerprint(b"k", pan),
            bin=pan[:8],
            last4=pan[-4:],
            exp_month=12,
            exp_year=2031,
            brand=brand,
        ),
        created_at=datetime.now(UTC),
        shopper=shopper,
    )
    await service.publish(topics.PAYMENT_INITIATED, _envelope(topics.PAYMENT_INITIATED, event))
    if wait:

        async def kept() -> bool:
            return bool(
                await service.pool.fetchval(
                    "SELECT 1 FROM shopper_payments WHERE payment_id = $1", payment_id
                )
            )

        await wait_for(kept)
    return event


def _captured(payment: PaymentInitiated) -> Envelope[Any]:
    return _envelope(
        topics.PAYMENT_CAPTURED,
        PaymentCaptured(
            payment_id=payment.payment_id,
            merchant_id=payment.merchant_id,
            amount=payment.amount,
            currency=payment.currency,
            installments=payment.installments,
            auth_code="A1B2C3",
        ),
    )


async def _mails(smtp: SmtpSink, address: str, count: int = 1) -> list[Mail]:
    async def arrived() -> list[Mail] | None:
        mails = smtp.to(address)
        return mails if len(mails) >= count else None

    return await wait_for(arrived, timeout=20)


def _parse(mail: Mail) -> tuple[EmailMessage, str, str]:
    message = message_from_bytes(mail.data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    return message, text.get_content(), html.get_content()


def _assert_no_card_number(mail: Mail, *pans: str) -> None:
    message, text, html = _parse(mail)
    for pan in pans:
        assert pan.encode() not in mail.data
        assert pan[:8].encode() not in mail.data  # not even the BIN
        assert pan not in text and pan not in html
        assert pan not in str(message["Subject"])


async def _sent(service: Service, message_id: uuid.UUID) -> dict[str, Any]:
    async def sent() -> dict[str, Any] | None:
        row = await service.pool.fetchrow(
            "SELECT * FROM shopper_emails WHERE id = $1 AND status = 'sent'", email_id(message_id)
        )
        return dict(row) if row else None

    return await wait_for(sent, timeout=20)


async def test_a_captured_sale_sends_one_receipt_in_the_shopper_s_language(
    service: Service, smtp: SmtpSink
) -> None:
    merchant = _merchant()
    await _announce(service, merchant, 'Kitap & Kahve <b>"Moda"</b>')
    address = f"ayse.{merchant}@example.com"
    shopper = Shopper(email=address, name="Ayse <Yilmaz>", locale="tr")
    payment = await _initiate(service, merchant, VISA, shopper=shopper)
    captured = _captured(payment)
    await service.publish(topics.PAYMENT_CAPTURED, captured)

    [mail] = await _mails(smtp, address)
    message, text, html = _parse(mail)
    assert mail.rcpt_tos == [address] and mail.mail_from == "receipts@sanalpos.test"
    assert str(message["Subject"]) == 'Kitap & Kahve <b>"Moda"</b> ödeme dekontunuz'
    assert message["Message-ID"] == f"<{email_id(captured.message_id)}@sanalpos.test>"
    assert message["To"].addresses[0].display_name == "Ayse <Yilmaz>"
    for expected in ("1.250,00 TL", "3 taksit", "Visa **** **** **** 1111", "Tutar", "Kart"):
        assert expected in text, expected
        assert expected in html, expected
    assert "Amount" not in text
    assert "Merhaba Ayse <Yilmaz>," in text
    assert "Merhaba Ayse &lt;Yilmaz&gt;," in html
    assert "Kitap &amp; Kahve &lt;b&gt;&quot;Moda&quot;&lt;/b&gt;" in html
    assert "<b>" not in html
    _assert_no_card_number(mail, VISA)

    row = await _sent(service, captured.message_id)
    assert row["kind"] == "receipt" and row["attempts"] == 1
    assert row["sent_at"] is not None and row["last_error"] is None
    [attempt] = await service.pool.fetch(
        "SELECT * FROM shopper_email_attempts WHERE email_id = $1", row["id"]
    )
    assert attempt["attempt"] == 1 and attempt["error"] is None
    # The database keeps brand and last four only.
    card = await service.pool.fetchrow(
        "SELECT card_brand, card_last4 FROM shopper_payments WHERE payment_id = $1",
        payment.payment_id,
    )
    assert dict(card) == {"card_brand": "visa", "card_last4": "1111"}
    async with service.pool.acquire() as conn:
        timeline = [e.what for e in await payment_timeline(conn, payment.payment_id)]
    assert "shopper email queued: receipt (tr)" in timeline
    assert "shopper email attempt 1: receipt" in timeline


async def test_english_receipt_before_its_payment_is_known(
    service: Service, smtp: SmtpSink
) -> None:
    """The capture is consumed first (another topic), then its payment.initiated."""
    merchant = _merchant()
    await _announce(service, merchant, "Book Corner")
    address = f"john.{merchant}@example.com"
    payment = await _initiate(
        service,
        merchant,
        MASTERCARD,
        shopper=Shopper(email=address, locale="en"),
        brand="mastercard",
        wait=False,
    )
    captured = _captured(payment)
    # Published after, yet possibly consumed before or after: either way one receipt.
    await service.publish(topics.PAYMENT_CAPTURED, captured)
    [mail] = await _mails(smtp, address)
    message, text, html = _parse(mail)
    assert str(message["Subject"]) == "Your receipt from Book Corner"
    for expected in ("TRY 1,250.00", "3 installments", "Mastercard **** **** **** 4444"):
        assert expected in text and expected in html, expected
    assert text.startswith("Hello,")
    _assert_no_card_number(mail, MASTERCARD)
    assert not await service.pool.fetchval(
        "SELECT count(*) FROM shopper_emails_waiting WHERE payment_id = $1", payment.payment_id
    )


async def test_a_redelivered_capture_does_not_send_twice(service: Service, smtp: SmtpSink) -> None:
    merchant = _merchant()
    await _announce(service, merchant, "Dup Shop")
    address = f"dup.{merchant}@example.com"
    payment = await _initiate(service, merchant, VISA, shopper=Shopper(email=address))
    captured = _captured(payment)
    await service.publish(topics.PAYMENT_CAPTURED, captured)
    await service.publish(topics.PAYMENT_CAPTURED, captured)  # redelivery: same message_id
    # Same topic and key, so the same partition: once this later event's email is sent, both
    # copies of the first have certainly been consumed.
    sentinel = _captured(payment)
    await service.publish(topics.PAYMENT_CAPTURED, sentinel)
    await _sent(service, sentinel.message_id)
    await _sent(service, captured.message_id)
    await asyncio.sleep(0.3)

    mails = smtp.to(address)
    ids = sorted(_parse(m)[0]["Message-ID"] for m in mails)
    assert ids == sorted(f"<{email_id(e.message_id)}@sanalpos.test>" for e in (captured, sentinel))
    rows = await service.pool.fetchval(
        "SELECT count(*) FROM shopper_emails WHERE payment_id = $1", payment.payment_id
    )
    assert rows == 2


async def test_refunds_and_voids_send_their_own_notices(service: Service, smtp: SmtpSink) -> None:
    merchant = _merchant()
    await _announce(service, merchant, "Refund Store")
    address = f"refund.{merchant}@example.com"
    payment = await _initiate(
        service, merchant, TROY, shopper=Shopper(email=address, locale="en"), brand="troy"
    )
    await service.publish(topics.PAYMENT_CAPTURED, _captured(payment))
    await _mails(smtp, address, 1)
    refund = _envelope(
        topics.PAYMENT_REFUNDED,
        PaymentRefunded(
            refund_id=uuid.uuid4(),
            payment_id=payment.payment_id,
            merchant_id=merchant,
            amount=25_050,
            currency="TRY",
            reason="returned",
        ),
    )
    await service.publish(topics.PAYMENT_REFUNDED, refund)
    mails = await _mails(smtp, address, 2)
    notice = next(m for m in mails if f"{email_id(refund.message_id)}".encode() in m.data)
    message, text, html = _parse(notice)
    assert str(message["Subject"]) == "Refund Store: your refund"
    for expected in ("Refunded amount", "TRY 250.50", "Troy **** **** **** 0005"):
        assert expected in text and expected in html, expected
    _assert_no_card_number(notice, TROY)
    assert (await _sent(service, refund.message_id))["kind"] == "refund"

    # A pre-authorization: the hold is its receipt, the release its notice.
    preauth = await _initiate(
        service, merchant, VISA, shopper=Shopper(email=address, locale="tr"), capture=False
    )
    voided = _envelope(
        topics.PAYMENT_VOIDED,
        PaymentVoided(
            payment_id=preauth.payment_id,
            merchant_id=merchant,
            amount=preauth.amount,
            currency="TRY",
            after_capture=False,
        ),
    )
    await service.publish(topics.PAYMENT_VOIDED, voided)
    mails = await _mails(smtp, address, 3)
    void = next(m for m in mails if f"{email_id(voided.message_id)}".encode() in m.data)
    message, text, _ = _parse(void)
    assert str(message["Subject"]) == "Refund Store: ön provizyon iptal edildi"
    assert "1.250,00 TL" in text and "Visa **** **** **** 1111" in text
    _assert_no_card_number(void, VISA)


async def test_no_shopper_address_no_email(service: Service, smtp: SmtpSink) -> None:
    merchant = _merchant()
    payment = await _initiate(service, merchant, VISA, shopper=Shopper(name="No Address"))
    anonymous = await _initiate(service, merchant, VISA, shopper=None)
    for p in (payment, anonymous):
        await service.publish(topics.PAYMENT_CAPTURED, _captured(p))
    # A third payment of the same merchant that does have an address, captured after.
    address = f"only.{merchant}@example.com"
    later = await _initiate(service, merchant, VISA, shopper=Shopper(email=address))
    await service.publish(topics.PAYMENT_CAPTURED, _captured(later))
    await _mails(smtp, address)
    await asyncio.sleep(0.3)
    count = await service.pool.fetchval(
        "SELECT count(*) FROM shopper_emails WHERE merchant_id = $1", merchant
    )
    assert count == 1
    assert all(merchant not in r for m in smtp.received for r in m.rcpt_tos if r != address)


async def test_an_smtp_server_that_is_down_gets_the_email_once_it_is_up(
    service: Service, smtp: SmtpSink
) -> None:
    merchant = _merchant()
    await _announce(service, merchant, "Patient Shop")
    address = f"retry.{merchant}@example.com"
    payment = await _initiate(service, merchant, VISA, shopper=Shopper(email=address))
    captured = _captured(payment)
    smtp.stop()
    try:
        await service.publish(topics.PAYMENT_CAPTURED, captured)

        async def failed_twice() -> dict[str, Any] | None:
            row = await service.pool.fetchrow(
                "SELECT * FROM shopper_emails WHERE id = $1", email_id(captured.message_id)
            )
            return dict(row) if row and row["attempts"] >= 2 and row["last_error"] else None

        row = await wait_for(failed_twice, timeout=20)
        assert row["status"] == "pending" and row["sent_at"] is None
        assert "Connect" in row["last_error"] or "refused" in row["last_error"].lower()
    finally:
        smtp.start()
    [mail] = await _mails(smtp, address)
    _assert_no_card_number(mail, VISA)
    row = await _sent(service, captured.message_id)
    assert row["attempts"] >= 3
    attempts = await service.pool.fetch(
        "SELECT attempt, error FROM shopper_email_attempts WHERE email_id = $1 ORDER BY attempt",
        row["id"],
    )
    assert [a["attempt"] for a in attempts] == list(range(1, row["attempts"] + 1))
    assert all(a["error"] for a in attempts[:-1]) and attempts[-1]["error"] is None


async def test_a_refused_recipient_is_given_up_at_once(service: Service, smtp: SmtpSink) -> None:
    merchant = _merchant()
    address = f"gone.{merchant}@example.com"
    smtp.refuse.add(address)
    payment = await _initiate(service, merchant, VISA, shopper=Shopper(email=address))
    captured = _captured(payment)
    await service.publish(topics.PAYMENT_CAPTURED, captured)

    async def final() -> dict[str, Any] | None:
        row = await service.pool.fetchrow(
            "SELECT * FROM shopper_emails WHERE id = $1 AND status <> 'pending'",
            email_id(captured.message_id),
        )
        return dict(row) if row else None

    row = await wait_for(final, timeout=20)
    assert row["status"] == "failed" and row["attempts"] == 1
    assert row["last_smtp_code"] == 550 and "refused" in row["last_error"]
    assert row["sent_at"] is None and smtp.to(address) == []


async def test_an_outcome_left_waiting_for_a_known_payment_is_resolved(
    service: Service, smtp: SmtpSink
) -> None:
    """Two replicas: one kept the payment while the other parked its capture, neither seeing
    the other's uncommitted row. The email worker's sweep finds the pair and sends."""
    merchant = _merchant()
    address = f"race.{merchant}@example.com"
    payment = await _initiate(service, merchant, VISA, shopper=Shopper(email=address))
    captured = _captured(payment)
    trigger = Trigger.from_envelope(captured)
    assert trigger is not None
    await service.pool.execute(
        "INSERT INTO shopper_emails_waiting (message_id, payment_id, event) "
        "VALUES ($1, $2, $3::jsonb)",
        trigger.message_id,
        trigger.payment_id,
        trigger.to_json(),
    )
    [mail] = await _mails(smtp, address)
    assert f"<{email_id(captured.message_id)}@sanalpos.test>" == _parse(mail)[0]["Message-ID"]
    assert not await service.pool.fetchval(
        "SELECT count(*) FROM shopper_emails_waiting WHERE payment_id = $1", payment.payment_id
    )
