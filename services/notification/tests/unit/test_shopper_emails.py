"""Shopper emails, pure: which event sends what, formatting, masking, escaping, catalogues."""
# ruff: noqa: RUF001 - Turkish text has the dotless i (U+0131)

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from notification.adapters.shopper_emails import ClaimedEmail
from notification.adapters.smtp_sender import SmtpConfig, SmtpSender, build_message
from notification.domain.shopper_emails import (
    LOCALES,
    EmailKind,
    Merchant,
    ShopperPayment,
    Trigger,
    card_label,
    catalogue,
    email_id,
    email_kind,
    format_amount,
    format_date,
    header_safe,
    mask_card,
    plan_email,
    render,
)
from sanalpos_common import topics
from sanalpos_common.schemas.codec import new_envelope
from sanalpos_common.schemas.events import (
    EncryptedCard,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentDeclined,
    PaymentInitiated,
    PaymentRefunded,
    PaymentVoided,
    Shopper,
)

PAN = "4111111111111111"
PAYMENT_ID = uuid.UUID("3f2b8e7c-1d4a-4c9b-8f6e-2a7d5c1b9e30")
CREATED = datetime(2026, 12, 3, 7, 23, tzinfo=UTC)  # 10:23 in Istanbul


def initiated(*, shopper: Shopper | None, capture: bool = True) -> PaymentInitiated:
    return PaymentInitiated(
        payment_id=PAYMENT_ID,
        merchant_id="mer_kitap",
        amount=125_000,
        currency="TRY",
        capture=capture,
        installments=3,
        card=EncryptedCard(
            pan_ciphertext="sp3.pan.1.opaque",
            fingerprint="fp1_x",
            bin=PAN[:8],
            last4=PAN[-4:],
            exp_month=12,
            exp_year=2031,
            brand="visa",
        ),
        created_at=CREATED,
        shopper=shopper,
    )


def payment(locale: str = "tr", **changes: object) -> ShopperPayment:
    shopper = Shopper(email="ayse@example.com", name="Ayşe Yılmaz", locale=locale)  # type: ignore[arg-type]
    return replace(ShopperPayment.from_initiated(initiated(shopper=shopper)), **changes)  # type: ignore[arg-type]


def trigger(topic: str, payload: object) -> Trigger | None:
    envelope = new_envelope(topic, payload, correlation_id=PAYMENT_ID, producer="authorization")  # type: ignore[arg-type]
    return Trigger.from_envelope(envelope)


def captured(amount: int = 125_000) -> Trigger:
    found = trigger(
        topics.PAYMENT_CAPTURED,
        PaymentCaptured(
            payment_id=PAYMENT_ID,
            merchant_id="mer_kitap",
            amount=amount,
            currency="TRY",
            installments=3,
            auth_code="A1B2C3",
        ),
    )
    assert found is not None
    return found


def authorized(capture: bool) -> Trigger | None:
    return trigger(
        topics.PAYMENT_AUTHORIZED,
        PaymentAuthorized(
            payment_id=PAYMENT_ID,
            merchant_id="mer_kitap",
            amount=125_000,
            currency="TRY",
            auth_code="A1B2C3",
            response_code="00",
            installments=3,
            capture=capture,
        ),
    )


def refunded(amount: int = 25_050) -> Trigger:
    found = trigger(
        topics.PAYMENT_REFUNDED,
        PaymentRefunded(
            refund_id=uuid.uuid4(),
            payment_id=PAYMENT_ID,
            merchant_id="mer_kitap",
            amount=amount,
            currency="TRY",
            reason="customer request",
        ),
    )
    assert found is not None
    return found


def voided(after_capture: bool) -> Trigger:
    found = trigger(
        topics.PAYMENT_VOIDED,
        PaymentVoided(
            payment_id=PAYMENT_ID,
            merchant_id="mer_kitap",
            amount=125_000,
            currency="TRY",
            after_capture=after_capture,
        ),
    )
    assert found is not None
    return found


MERCHANT = Merchant(name="Kitap Evi", time_zone="Europe/Istanbul")

# ----------------------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("amount", "currency", "tr", "en"),
    [
        (125_000, "TRY", "1.250,00 TL", "TRY 1,250.00"),
        (5, "TRY", "0,05 TL", "TRY 0.05"),
        (123_456_789, "TRY", "1.234.567,89 TL", "TRY 1,234,567.89"),
        (99_900, "USD", "999,00 USD", "USD 999.00"),
        (1_250, "JPY", "1.250 JPY", "JPY 1,250"),
        (1_234_567, "KWD", "1.234,567 KWD", "KWD 1,234.567"),
    ],
)
def test_amounts_are_written_the_locale_s_way_exact_to_the_exponent(
    amount: int, currency: str, tr: str, en: str
) -> None:
    assert format_amount(amount, currency, "tr") == tr
    assert format_amount(amount, currency, "en") == en


def test_a_card_is_masked_to_its_last_four_digits() -> None:
    assert mask_card("1234") == "**** **** **** 1234"
    assert card_label("visa", "1111", "en") == "Visa **** **** **** 1111"
    assert card_label("troy", "0005", "tr") == "Troy **** **** **** 0005"
    assert card_label("unknown", "0005", "tr") == "Kart **** **** **** 0005"
    for bad in ("123", "12345", "12a4", PAN):
        with pytest.raises(ValueError):
            mask_card(bad)


def test_dates_are_local_to_the_merchant_with_month_names_from_the_catalogue() -> None:
    assert format_date(CREATED, "tr") == "3 Aralık 2026 10:23 (UTC+03:00)"
    assert format_date(CREATED, "en") == "3 December 2026, 10:23 (UTC+03:00)"
    assert format_date(CREATED, "en", "Europe/London") == "3 December 2026, 07:23 (UTC+00:00)"
    assert format_date(CREATED, "en", "Not/AZone") == format_date(CREATED, "en")


def test_header_text_has_no_control_characters() -> None:
    assert header_safe("Ayşe\r\nBcc: evil@example.com\t Y") == "Ayşe Bcc: evil@example.com Y"


def test_both_catalogues_have_the_same_keys_and_placeholders() -> None:
    tr, en = catalogue("tr"), catalogue("en")
    assert set(tr) == set(en)
    for key in tr:
        assert set(re.findall(r"{(\w+)}", tr[key])) == set(re.findall(r"{(\w+)}", en[key])), key
    assert len(tr["months"].split("|")) == len(en["months"].split("|")) == 12


# ----------------------------------------------------------------------------- what is sent


def test_a_payment_keeps_brand_and_last4_only() -> None:
    kept = ShopperPayment.from_initiated(initiated(shopper=Shopper(email="a@example.com")))
    assert (kept.card_brand, kept.card_last4, kept.locale) == ("visa", "1111", "tr")
    assert PAN[:8] not in repr(kept)
    assert ShopperPayment.from_initiated(initiated(shopper=None)).email is None


def test_success_is_the_capture_of_a_sale_and_the_authorization_of_a_preauthorization() -> None:
    sale, preauth = payment(), payment(capture=False)
    assert authorized(capture=True) is None  # a sale's authorization never emails
    preauth_authorized = authorized(capture=False)
    assert preauth_authorized is not None
    assert email_kind(sale, captured()) is EmailKind.RECEIPT
    assert email_kind(preauth, preauth_authorized) is EmailKind.PREAUTHORIZATION
    assert email_kind(preauth, captured()) is None  # told at authorization already
    assert email_kind(sale, refunded()) is EmailKind.REFUND
    assert email_kind(sale, voided(after_capture=True)) is EmailKind.VOID
    assert email_kind(preauth, voided(after_capture=False)) is EmailKind.VOID_HOLD


def test_declines_and_other_outcomes_send_nothing() -> None:
    declined = PaymentDeclined(
        payment_id=PAYMENT_ID,
        merchant_id="mer_kitap",
        amount=125_000,
        currency="TRY",
        response_code="51",
        reason="insufficient funds",
        declined_by="issuer",
    )
    assert trigger(topics.PAYMENT_DECLINED, declined) is None


def test_no_address_no_email_and_one_id_per_event() -> None:
    assert plan_email(payment(email=None), captured(), MERCHANT) is None
    event = captured()
    email = plan_email(payment(), event, MERCHANT)
    assert email is not None
    assert email.id == email_id(event.message_id) == plan_email(payment(), event, MERCHANT).id  # type: ignore[union-attr]
    assert email.id != email_id(captured().message_id)
    assert (email.to_address, email.to_name, email.kind) == (
        "ayse@example.com",
        "Ayşe Yılmaz",
        EmailKind.RECEIPT,
    )


def test_a_trigger_survives_its_json_round_trip() -> None:
    for event in (captured(), refunded(), voided(after_capture=False), authorized(False)):
        assert event is not None
        assert Trigger.from_json(event.to_json()) == event


# ----------------------------------------------------------------------------- rendering


def test_turkish_receipt() -> None:
    email = render(EmailKind.RECEIPT, payment("tr"), captured(), MERCHANT)
    assert email.subject == "Kitap Evi ödeme dekontunuz"
    for expected in (
        "Merhaba Ayşe Yılmaz,",
        "Kitap Evi işyerine yaptığınız ödeme başarıyla alındı.",
        "1.250,00 TL",
        "3 taksit",
        "Visa **** **** **** 1111",
        "3 Aralık 2026 10:23",
        str(PAYMENT_ID),
    ):
        assert expected in email.text, expected
        assert expected in email.html, expected
    assert "Tutar:" in email.text and "Taksit:" in email.text
    assert "Amount" not in email.text
    assert '<html lang="tr">' in email.html


def test_english_receipt() -> None:
    email = render(EmailKind.RECEIPT, payment("en"), captured(), MERCHANT)
    assert email.subject == "Your receipt from Kitap Evi"
    for expected in (
        "Hello Ayşe Yılmaz,",
        "Your payment to Kitap Evi was successful.",
        "TRY 1,250.00",
        "3 installments",
        "Visa **** **** **** 1111",
        "3 December 2026, 10:23",
    ):
        assert expected in email.text, expected
        assert expected in email.html, expected
    assert "Taksit" not in email.text and "Amount:" in email.text


def test_single_payment_and_no_name() -> None:
    email = render(EmailKind.RECEIPT, payment("en", installments=1, name=None), captured(), None)
    assert "Single payment" in email.text
    assert email.text.startswith("Hello,\n")
    assert "mer_kitap" in email.text  # the merchant's id stands in until its name is known


@pytest.mark.parametrize("locale", LOCALES)
def test_refund_and_void_notices(locale: str) -> None:
    refund = render(EmailKind.REFUND, payment(locale), refunded(25_050), MERCHANT)
    assert ("250,50 TL" if locale == "tr" else "TRY 250.50") in refund.text
    assert ("iade" if locale == "tr" else "refund") in refund.subject.lower()
    assert ("Taksit" if locale == "tr" else "Installments") not in refund.text
    void = render(EmailKind.VOID, payment(locale), voided(True), MERCHANT)
    hold = render(EmailKind.VOID_HOLD, payment(locale), voided(False), MERCHANT)
    assert void.subject != hold.subject
    assert ("iptal" if locale == "tr" else "cancelled") in void.subject


def test_html_escapes_merchant_and_shopper_names_and_text_keeps_them() -> None:
    evil = Merchant(name='Kitap & "Co" <script>alert(1)</script>')
    email = render(
        EmailKind.RECEIPT, payment("en", name="<img src=x onerror=alert(1)>"), captured(), evil
    )
    assert "<script>" not in email.html and "<img" not in email.html
    assert "Kitap &amp; &quot;Co&quot; &lt;script&gt;alert(1)&lt;/script&gt;" in email.html
    assert "&lt;img src=x onerror=alert(1)&gt;" in email.html
    assert "<script>alert(1)</script>" in email.text  # plain text needs no escaping


def test_a_merchant_name_with_braces_is_not_a_format_string() -> None:
    email = render(EmailKind.RECEIPT, payment("en"), captured(), Merchant(name="{merchant} {0}"))
    assert "Your payment to {merchant} {0} was successful." in email.text


# ----------------------------------------------------------------------------- the message


def _claimed(locale: str = "tr") -> ClaimedEmail:
    planned = plan_email(payment(locale), captured(), MERCHANT)
    assert planned is not None
    return ClaimedEmail(
        id=planned.id,
        payment_id=planned.payment_id,
        kind=planned.kind.value,
        locale=planned.locale,
        to_address=planned.to_address,
        to_name=planned.to_name,
        subject=planned.subject,
        text_body=planned.text_body,
        html_body=planned.html_body,
        attempt=1,
        created_at=CREATED,
    )


def test_the_message_is_multipart_text_and_html_with_a_stable_message_id() -> None:
    email = _claimed()
    raw = bytes(build_message(email, "Kitap Evi via sanalpos <receipts@sanalpos.example>"))
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed["Message-ID"] == f"<{email.id}@sanalpos.example>"
    assert parsed["To"].addresses[0].addr_spec == "ayse@example.com"
    assert parsed["To"].addresses[0].display_name == "Ayşe Yılmaz"
    assert parsed["From"].addresses[0].addr_spec == "receipts@sanalpos.example"
    assert str(parsed["Subject"]) == "Kitap Evi ödeme dekontunuz"
    assert parsed["Content-Language"] == "tr"
    text = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert text is not None and html is not None
    assert "Visa **** **** **** 1111" in text.get_content()
    assert "Visa **** **** **** 1111" in html.get_content()
    assert PAN.encode() not in raw and PAN[:8].encode() not in raw
    assert PAN not in text.get_content() + html.get_content()


def test_no_message_carries_a_card_shaped_digit_run() -> None:
    # Python's default MIME boundary is a random 19-digit number; a Luhn-valid one made the
    # canary scan report a card number in a receipt one time in ten.
    card_shaped = re.compile(rb"(?<!\d)\d{13,19}(?!\d)")
    for _ in range(50):
        email = replace(_claimed(), id=uuid.uuid4())
        raw = bytes(build_message(email, "sanalpos <no-reply@sanalpos.example>"))
        assert card_shaped.findall(raw) == []
        parsed = message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        assert [part.get_content_type() for part in parsed.iter_parts()] == [
            "text/plain",
            "text/html",
        ]


async def test_an_address_that_is_no_rfc_5322_address_is_given_up_without_naming_it() -> None:
    sender = SmtpSender(SmtpConfig(host="127.0.0.1", port=1, timeout_s=0.5))
    for address in ("a,b@example.com", "<a>@example.com", 'a"b@example.com'):
        result = await sender.send(replace(_claimed(), to_address=address))
        assert not result.ok and result.permanent and result.code is None
        assert result.error is not None and address not in result.error
        assert result.error.startswith("invalid address")
