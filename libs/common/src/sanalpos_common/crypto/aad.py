"""Associated data that binds card ciphertexts to their record."""

from __future__ import annotations

import uuid


def pan_aad(merchant_id: str, payment_id: uuid.UUID) -> bytes:
    return f"pan|{merchant_id}|{payment_id}".encode()


def cvc_aad(merchant_id: str, payment_id: uuid.UUID) -> bytes:
    return f"cvc|{merchant_id}|{payment_id}".encode()


def token_pan_aad(merchant_id: str, token_id: str) -> bytes:
    """A stored card's PAN is bound to its merchant and token, not to any one payment."""
    return f"pan-token|{merchant_id}|{token_id}".encode()
