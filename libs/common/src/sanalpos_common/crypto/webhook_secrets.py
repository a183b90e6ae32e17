"""Webhook signing secrets at rest and in flight: sealed to notification's keyring.

Intake makes an endpoint's secret, shows it to the merchant once, and announces it on
`webhook-endpoint.registered.v1` only as a ciphertext sealed (`sp3`) to the `webhook`
keyring, whose private half only notification holds; notification keeps that ciphertext in
its table and opens it in memory to sign. So neither a Kafka topic nor a database holds a
webhook secret in clear, and intake cannot read back the secrets it announced.

Associated data binds a ciphertext to its merchant and endpoint: copied to another endpoint
it does not open.
"""

from __future__ import annotations

import uuid

from sanalpos_common.crypto.envelope import decrypt, encrypt
from sanalpos_common.crypto.wrapping import KeyWrapper

KEYRING_ID = "webhook"


def webhook_secret_aad(merchant_id: str, endpoint_id: uuid.UUID) -> bytes:
    return f"webhook-secret|{merchant_id}|{endpoint_id}".encode()


def seal_webhook_secret(
    keyring: KeyWrapper, secret: str, merchant_id: str, endpoint_id: uuid.UUID
) -> str:
    return encrypt(keyring, secret.encode(), webhook_secret_aad(merchant_id, endpoint_id))


def open_webhook_secret(
    keyring: KeyWrapper, ciphertext: str, merchant_id: str, endpoint_id: uuid.UUID
) -> str:
    """Raises DecryptionError (wrong record, tampered) or KeyringError (key not held)."""
    return decrypt(keyring, ciphertext, webhook_secret_aad(merchant_id, endpoint_id)).decode()
