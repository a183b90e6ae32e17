"""Exactly one source of card data per payment, and the rules for stored-card payments."""

import pytest
from pydantic import ValidationError

from intake.domain.commands import CreateCardRequest, CreatePaymentRequest

CARD = {"number": "4111 1111 1111 1111", "exp_month": 12, "exp_year": 2031, "cvc": "123"}
TOKEN = "tok_abcdefghijklmnop"


def errors(body: dict[str, object], model: type = CreatePaymentRequest) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        model.model_validate(body)
    return {".".join(map(str, e["loc"])) or "<body>": e["msg"] for e in info.value.errors()}


def pay(**fields: object) -> dict[str, object]:
    return {"amount": 1000, "currency": "TRY", **fields}


def test_token_payment_without_cvc_when_merchant_initiated() -> None:
    request = CreatePaymentRequest.model_validate(pay(card_token=TOKEN, initiated_by="merchant"))
    assert request.card is None and request.cvc is None


def test_customer_initiated_token_payment_may_carry_a_cvc() -> None:
    request = CreatePaymentRequest.model_validate(pay(card_token=TOKEN, cvc="987"))
    assert request.cvc is not None and request.cvc.get_secret_value() == "987"
    assert "987" not in repr(request)
    assert "987" not in str(request.fingerprint_for_idempotency())


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (pay(), "<body>"),
        (pay(card=CARD, card_token=TOKEN), "<body>"),
        (pay(card=CARD, encrypted_card="a.b.c.d.eeeeeeee"), "<body>"),
        (pay(card=CARD, initiated_by="merchant"), "initiated_by"),
        (pay(card=CARD, cvc="123"), "cvc"),
        (pay(card_token=TOKEN, initiated_by="merchant", cvc="123"), "cvc"),
        (pay(card_token=TOKEN, cvc="12"), "cvc"),
        (pay(card_token=TOKEN, save_card=True), "save_card"),
        (pay(card_token="tok_"), "card_token"),
        (pay(card_token="pm_abcdefghijkl"), "card_token"),
        (pay(card_token=TOKEN, initiated_by="bank"), "initiated_by"),
    ],
)
def test_each_rule_names_its_field(body: dict[str, object], field: str) -> None:
    assert field in errors(body)


def test_save_card_is_allowed_with_card_data() -> None:
    assert CreatePaymentRequest.model_validate(pay(card=CARD, save_card=True)).save_card


def test_idempotency_compares_token_and_mode_never_secrets() -> None:
    a = CreatePaymentRequest.model_validate(pay(card_token=TOKEN, cvc="555"))
    b = CreatePaymentRequest.model_validate(pay(card_token=TOKEN, initiated_by="merchant"))
    assert a.fingerprint_for_idempotency() != b.fingerprint_for_idempotency()
    assert "555" not in str(a.fingerprint_for_idempotency())


def test_stored_card_request_takes_card_or_encrypted_card_and_cvc_is_optional() -> None:
    no_cvc = {k: v for k, v in CARD.items() if k != "cvc"}
    assert CreateCardRequest.model_validate({"card": no_cvc}).card is not None
    assert "card.cvc" in errors({"card": {**CARD, "cvc": "1"}}, CreateCardRequest)
    assert "<body>" in errors({}, CreateCardRequest)
    assert "<body>" in errors({"card": CARD, "encrypted_card": "a.b.c.d.eeee"}, CreateCardRequest)
    assert "card.number" in errors(
        {"card": {**CARD, "number": "4111111111111112"}}, CreateCardRequest
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"description": "card 4111 1111 1111 1111 thanks"},
        {"metadata": {"note": "pan=4111-1111-1111-1111"}},
        {"metadata": {"4111111111111111": "x"}},
        {"card": {**CARD, "holder_name": "A 4111111111111111"}},
    ],
)
def test_free_text_must_not_carry_a_card_number(changes: dict[str, object]) -> None:
    found = errors({**pay(card=CARD), **changes})
    assert any("card number" in message for message in found.values()), found
    assert "4111" not in str(found)


def test_free_text_with_ordinary_numbers_is_fine() -> None:
    # Digit runs under 13 digits, or of 13 failing the Luhn check. (A longer run is refused
    # when any 13-19 of its consecutive digits pass the check: a card number glued to other
    # digits is still one. See docs/security.md.)
    body = pay(
        card=CARD,
        description="order 2026-11-26 #1234567890123 (not Luhn)",
        metadata={"sku": "411111111112", "ts": "1764174341"},
    )
    assert CreatePaymentRequest.model_validate(body).description
