"""The intake OpenAPI document is complete enough to integrate from: every field described
with a valid example, every operation summarized and described, its errors listed as
problem details, its credential and the request-id header declared."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from intake.entrypoints.http.app import build_app
from intake.entrypoints.http.openapi import PUBLIC_PATHS
from sanalpos_common.crypto.card import holds_card_number
from sanalpos_common.http import PROBLEM_JSON

DOCUMENT: dict[str, Any] = build_app().openapi()
SCHEMAS: dict[str, Any] = DOCUMENT["components"]["schemas"]
METHODS = {"get", "post", "put", "patch", "delete"}
# Request bodies that take card data in clear: the only place a (test) card number belongs.
CARD_INPUTS = frozenset({"CardIn", "SaveCardIn", "CreatePaymentRequest", "CreateCardRequest"})


def properties(schema: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every property of a schema, including those of inline objects and arrays of them."""
    for name, prop in schema.get("properties", {}).items():
        yield f"{path}.{name}", prop
        yield from properties(prop, f"{path}.{name}")
        if isinstance(prop.get("items"), dict):
            yield from properties(prop["items"], f"{path}.{name}[]")


def examples_of(prop: dict[str, Any]) -> list[Any]:
    return [prop["example"]] if "example" in prop else list(prop.get("examples", []))


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def takes_input(path: str, operation: dict[str, Any]) -> bool:
    own = [p for p in operation.get("parameters", []) if p["name"] != "X-Request-Id"]
    return bool(own or operation.get("requestBody") or "{" in path)


ALL_PROPERTIES = [
    (f"{name}{where}", prop)
    for name, schema in SCHEMAS.items()
    for where, prop in properties(schema, "")
]
ALL_OPERATIONS = list(operations(DOCUMENT))


def undocumented(schemas: dict[str, Any]) -> list[str]:
    return [
        f"{name}{where}"
        for name, schema in schemas.items()
        for where, prop in properties(schema, "")
        if not prop.get("description") or not examples_of(prop)
    ]


def test_the_document_has_schemas_and_operations_to_check() -> None:
    assert len(SCHEMAS) >= 40
    assert len(ALL_PROPERTIES) >= 250
    assert len(ALL_OPERATIONS) >= 30


def test_every_property_has_a_description_and_an_example() -> None:
    assert undocumented(SCHEMAS) == []


def test_a_property_without_a_description_or_example_is_caught() -> None:
    broken = json.loads(json.dumps(SCHEMAS))
    del broken["CardIn"]["properties"]["exp_month"]["description"]
    broken["RefundOut"]["properties"]["reason"].pop("examples")
    assert undocumented(broken) == ["CardIn.exp_month", "RefundOut.reason"]


@pytest.mark.parametrize(("where", "prop"), ALL_PROPERTIES, ids=[w for w, _ in ALL_PROPERTIES])
def test_every_example_is_valid_for_its_property(where: str, prop: dict[str, Any]) -> None:
    # Resolved against the whole document so `$ref`s to other components work.
    schema = {k: v for k, v in prop.items() if k not in ("example", "examples")}
    validator = Draft202012Validator(
        {**schema, "components": DOCUMENT["components"]},
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )
    for example in examples_of(prop):
        errors = [e.message for e in validator.iter_errors(example)]
        assert errors == [], f"{where}: example {example!r} is invalid: {errors}"


def test_card_numbers_appear_only_in_card_input_examples() -> None:
    leaking = [
        where
        for where, prop in ALL_PROPERTIES
        if where.split(".")[0] not in CARD_INPUTS
        and holds_card_number(json.dumps(examples_of(prop)))
    ]
    assert leaking == []


def test_the_card_input_example_is_a_luhn_valid_test_card() -> None:
    assert examples_of(SCHEMAS["CardIn"]["properties"]["number"]) == ["4111111111111111"]


@pytest.mark.parametrize(
    ("path", "method", "operation"),
    ALL_OPERATIONS,
    ids=[f"{m.upper()} {p}" for p, m, _ in ALL_OPERATIONS],
)
def test_every_operation_is_documented(path: str, method: str, operation: dict[str, Any]) -> None:
    assert operation.get("summary"), "no summary"
    assert operation.get("description"), "no description"
    responses = operation["responses"]
    statuses = set(responses)
    if path not in PUBLIC_PATHS:
        assert "401" in statuses
    if takes_input(path, operation):
        assert "422" in statuses
    for status, response in responses.items():
        if status.startswith("4"):
            assert PROBLEM_JSON in response.get("content", {}), f"{status} is not a problem"
        assert "X-Request-Id" in response.get("headers", {}), f"{status} lacks X-Request-Id"
    request_id = [p for p in operation["parameters"] if p["name"] == "X-Request-Id"]
    assert len(request_id) == 1
    assert request_id[0]["in"] == "header"
    assert request_id[0]["description"]


def test_operation_summaries_are_distinct() -> None:
    summaries = [operation["summary"] for _, _, operation in ALL_OPERATIONS]
    assert sorted(s for s in summaries if summaries.count(s) > 1) == []


def test_security_schemes_are_declared_and_used() -> None:
    schemes = DOCUMENT["components"]["securitySchemes"]
    assert set(schemes) == {"MerchantApiKey", "AdminToken"}
    for scheme in schemes.values():
        assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
        assert scheme["description"]
    for path, _, operation in ALL_OPERATIONS:
        if path in PUBLIC_PATHS:
            assert operation["security"] == []
        else:
            (requirement,) = operation["security"]
            expected = "AdminToken" if path.startswith("/admin") else "MerchantApiKey"
            assert set(requirement) == {expected}
