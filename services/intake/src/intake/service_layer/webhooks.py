"""Merchants' webhook endpoints: registered here, announced to notification (which delivers).

The signing secret is made here and shown to the merchant once, in the registration's
response. Everywhere else it is a ciphertext:
- announced on webhook-endpoint.registered.v1 sealed to notification's `webhook` keyring
  (intake holds its public half only, so it cannot read back what it announced);
- in the stored answer an Idempotency-Key replays, sealed under intake's own `signing`
  keyring (the one that protects merchants' request-signing secrets) and opened on replay.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from intake.adapters.merchants import MerchantStore
from intake.domain.read_models import WebhookEndpointOut
from intake.service_layer.idempotency import Response
from sanalpos_common.crypto import DecryptionError, KeyringError, decrypt, encrypt
from sanalpos_common.crypto.webhook_secrets import seal_webhook_secret
from sanalpos_common.crypto.wrapping import KeyWrapper
from sanalpos_common.db import UnitOfWork
from sanalpos_common.net import webhook_url_refusal
from sanalpos_common.schemas.events import WebhookEndpointRegistered

MAX_ENDPOINTS = 16
SEALED_SECRET = "secret_sealed"  # noqa: S105 - a member name, not a secret
"""The stored replay body's member that replaces `secret`."""


class TooManyEndpoints(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"a merchant may register at most {limit} webhook endpoints")
        self.limit = limit


class UnsafeWebhookUrl(ValueError):
    """The URL cannot be a webhook target (scheme, credentials, a non-public host)."""


class ReplayUnavailable(Exception):
    """A stored registration answer whose sealed secret no longer opens here."""


@dataclass(frozen=True)
class WebhookRegistration:
    announce_keyring: KeyWrapper
    """Notification's sealed `webhook` keyring (public half)."""
    replay_keyring: KeyWrapper
    """Intake's own keyring for secrets in stored answers."""
    allow_loopback: bool = False
    max_endpoints: int = MAX_ENDPOINTS

    def check_url(self, url: str) -> None:
        refusal = webhook_url_refusal(url, allow_loopback=self.allow_loopback)
        if refusal is not None:
            raise UnsafeWebhookUrl(f"must be a public http(s) address: {refusal}")


def new_signing_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _replay_aad(merchant_id: str, endpoint_id: str) -> bytes:
    return f"webhook-secret-replay|{merchant_id}|{endpoint_id}".encode()


def sealed_for_replay(
    keyring: KeyWrapper, merchant_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    """The response as stored for replays: the secret sealed, bound to merchant and endpoint."""
    stored = {k: v for k, v in body.items() if k != "secret"}
    secret = str(body["secret"]).encode()
    stored[SEALED_SECRET] = encrypt(keyring, secret, _replay_aad(merchant_id, body["id"]))
    return stored


def opened_replay(keyring: KeyWrapper, merchant_id: str, stored: dict[str, Any]) -> dict[str, Any]:
    """The stored answer as the merchant first got it. Raises ReplayUnavailable."""
    if SEALED_SECRET not in stored:
        return stored
    body = {k: v for k, v in stored.items() if k != SEALED_SECRET}
    try:
        aad = _replay_aad(merchant_id, str(stored["id"]))
        body["secret"] = decrypt(keyring, stored[SEALED_SECRET], aad).decode()
    except (DecryptionError, KeyringError, ValueError) as exc:  # the keyring changed
        raise ReplayUnavailable(type(exc).__name__) from None
    return body


async def register_endpoint(
    uow: UnitOfWork, registration: WebhookRegistration, merchant_id: str, url: str
) -> Response:
    """Stores the endpoint and announces it with its sealed secret, in the caller's
    transaction; the secret is shown to the merchant only in this response."""
    store = MerchantStore(uow.conn)
    if await store.lock_webhook_endpoints(merchant_id) >= registration.max_endpoints:
        raise TooManyEndpoints(registration.max_endpoints)
    endpoint_id, secret = uuid.uuid4(), new_signing_secret()
    await store.add_webhook_endpoint(endpoint_id, merchant_id, url)
    sealed = seal_webhook_secret(registration.announce_keyring, secret, merchant_id, endpoint_id)
    await uow.emit(
        WebhookEndpointRegistered(
            endpoint_id=endpoint_id, merchant_id=merchant_id, url=url, secret_ciphertext=sealed
        )
    )
    body = WebhookEndpointOut(id=endpoint_id, url=url, secret=secret).model_dump(mode="json")
    stored = sealed_for_replay(registration.replay_keyring, merchant_id, body)
    return Response(201, body, stored=stored)
