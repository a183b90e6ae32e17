"""Merchants' webhook endpoints: registered here, announced to notification (which delivers)."""

from __future__ import annotations

import base64
import secrets
import uuid

from intake.adapters.merchants import MerchantStore
from intake.domain.read_models import WebhookEndpointOut
from intake.service_layer.idempotency import Response
from sanalpos_common.db import UnitOfWork
from sanalpos_common.schemas.events import WebhookEndpointRegistered


def new_signing_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


async def register_endpoint(uow: UnitOfWork, merchant_id: str, url: str) -> Response:
    """Stores the endpoint and announces it with its secret, in the caller's transaction; the
    secret is shown to the merchant only in this response."""
    endpoint_id, secret = uuid.uuid4(), new_signing_secret()
    await MerchantStore(uow.conn).add_webhook_endpoint(endpoint_id, merchant_id, url)
    await uow.emit(
        WebhookEndpointRegistered(
            endpoint_id=endpoint_id, merchant_id=merchant_id, url=url, secret=secret
        )
    )
    out = WebhookEndpointOut(id=endpoint_id, url=url, secret=secret)
    return Response(201, out.model_dump(mode="json"))
