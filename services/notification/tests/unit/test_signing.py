"""Our signatures must verify with the independent `standardwebhooks` reference library."""

from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from notification.domain.signing import (
    InvalidSecret,
    generate_secret,
    secret_bytes,
    sign,
    webhook_headers,
)

BODY = '{"type":"payment.captured","timestamp":"2025-01-01T00:00:00Z","data":{"amount":100}}'


def test_headers_verify_with_reference_library() -> None:
    secret = generate_secret()
    headers = webhook_headers([secret_bytes(secret)], "msg_1", int(time.time()), BODY)
    assert Webhook(secret).verify(BODY, headers) == {
        "type": "payment.captured",
        "timestamp": "2025-01-01T00:00:00Z",
        "data": {"amount": 100},
    }
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-signature"].startswith("v1,")
    assert headers["content-type"] == "application/json"


def test_known_vector_from_the_spec() -> None:
    # Example from the Standard Webhooks specification / reference test suite.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    signature = sign(
        secret_bytes(secret),
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        '{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_wrong_secret_or_tampered_body_fails_verification() -> None:
    secret, other = generate_secret(), generate_secret()
    headers = webhook_headers([secret_bytes(secret)], "msg_2", int(time.time()), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace("100", "101"), headers)


def test_rotation_signs_with_both_secrets() -> None:
    old, new = generate_secret(), generate_secret()
    headers = webhook_headers(
        [secret_bytes(new), secret_bytes(old)], "msg_3", int(time.time()), BODY
    )
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(new).verify(BODY, headers)
    Webhook(old).verify(BODY, headers)


def test_stale_timestamp_is_rejected_by_receivers() -> None:
    # Why every retry is re-signed with a fresh timestamp.
    secret = generate_secret()
    headers = webhook_headers([secret_bytes(secret)], "msg_4", int(time.time()) - 3600, BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, headers)


def test_unicode_body_signs_as_utf8() -> None:
    secret = generate_secret()
    body = '{"data":{"merchant":"\u00c7i\u00e7ek Pasaj\u0131"}}'
    headers = webhook_headers([secret_bytes(secret)], "msg_5", int(time.time()), body)
    assert Webhook(secret).verify(body.encode(), headers) == {
        "data": {"merchant": "\u00c7i\u00e7ek Pasaj\u0131"}
    }


def test_unpadded_secret_is_accepted() -> None:
    raw = bytes(range(25))  # 25 bytes: base64 needs padding
    unpadded = "whsec_" + base64.b64encode(raw).decode().rstrip("=")
    assert secret_bytes(unpadded) == raw


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  # no prefix
        "whsec_",
        "whsec_not*base64!",
        "whsec_" + base64.b64encode(b"short").decode(),  # below 24 bytes
        "whsec_" + base64.b64encode(b"x" * 65).decode(),  # above 64 bytes
        "whsec_" + base64.urlsafe_b64encode(b"\xfb\xff" * 16).decode(),  # url-safe alphabet
    ],
)
def test_invalid_secrets_are_refused(secret: str) -> None:
    with pytest.raises(InvalidSecret):
        secret_bytes(secret)


def test_no_keys_is_an_error() -> None:
    with pytest.raises(InvalidSecret):
        webhook_headers([], "msg_6", 0, BODY)
