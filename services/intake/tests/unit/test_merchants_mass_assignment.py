"""No mass assignment: every request body of the intake API rejects unknown fields, read from
the OpenAPI document (so an endpoint added later is covered too)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from intake.entrypoints.http.app import build_app

DOCUMENT = build_app().openapi()
SCHEMAS: dict[str, Any] = DOCUMENT["components"]["schemas"]


def request_bodies() -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {})
            for media in content.values():
                yield f"{method.upper()} {path}", media["schema"]


def objects(schema: dict[str, Any], seen: set[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object schema reachable from `schema`, by name."""
    ref = schema.get("$ref")
    if ref is not None:
        name = ref.rsplit("/", 1)[-1]
        if name not in seen:
            seen.add(name)
            target = SCHEMAS[name]
            if target.get("type") == "object" or "properties" in target:
                yield name, target
            yield from objects(target, seen)
        return
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key, []):
            yield from objects(option, seen)
    for nested in schema.get("properties", {}).values():
        yield from objects(nested, seen)
    if isinstance(schema.get("items"), dict):
        yield from objects(schema["items"], seen)


def test_every_request_body_forbids_unknown_fields() -> None:
    bodies = dict(request_bodies())
    assert {
        "POST /v1/payments",
        "POST /admin/merchants",
        "PATCH /admin/merchants/{merchant_id}",
    } <= set(bodies)
    lax = sorted(
        f"{operation}: {name}"
        for operation, schema in bodies.items()
        for name, target in objects(schema, set())
        if target.get("additionalProperties") is not False
    )
    assert lax == []
