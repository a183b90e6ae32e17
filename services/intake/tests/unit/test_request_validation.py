import pytest
from pydantic import ValidationError

from intake.domain.commands import CreatePaymentRequest

VALID = {
    "amount": 1000,
    "currency": "TRY",
    "card": {"number": "4111 1111 1111 1111", "exp_month": 12, "exp_year": 2031, "cvc": "123"},
}


def errors_for(**changes: object) -> dict[str, str]:
    body = {**VALID, **changes}
    with pytest.raises(ValidationError) as info:
        CreatePaymentRequest.model_validate(body)
    return {".".join(map(str, e["loc"])): e["msg"] for e in info.value.errors()}


def test_valid_request_normalizes_the_card_number() -> None:
    request = CreatePaymentRequest.model_validate(VALID)
    assert request.card.number.get_secret_value() == "4111111111111111"
    assert "4111" not in repr(request)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": 10.5}, "amount"),
        ({"amount": "100"}, "amount"),
        ({"currency": "XYZ"}, "currency"),
        ({"installments": 13}, "installments"),
        ({"status": "captured"}, "status"),
        ({"merchant_id": "mer_x"}, "merchant_id"),
        ({"card": {**VALID["card"], "number": "4111111111111112"}}, "card.number"),
        ({"card": {**VALID["card"], "cvc": "12"}}, "card.cvc"),
        ({"card": {**VALID["card"], "exp_month": 1, "exp_year": 2020}}, "card.exp_year"),
    ],
)
def test_each_bad_field_is_named(changes: dict[str, object], field: str) -> None:
    assert field in errors_for(**changes)


def test_errors_never_echo_the_card_number() -> None:
    body = {**VALID, "card": {**VALID["card"], "number": "4111111111111112"}}
    with pytest.raises(ValidationError) as info:
        CreatePaymentRequest.model_validate(body)
    assert "4111111111111112" not in str(info.value)
    # The problem-details handler reports loc, msg and type only: never the input.
    reported = [(e["loc"], e["msg"], e["type"]) for e in info.value.errors()]
    assert "4111111111111112" not in str(reported)


def test_idempotency_fingerprint_excludes_card_secrets() -> None:
    request = CreatePaymentRequest.model_validate(VALID)
    fingerprint = str(request.fingerprint_for_idempotency())
    assert "4111111111111111" not in fingerprint and "123" not in fingerprint.replace("1231", "")


def test_risk_context_is_accepted_and_validated_field_by_field() -> None:
    context = {
        "customer_ip": "203.0.113.7",
        "customer_email": "ayse@example.com",
        "device_id": "dev-7f3a",
        "billing_country": "TR",
        "billing_location": {"lat": 41.01, "lon": 28.97},
        "merchant_category_code": "5411",
        "merchant_location": {"lat": 39.93, "lon": 32.85},
    }
    request = CreatePaymentRequest.model_validate({**VALID, "context": context})
    assert request.context is not None and str(request.context.customer_ip) == "203.0.113.7"
    assert request.fingerprint_for_idempotency()["context"]["customer_ip"] == "203.0.113.7"
    bad = {
        "customer_ip": "999.1.1.1",
        "customer_email": "not-an-email",
        "billing_country": "tr",
        "merchant_category_code": "54x1",
        "device_id": "dev 4111 1111 1111 1111",
    }
    fields = set(errors_for(context=bad))
    assert fields == {
        "context.customer_ip",
        "context.customer_email",
        "context.billing_country",
        "context.merchant_category_code",
        "context.device_id",
    }
    assert "context.unknown" in errors_for(context={"unknown": 1})


def test_locations_and_emails_are_checked_as_their_json_schema_says() -> None:
    # Lax floats would take `true` and "41"; Python's and Rust's `\s` also cover \x85 and
    # \x1c-\x1f, which JSON Schema's does not: the schema now excludes them explicitly.
    point = {"lat": 41, "lon": True}
    assert set(errors_for(context={"billing_location": point})) == {"context.billing_location.lon"}
    assert set(errors_for(context={"merchant_location": {"lat": "41", "lon": 29.0}})) == {
        "context.merchant_location.lat"
    }
    for ip in (False, 3405803783):
        assert set(errors_for(context={"customer_ip": ip})) == {"context.customer_ip"}
    for email in ("a\x85@b.c", "a\x1c@b.c", "a@b.\ufeffc"):
        assert set(errors_for(context={"customer_email": email})) == {"context.customer_email"}


def test_text_with_a_nul_character_is_refused_with_its_field() -> None:
    assert errors_for(order_id="ord\x00-1") == {
        "order_id": "Value error, must not contain NUL characters"
    }
    assert "metadata" in errors_for(metadata={"k": "v\x00"})


@pytest.mark.parametrize(
    "url",
    ["http://", "https://user:secret@shop.example/hooks", "http://[::1", "ftp://shop.example"],
)
def test_a_webhook_url_without_a_host_or_with_credentials_is_refused(url: str) -> None:
    from intake.domain.commands import RegisterWebhookEndpoint

    with pytest.raises(ValidationError):
        RegisterWebhookEndpoint.model_validate({"url": url})


def test_a_webhook_url_with_host_port_and_path_is_accepted() -> None:
    from intake.domain.commands import RegisterWebhookEndpoint

    url = "https://shop.example:8443/hooks/sanalpos?v=1"
    assert RegisterWebhookEndpoint.model_validate({"url": url}).url == url
