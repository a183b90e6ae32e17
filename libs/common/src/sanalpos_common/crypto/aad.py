"""Associated data that binds card ciphertexts to their record."""

from __future__ import annotations

import uuid


def pan_aad(merchant_id: str, payment_id: uuid.UUID) -> bytes:
    return f"pan|{merchant_id}|{payment_id}".encode()


def cvc_aad(merchant_id: str, payment_id: uuid.UUID) -> bytes:
    return f"cvc|{merchant_id}|{payment_id}".encode()
