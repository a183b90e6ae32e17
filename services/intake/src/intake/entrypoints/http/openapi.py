"""The OpenAPI document as merchants read it: security schemes, the request-id header, and
every error response each operation can give, all RFC 9457 problem details.

FastAPI documents success responses from the routes; the errors are the same few families for
every operation, so they are added here from one table instead of on each route."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from sanalpos_common.http import PROBLEM_JSON

PUBLIC_PATHS = frozenset({"/v1/encryption-keys/current", "/v1/checkout/signing-keys"})

SECURITY_SCHEMES: dict[str, Any] = {
    "MerchantApiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": (
            "The merchant's secret API key: `Authorization: Bearer sk_test_…` (test mode) or "
            "`sk_live_…` (live mode). Every read and write is scoped to the key's merchant."
        ),
    },
    "AdminToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The operator's admin credential, for /admin endpoints only.",
    },
}

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details. `type` is stable; match on it, not on `title`.",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {
            "type": "string",
            "format": "uri",
            "description": "Stable identifier of the problem family",
            "example": "https://docs.sanalpos.dev/problems/validation-error",
        },
        "title": {
            "type": "string",
            "description": "Short human summary of the problem family",
            "example": "Request is invalid",
        },
        "status": {"type": "integer", "description": "HTTP status code", "example": 422},
        "detail": {
            "type": "string",
            "description": "Human explanation of this occurrence",
            "example": "invalid: amount",
        },
        "instance": {
            "type": "string",
            "description": "The request path",
            "example": "/v1/payments",
        },
        "errors": {
            "type": "array",
            "description": "Per-field errors (validation problems)",
            "example": [
                {
                    "field": "card.exp_month",
                    "message": "Input should be less than or equal to 12",
                    "code": "less_than_equal",
                }
            ],
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {
                    "field": {
                        "type": "string",
                        "description": "Dotted path of the offending field",
                        "example": "card.exp_month",
                    },
                    "message": {
                        "type": "string",
                        "description": "What is wrong with it",
                        "example": "Input should be less than or equal to 12",
                    },
                    "code": {
                        "type": "string",
                        "description": "Machine-readable error code",
                        "example": "less_than_equal",
                    },
                },
            },
        },
        "current_state": {
            "type": "string",
            "description": "For 409 on a payment operation: the payment's current state",
            "example": "captured",
        },
    },
}

_ERRORS: dict[str, str] = {
    "400": "The body is not well-formed JSON",
    "401": "Missing or invalid credential",
    "404": "No such resource for this merchant (another merchant's ids are not found either)",
    "409": "Conflict: the resource is in the wrong state, or the Idempotency-Key is in use",
    "413": "The request body is over the size limit (64 KiB); nothing of it was processed",
    "422": "The request is invalid; `errors` names each field",
    "429": "Rate limit exceeded for this API key; retry after `Retry-After` seconds",
}

REQUEST_ID_PARAMETER: dict[str, Any] = {
    "name": "X-Request-Id",
    "in": "header",
    "required": False,
    "description": (
        "Your id for this request (1-128 of A-Z a-z 0-9 . _ : -). Generated when absent; "
        "returned in the response header and written to our logs."
    ),
    # Any value is accepted: one that is not well-formed is replaced by a generated id.
    "schema": {"type": "string", "example": "req_checkout_8f14e45f"},
}

REQUEST_ID_HEADER: dict[str, Any] = {
    "description": "The request's id: yours when you sent one, else generated",
    "schema": {"type": "string", "example": "req_5f0c6a6b2d1e4b55b3e0c6a9f1d2e3f4"},
}


def _error_statuses(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    statuses = ["413"]  # the body size limit applies to every request, before routing
    if path not in PUBLIC_PATHS:
        statuses.append("401")
    if "{" in path:
        statuses.append("404")
    if method == "post":
        statuses.append("409")
    if operation.get("requestBody"):
        statuses.append("400")  # a body that is not JSON at all
    inputs = [p for p in operation.get("parameters", []) if p is not REQUEST_ID_PARAMETER]
    if inputs or operation.get("requestBody") or "{" in path:
        statuses.append("422")
    if path.startswith("/v1/") and path not in PUBLIC_PATHS:
        statuses.append("429")
    return statuses


def _problem_response(status: str, description: str | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description or _ERRORS.get(status, "Client error"),
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        "headers": {"X-Request-Id": REQUEST_ID_HEADER},
    }
    if status in ("429", "503"):
        response["headers"]["Retry-After"] = {
            "description": "Seconds to wait before retrying",
            "schema": {"type": "integer", "example": 1},
        }
    if status == "401":
        response["headers"]["WWW-Authenticate"] = {
            "description": "Always `Bearer`",
            "schema": {"type": "string", "example": "Bearer"},
        }
    return response


def _document_operation(path: str, method: str, operation: dict[str, Any]) -> None:
    if path in PUBLIC_PATHS:
        operation["security"] = []
    elif path.startswith("/admin"):
        operation["security"] = [{"AdminToken": []}]
    else:
        operation["security"] = [{"MerchantApiKey": []}]
    # The credential is documented by the security scheme, not as a header parameter.
    parameters = [
        p
        for p in operation.get("parameters", [])
        if not (p.get("in") == "header" and p.get("name", "").lower() == "authorization")
    ]
    operation["parameters"] = parameters
    if not any(p.get("name", "").lower() == "x-request-id" for p in parameters):
        parameters.append(REQUEST_ID_PARAMETER)
    responses = operation.setdefault("responses", {})
    declared = [s for s in responses if s[0] in "45"]  # by the route's `responses=`
    for status in {*_error_statuses(path, method, operation), *declared}:
        existing = responses.get(status)
        if existing is None or "content" not in existing or "HTTPValidationError" in str(existing):
            responses[status] = _problem_response(status, (existing or {}).get("description"))
    for response in responses.values():
        response.setdefault("headers", {}).setdefault("X-Request-Id", REQUEST_ID_HEADER)


def build_openapi(app: FastAPI) -> dict[str, Any]:
    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            _document_operation(path, method, operation)
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Problem"] = PROBLEM_SCHEMA
    components["securitySchemes"] = SECURITY_SCHEMES
    return document


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
