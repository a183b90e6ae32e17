"""The 3-D Secure request a payment is sent with: the merchant's "always 3-D Secure" setting
makes every payment `required`."""

from __future__ import annotations

from typing import Any

from sanalpos_common.schemas.events import ThreeDSRequest


def three_d_secure_for(requested: ThreeDSRequest, always: bool) -> ThreeDSRequest:
    return ThreeDSRequest.REQUIRED if always else requested


def merchant_three_d_secure(merchant: Any, requested: ThreeDSRequest) -> ThreeDSRequest:
    """`merchant`: its payment settings row (MerchantStore.payment_settings)."""
    always = merchant is not None and bool(merchant["always_three_d_secure"])
    return three_d_secure_for(requested, always)
