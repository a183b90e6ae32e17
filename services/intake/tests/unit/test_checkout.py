"""The pure rules of the hosted payment page: amounts as shoppers read them, the session's
status, what the page tells the shopper (including a 3-D Secure next action), where the
browser goes back to, and the signed result."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from intake.domain.checkout import (
    LatestPayment,
    ShopperView,
    attempts_left,
    check_frame_ancestors,
    decline_reason,
    format_amount,
    installment_rows,
    is_session_id,
    new_session_id,
    return_target,
    session_status,
    shopper_view,
    signed_text,
)
from intake.entrypoints.http.checkout_page import ASSETS, messages
from intake.service_layer.checkout import with_query
from intake.service_layer.checkout_signing import ResultSigner, generate_signing_key_pem

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "text"),
    [
        (125000, "TRY", "tr", "1.250,00 TL"),
        (125000, "TRY", "en", "TRY 1,250.00"),
        (5, "TRY", "tr", "0,05 TL"),
        (123456789, "TRY", "en", "TRY 1,234,567.89"),
        (1250, "JPY", "en", "JPY 1,250"),
        (1250, "JPY", "tr", "1.250 JPY"),
        (1250500, "KWD", "en", "KWD 1,250.500"),
        (99900, "EUR", "tr", "999,00 EUR"),
    ],
)
def test_amounts_are_formatted_for_the_locale(
    amount: int, currency: str, locale: str, text: str
) -> None:
    assert format_amount(amount, currency, locale) == text


def test_installment_rows_keep_the_total() -> None:
    rows = installment_rows(100000, [3, 1, 6])
    assert [(r.count, r.monthly, r.first, r.total) for r in rows] == [
        (1, 100000, 100000, 100000),
        (3, 33333, 33334, 100000),
        (6, 16666, 16670, 100000),
    ]


def test_session_ids_are_random_and_recognised() -> None:
    ids = {new_session_id() for _ in range(100)}
    assert len(ids) == 100 and all(is_session_id(i) for i in ids)
    assert not is_session_id("cs_short") and not is_session_id("mer_" + "a" * 32)


def test_frame_ancestors_are_origins() -> None:
    assert check_frame_ancestors(["https://b.example", "https://a.example:8443"]) == [
        "https://a.example:8443",
        "https://b.example",
    ]
    for bad in (["https://a.example/path"], ["*"], ["'self'"], ["javascript:x"]):
        with pytest.raises(ValueError):
            check_frame_ancestors(bad)


def test_session_status_is_derived() -> None:
    later = NOW + timedelta(minutes=30)
    assert session_status(later, NOW, []) == "open"
    assert session_status(later, NOW, ["declined", "pending"]) == "open"
    assert session_status(later, NOW, ["declined", "captured"]) == "completed"
    assert session_status(NOW, NOW, ["declined"]) == "expired"
    assert session_status(NOW - timedelta(1), NOW, ["authorized"]) == "completed"
    assert attempts_left(3, ["declined", "declined", "pending"]) == 1
    assert attempts_left(1, ["declined", "declined"]) == 0


def test_a_payment_requiring_action_sends_the_shopper_to_its_url() -> None:
    url = "https://acs.example/challenge/abc"
    view = shopper_view("open", LatestPayment("requires_action", next_action_url=url), 3)
    assert view.document() == {
        "status": "requires_action",
        "attempts_left": 3,
        "final": False,
        "next_action_url": url,
    }
    # Before the URL is known (or where intake does not record it yet), the page waits.
    waiting = shopper_view("open", LatestPayment("requires_action"), 3)
    assert waiting.state == "pending" and waiting.next_action_url is None


def test_declines_tell_a_shopper_safe_reason() -> None:
    assert decline_reason("51", "issuer") == "insufficient_funds"
    assert decline_reason("05", "issuer") == "declined"
    assert decline_reason("05", "fraud") == "declined"  # never why fraud said no
    assert decline_reason(None, "authentication") == "authentication_failed"
    view = shopper_view("open", LatestPayment("declined", "51", "issuer"), 2)
    assert (view.state, view.reason, view.final) == ("declined", "insufficient_funds", False)
    last = shopper_view("open", LatestPayment("declined", "51", "issuer"), 0)
    assert last.final
    catalogue = messages("tr")
    for code in ("51", "54", "14", "N7", "57", "61", "05"):
        assert f"js_reason_{decline_reason(code, 'issuer')}" in catalogue
    assert "js_reason_authentication_failed" in catalogue


def test_the_return_goes_to_the_shop_only_with_an_outcome() -> None:
    ok, ko = "https://shop.example/ok", "https://shop.example/ko"
    assert return_target(ShopperView("succeeded", 3, final=True), ok, ko).url == ok
    assert return_target(ShopperView("expired", 0, final=True), ok, ko).url == ko
    declined_last = ShopperView("declined", 0, reason="declined", final=True)
    assert return_target(declined_last, ok, ko).outcome == "declined"
    declined = ShopperView("declined", 2, reason="declined")
    assert return_target(declined, ok, ko).url is None  # may still retry
    assert return_target(declined, ok, ko, canceled=True).outcome == "declined"
    assert return_target(ShopperView("open", 3), ok, ko, canceled=True).outcome == "canceled"
    pending = ShopperView("pending", 3)
    assert return_target(pending, ok, ko, canceled=True).url is None  # a payment in flight


def test_results_are_signed_over_every_field() -> None:
    signer = ResultSigner.from_pem(generate_signing_key_pem())
    text = signed_text("mer_a", "cs_x", "p-1", "succeeded", 1764750000, signer.kid)
    assert text.decode().splitlines() == [
        "sanalpos-checkout-v1",
        signer.kid,
        "mer_a",
        "cs_x",
        "p-1",
        "succeeded",
        "1764750000",
    ]
    signature = signer.sign(text)
    assert signer.verify(text, signature)
    for changed in (
        signed_text("mer_b", "cs_x", "p-1", "succeeded", 1764750000, signer.kid),
        signed_text("mer_a", "cs_x", "p-1", "declined", 1764750000, signer.kid),
        signed_text("mer_a", "cs_x", "p-2", "succeeded", 1764750000, signer.kid),
        signed_text("mer_a", "cs_x", "p-1", "succeeded", 1764750001, signer.kid),
    ):
        assert not signer.verify(changed, signature)
    assert signer.public_jwk()["kid"] == signer.kid and signer.kid.startswith("cse_")


def test_the_result_is_added_to_the_shops_own_query() -> None:
    assert with_query("https://s.example/p?o=1#top", {"a": "b c"}) == (
        "https://s.example/p?o=1&a=b+c#top"
    )
    assert with_query("https://s.example/p", {"a": "1"}) == "https://s.example/p?a=1"


def test_the_catalogues_hold_the_same_messages() -> None:
    assert set(messages("tr")) == set(messages("en"))
    assert all(value.strip() for value in {**messages("tr"), **messages("en")}.values())


def test_templates_hold_no_text_of_their_own() -> None:
    """Every word a shopper reads comes from a catalogue: with tags, Jinja blocks and
    expressions taken away, no letters are left in the templates."""
    for template in (ASSETS / "templates").glob("*.html"):
        source = template.read_text()
        stripped = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|<!--.*?-->", "", source, flags=re.S)
        stripped = re.sub(r"<[^>]*>", "", stripped, flags=re.S)
        assert re.findall(r"[^\W\d_]+", stripped) == [], template.name
