"""Limits on what a request may carry: amounts, free text, metadata and the body's size. Each
limit answers 413 or 422 with problem details naming the field, never a 500; no refusal
echoes the input."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from intake.domain.commands import (
    MAX_AMOUNT,
    METADATA_KEY_MAX_CHARS,
    METADATA_MAX_BYTES,
    METADATA_VALUE_MAX_CHARS,
    CapturePaymentRequest,
    CreatePaymentRequest,
    RefundPaymentRequest,
)
from intake.entrypoints.http.app import MAX_BODY_BYTES, build_app
from intake.entrypoints.kafka.messages import parse_request
from intake.entrypoints.kafka.operations import prepare_create
from intake.service_layer.problems import Refused
from sanalpos_common.http import PROBLEM_JSON

PAN = "4111111111111111"
VALID: dict[str, Any] = {
    "amount": 1000,
    "currency": "TRY",
    "card": {"number": PAN, "exp_month": 12, "exp_year": 2031, "cvc": "123"},
}


def errors_for(model: Any = CreatePaymentRequest, **changes: Any) -> dict[str, str]:
    body = {**VALID, **changes} if model is CreatePaymentRequest else changes
    with pytest.raises(ValidationError) as info:
        model.model_validate(body)
    assert PAN not in str(info.value.errors(include_input=False, include_url=False))
    return {".".join(map(str, e["loc"])): e["msg"] for e in info.value.errors()}


# --- amounts -------------------------------------------------------------------------------


@pytest.mark.parametrize("amount", [2**63, 2**63 - 1, MAX_AMOUNT + 1, 10**30])
def test_an_amount_above_the_maximum_is_refused_naming_it(amount: int) -> None:
    assert "amount" in errors_for(amount=amount)
    assert "amount" in errors_for(RefundPaymentRequest, amount=amount, reason="r")
    assert "amount" in errors_for(CapturePaymentRequest, amount=amount)


def test_the_maximum_amount_itself_is_accepted() -> None:
    assert CreatePaymentRequest.model_validate({**VALID, "amount": MAX_AMOUNT}).amount == MAX_AMOUNT


# --- card numbers in free text --------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [PAN, f"ORD-2026{PAN}", "4111.1111.1111.1111", f"#{PAN}7", "4111 1111-1111.1111"],
)
def test_order_id_and_description_refuse_a_card_number(text: str) -> None:
    assert "order_id" in errors_for(order_id=text)
    assert "description" in errors_for(description=text)


def test_a_card_number_in_a_metadata_value_or_key_is_refused_without_echo() -> None:
    assert "metadata" in errors_for(metadata={"cart": f"ref{PAN}0"})
    assert "metadata" in errors_for(metadata={PAN: "x"})


# --- metadata bounds -----------------------------------------------------------------------


def test_metadata_key_too_long_is_refused_naming_the_field() -> None:
    errors = errors_for(metadata={"k" * (METADATA_KEY_MAX_CHARS + 1): "v"})
    assert "metadata" in errors and "key" in errors["metadata"]


def test_metadata_value_too_long_is_refused_naming_its_key() -> None:
    errors = errors_for(metadata={"cart_id": "v" * (METADATA_VALUE_MAX_CHARS + 1)})
    assert "cart_id" in errors["metadata"]


def test_metadata_with_too_many_keys_is_refused() -> None:
    assert "metadata" in errors_for(metadata={f"k{i}": "v" for i in range(51)})


def test_metadata_over_the_total_size_is_refused() -> None:
    # Every key and value within its own limit; together over the total.
    per_value = METADATA_VALUE_MAX_CHARS // 2  # "ğ" is two bytes in UTF-8
    count = METADATA_MAX_BYTES // (2 * per_value) + 1
    metadata = {f"k{i}": "ğ" * per_value for i in range(count)}
    assert count <= 50
    assert "total" in errors_for(metadata=metadata)["metadata"]


def test_metadata_values_must_be_text() -> None:
    errors = errors_for(metadata={PAN: 5})
    assert set(errors) == {"metadata"}  # the key (a card number here) is not in the path


def test_metadata_within_the_limits_is_kept_as_given() -> None:
    metadata = {"cart_id": "c_91f3", "note": "ğ" * METADATA_VALUE_MAX_CHARS}
    request = CreatePaymentRequest.model_validate({**VALID, "metadata": metadata})
    assert request.metadata == metadata


def test_the_kafka_entry_refuses_oversized_metadata_with_a_field_path() -> None:
    """The case that stopped the outbox: a request full of `ğ`, whose reply (JSON escapes
    each to six bytes) would have been over the producer's limit."""
    body = {
        "amount": 1000,
        "currency": "TRY",
        "card_token": "tok_8f14e45fceea167a",
        "initiated_by": "merchant",
        "metadata": {f"k{i}": "ğ" * 12_000 for i in range(25)},
    }
    request = parse_request(json.dumps({"operation": "create", "body": body}).encode())
    with pytest.raises(Refused) as info:
        prepare_create(None, "mer_x", "req-1", request)  # type: ignore[arg-type]
    problem = info.value.problem
    assert problem.status == 422
    assert [e.field for e in problem.errors] == ["body.metadata"]


# --- body size ------------------------------------------------------------------------------


def app_without_services() -> Any:
    """The intake app without its database: a request without a key gets its 401 from the
    first dependency, so a 401 shows the request went past the size check to its route."""
    app = build_app()
    app.state.container = object()
    return app


@pytest.fixture(scope="module")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app_without_services())
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as http:
        yield http


def assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert problem["type"].endswith("/payload-too-large")
    assert str(MAX_BODY_BYTES) in problem["detail"]


async def test_a_body_over_the_limit_is_refused_before_authentication(
    client: httpx.AsyncClient,
) -> None:
    body = json.dumps({**VALID, "description": "x" * MAX_BODY_BYTES})
    assert_too_large(await client.post("/v1/payments", content=body))


async def test_a_chunked_body_over_the_limit_is_refused_while_it_streams(
    client: httpx.AsyncClient,
) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(64):
            sent += 4096
            yield b" " * 4096

    response = await client.post("/v1/payments", content=chunks())
    assert "content-length" not in response.request.headers
    assert_too_large(response)


async def test_a_body_within_the_limit_reaches_the_route(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/payments", content=json.dumps(VALID))
    assert response.status_code == 401  # authentication is next, after the size check


def test_every_operation_documents_413() -> None:
    document = build_app().openapi()
    missing = [
        f"{method} {path}"
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if "413" not in operation["responses"]
    ]
    assert missing == []


# --- no input gives a 500 -------------------------------------------------------------------

ODD_VALUES = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=300),
    st.text(alphabet="0123456789 .-", min_size=13, max_size=60),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=60), st.text(max_size=700), max_size=60),
)
FIELDS = ["amount", "currency", "order_id", "description", "metadata", "installments", "capture"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.dictionaries(st.sampled_from(FIELDS), ODD_VALUES, min_size=1, max_size=4))
def test_odd_or_oversized_fields_are_refused_or_accepted_never_an_error(
    changes: dict[str, Any],
) -> None:
    """Validation either accepts the body or refuses it with field errors; nothing else
    escapes (an exception here would be a 500 over HTTP, a dead-letter over Kafka)."""
    try:
        request = CreatePaymentRequest.model_validate({**VALID, **changes})
    except ValidationError as exc:
        assert exc.errors(include_input=False)
        return
    assert 0 < request.amount <= MAX_AMOUNT
    assert sum(len(k.encode()) + len(v.encode()) for k, v in request.metadata.items()) <= (
        METADATA_MAX_BYTES
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(size=st.integers(min_value=0, max_value=4 * MAX_BODY_BYTES), chunked=st.booleans())
async def test_any_body_size_gives_413_or_reaches_the_route(size: int, chunked: bool) -> None:
    body = b"{" + b" " * size + b"}"

    async def stream() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    transport = httpx.ASGITransport(app=app_without_services())
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as http:
        response = await http.post("/v1/payments", content=stream() if chunked else body)
    assert response.status_code == (413 if len(body) > MAX_BODY_BYTES else 401)
