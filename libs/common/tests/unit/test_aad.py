"""Associated-data formats are part of the ciphertext contract: they never change."""

import uuid

from sanalpos_common.crypto.aad import cvc_aad, pan_aad, token_pan_aad
from sanalpos_common.schemas import events


def test_formats_are_unchanged() -> None:
    payment_id = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert pan_aad("mer_a", payment_id) == b"pan|mer_a|12345678-1234-5678-1234-567812345678"
    assert cvc_aad("mer_a", payment_id) == b"cvc|mer_a|12345678-1234-5678-1234-567812345678"
    assert token_pan_aad("mer_a", "tok_abcdefghijkl") == b"pan-token|mer_a|tok_abcdefghijkl"


def test_events_keeps_exporting_the_token_helper() -> None:
    assert events.token_pan_aad is token_pan_aad
    card = events.EncryptedCard(
        pan_ciphertext="x",
        fingerprint="fp1_x",
        bin="40000566",
        last4="5556",
        exp_month=12,
        exp_year=2031,
        brand="visa",
        aad_scope="token",
        token_id="tok_abcdefghijkl",
    )
    assert card.pan_aad("mer_a", uuid.uuid4()) == token_pan_aad("mer_a", "tok_abcdefghijkl")
