"""Stored-card pieces without a database: tokenizing, the masked view, list cursors."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from intake.service_layer.card_protection import CardProtection
from intake.service_layer.cards import BadCursor, card_view, decode_cursor, encode_cursor
from sanalpos_common.crypto import Keyring, decrypt
from sanalpos_common.crypto.cvc import rotate_cvc_keys
from sanalpos_common.schemas.events import token_pan_aad

PAN = "4000056655665556"
PROTECTION = CardProtection(
    Keyring.generate("pan"), rotate_cvc_keys(None, datetime.now(UTC)), b"f" * 32
)


def test_tokenize_binds_the_ciphertext_to_merchant_and_token() -> None:
    row = PROTECTION.tokenize("mer_a", PAN, 12, 2031, datetime.now(UTC))
    assert row["token"].startswith("tok_") and len(row["token"]) >= 20
    assert PAN not in str({k: v for k, v in row.items() if k != "pan_ciphertext"})
    assert row["masked_number"] == "400005******5556"
    opened = decrypt(
        PROTECTION.pan_keyring, row["pan_ciphertext"], token_pan_aad("mer_a", row["token"])
    )
    assert opened == PAN.encode()
    view = card_view(row)
    assert view["id"] == row["token"] and view["bin"] == "400005"
    assert "pan_ciphertext" not in view and PAN not in str(view)


def test_token_payment_sends_the_stored_ciphertext_and_a_per_payment_cvc() -> None:
    row = PROTECTION.tokenize("mer_a", PAN, 12, 2031, datetime.now(UTC))
    card = PROTECTION.for_token_payment("mer_a", uuid.uuid4(), row, "123")
    assert card.aad_scope == "token" and card.token_id == row["token"]
    assert card.pan_ciphertext == row["pan_ciphertext"] and card.cvc_ciphertext
    merchant_initiated = PROTECTION.for_token_payment("mer_a", uuid.uuid4(), row, None)
    assert merchant_initiated.cvc_ciphertext is None


def test_cursor_round_trips_and_garbage_is_refused() -> None:
    row = {"created_at": datetime(2026, 11, 26, 10, 0, 0, 123456, tzinfo=UTC), "token": "tok_x"}
    assert decode_cursor(encode_cursor(row)) == (row["created_at"], "tok_x")
    for garbage in ("", "nonsense", "bm8gcGlwZQ", encode_cursor({**row, "token": "x"})):
        with pytest.raises(BadCursor):
            decode_cursor(garbage)
