"""Authorization opens a stored card's PAN with the token-scoped associated data, and a
ciphertext moved to another merchant, token or scope does not open."""

import uuid
from datetime import UTC, datetime

import pytest

from authorization.service_layer.handlers import AuthorizationHandlers
from sanalpos_common.crypto.aad import cvc_aad, pan_aad
from sanalpos_common.crypto.cvc import rotate_cvc_keys
from sanalpos_common.crypto.envelope import DecryptionError, encrypt
from sanalpos_common.crypto.keyring import Keyring
from sanalpos_common.schemas.events import (
    EncryptedCard,
    FraudDecision,
    PaymentScored,
    token_pan_aad,
)

PAN_KEYS = Keyring.generate("pan")
CVC_KEYS = rotate_cvc_keys(None, datetime.now(UTC))
HANDLERS = AuthorizationHandlers(
    issuer=None,  # type: ignore[arg-type]
    repositories=None,  # type: ignore[arg-type]
    pan_keyring=PAN_KEYS,
    cvc_keyring=CVC_KEYS,
)
PAN = "4000056655665556"


def scored(card: EncryptedCard, merchant: str, payment_id: uuid.UUID) -> PaymentScored:
    return PaymentScored(
        payment_id=payment_id,
        merchant_id=merchant,
        score=1,
        decision=FraudDecision.APPROVE,
        reasons=(),
        amount=100,
        currency="TRY",
        capture=True,
        installments=1,
        card=card,
    )


def card(pan_ciphertext: str, cvc_ciphertext: str | None = None, **scope: str) -> EncryptedCard:
    return EncryptedCard(
        pan_ciphertext=pan_ciphertext,
        cvc_ciphertext=cvc_ciphertext,
        fingerprint="fp1_x",
        bin="40000566",
        last4="5556",
        exp_month=12,
        exp_year=2031,
        brand="visa",
        **scope,  # type: ignore[arg-type]
    )


def test_token_scoped_pan_decrypts_with_cvc_bound_to_the_payment() -> None:
    payment_id = uuid.uuid4()
    token = "tok_abcdefghijkl"
    stored = encrypt(PAN_KEYS, PAN.encode(), token_pan_aad("mer_a", token))
    cvc = encrypt(CVC_KEYS, b"918", cvc_aad("mer_a", payment_id))
    request = HANDLERS._request(
        scored(card(stored, cvc, aad_scope="token", token_id=token), "mer_a", payment_id)
    )
    assert request.pan == PAN and request.cvc == "918"
    merchant_initiated = HANDLERS._request(
        scored(card(stored, aad_scope="token", token_id=token), "mer_a", uuid.uuid4())
    )
    assert merchant_initiated.pan == PAN and merchant_initiated.cvc is None


def test_ciphertexts_do_not_move_between_merchants_tokens_or_scopes() -> None:
    payment_id = uuid.uuid4()
    token = "tok_abcdefghijkl"
    stored = encrypt(PAN_KEYS, PAN.encode(), token_pan_aad("mer_a", token))
    one_off = encrypt(PAN_KEYS, PAN.encode(), pan_aad("mer_a", payment_id))
    attempts = [
        scored(card(stored, aad_scope="token", token_id=token), "mer_b", payment_id),
        scored(card(stored, aad_scope="token", token_id="tok_otherother"), "mer_a", payment_id),
        scored(card(stored), "mer_a", payment_id),
        scored(card(one_off, aad_scope="token", token_id=token), "mer_a", payment_id),
    ]
    for attempt in attempts:
        with pytest.raises(DecryptionError):
            HANDLERS._request(attempt)


def test_scope_and_token_go_together_and_old_events_default_to_payment_scope() -> None:
    with pytest.raises(ValueError, match="token_id"):
        card("x", aad_scope="token")
    with pytest.raises(ValueError, match="token_id"):
        card("x", token_id="tok_abcdefghijkl")
    legacy = EncryptedCard.model_validate(
        {
            "pan_ciphertext": "x",
            "fingerprint": "f",
            "bin": "411111",
            "last4": "1111",
            "exp_month": 1,
            "exp_year": 2030,
            "brand": "visa",
        }
    )
    assert legacy.aad_scope == "payment" and legacy.token_id is None
