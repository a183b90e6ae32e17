"""The 3-D Secure request a payment is sent with: the merchant's "always 3-D Secure" setting
makes every payment `required`."""

from __future__ import annotations

from sanalpos_common.db import Connection
from sanalpos_common.schemas.events import ThreeDSRequest


def three_d_secure_for(requested: ThreeDSRequest, always: bool) -> ThreeDSRequest:
    return ThreeDSRequest.REQUIRED if always else requested


async def merchant_three_d_secure(
    conn: Connection, merchant_id: str, requested: ThreeDSRequest
) -> ThreeDSRequest:
    always = await conn.fetchval(
        "SELECT always_three_d_secure FROM merchants WHERE id = $1", merchant_id
    )
    return three_d_secure_for(requested, bool(always))
