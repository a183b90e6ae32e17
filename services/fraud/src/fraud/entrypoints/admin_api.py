"""Fraud's management API (admin bearer token; `X-Actor` names who, for the audit trail).

GET/POST      /v1/rules                 PATCH /v1/rules/{name}   GET /v1/rules/{name}/history
GET/POST      /v1/lists                 GET/POST /v1/lists/{name}/entries
DELETE        /v1/lists/{name}/entries/{value}
GET/PUT       /v1/merchants/{merchant_id}/bands
GET           /v1/audit?entity=rule|list|list_entry|bands
GET           /v1/decisions/{payment_id}
GET           /v1/reviews               POST /v1/reviews/{payment_id}/resolve
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from fraud.domain.policy import Bands
from fraud.service_layer import policy_admin as admin
from fraud.service_layer import reviews
from fraud.service_layer.decisions import readable_decision
from sanalpos_common.http import Problem, install_problem_handlers, problem_response
from sanalpos_common.http import require_admin as admin_guard
from sanalpos_common.schemas.events import ReviewDecision


@dataclass(frozen=True)
class Container:
    pool: asyncpg.Pool
    admin_token: str
    default_bands: Bands


def _container(request: Request) -> Container:
    found: Container = request.app.state.fraud_admin
    return found


require_admin = admin_guard(lambda request: _container(request).admin_token)


async def actor(
    _admin: Annotated[None, Depends(require_admin)],
    x_actor: Annotated[str | None, Header()] = None,
) -> str:
    """Checks the admin token; returns who acts (recorded in every audit row)."""
    who = (x_actor or "").strip()
    if not who or len(who) > 200:
        title = "send X-Actor: <who is making this request>"
        raise Problem(400, "actor-required", title, errors=[{"field": "X-Actor", "message": title}])
    return who


Actor = Annotated[str, Depends(actor)]
AppContainer = Annotated[Container, Depends(_container)]


class NewRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=63)
    expression: str = Field(max_length=1000)
    action: Literal["allow", "block", "review", "3ds"]
    description: str | None = Field(default=None, max_length=500)


class RulePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expression: str | None = Field(default=None, max_length=1000)
    action: Literal["allow", "block", "review", "3ds"] | None = None
    description: str | None = Field(default=None, max_length=500)
    enabled: bool | None = None


class NewList(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=63)
    kind: Literal["card", "bin", "ip", "email", "country"]


class NewEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: str = Field(min_length=1, max_length=254)
    note: str | None = Field(default=None, max_length=500)


class BandsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    review_at: int = Field(ge=1, le=99)
    decline_at: int = Field(ge=1, le=99)


class Resolution(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: ReviewDecision
    note: str | None = Field(default=None, max_length=1000)


router = APIRouter(prefix="/v1", tags=["fraud admin"])


@router.get("/rules")
async def get_rules(
    c: AppContainer, _: Actor, include_disabled: bool = True
) -> list[dict[str, Any]]:
    return await admin.list_rules(c.pool, include_disabled)


@router.post("/rules", status_code=201)
async def post_rule(body: NewRule, c: AppContainer, who: Actor) -> dict[str, Any]:
    return await admin.create_rule(
        c.pool, body.name, body.expression, body.action, body.description, who
    )


@router.patch("/rules/{name}")
async def patch_rule(name: str, body: RulePatch, c: AppContainer, who: Actor) -> dict[str, Any]:
    change = admin.RuleChange(body.expression, body.action, body.description, body.enabled)
    return await admin.change_rule(c.pool, name, change, who)


@router.get("/rules/{name}/history")
async def rule_history(name: str, c: AppContainer, _: Actor) -> list[dict[str, Any]]:
    return await admin.history(c.pool, "rule", name)


@router.get("/audit")
async def audit(
    c: AppContainer, _: Actor, entity: Literal["rule", "list", "list_entry", "bands"] = "rule"
) -> list[dict[str, Any]]:
    return await admin.history(c.pool, entity)


@router.get("/lists")
async def get_lists(c: AppContainer, _: Actor) -> list[dict[str, Any]]:
    return await admin.lists_overview(c.pool)


@router.post("/lists", status_code=201)
async def post_list(body: NewList, c: AppContainer, who: Actor) -> dict[str, Any]:
    return await admin.create_list(c.pool, body.name, body.kind, who)


@router.get("/lists/{name}/entries")
async def get_entries(name: str, c: AppContainer, _: Actor) -> list[dict[str, Any]]:
    return await admin.list_entries(c.pool, name)


@router.post("/lists/{name}/entries")
async def post_entry(
    name: str, body: NewEntry, c: AppContainer, who: Actor, response: Response
) -> dict[str, Any]:
    added = await admin.add_entry(c.pool, name, body.value, who, body.note)
    response.status_code = 201 if added else 200
    return {"list": name, "added": added}


@router.delete("/lists/{name}/entries/{value}", status_code=204)
async def delete_entry(name: str, value: str, c: AppContainer, who: Actor) -> None:
    await admin.remove_entry(c.pool, name, value, who)


@router.get("/merchants/{merchant_id}/bands")
async def get_bands(merchant_id: str, c: AppContainer, _: Actor) -> dict[str, Any]:
    return await admin.get_bands(c.pool, merchant_id, c.default_bands)


@router.put("/merchants/{merchant_id}/bands")
async def put_bands(
    merchant_id: str, body: BandsBody, c: AppContainer, who: Actor
) -> dict[str, Any]:
    return await admin.set_bands(c.pool, merchant_id, body.review_at, body.decline_at, who)


@router.get("/decisions/{payment_id}")
async def get_decision(payment_id: uuid.UUID, c: AppContainer, _: Actor) -> dict[str, Any]:
    found = await readable_decision(c.pool, payment_id)
    if found is None:
        raise Problem(404, "not-found", f"no fraud decision for payment {payment_id}")
    return found


@router.get("/reviews")
async def get_reviews(
    c: AppContainer,
    _: Actor,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    merchant_id: str | None = None,
) -> list[dict[str, Any]]:
    return await reviews.pending(c.pool, limit, merchant_id)


@router.post("/reviews/{payment_id}/resolve")
async def resolve_review(
    payment_id: uuid.UUID, body: Resolution, c: AppContainer, who: Actor
) -> dict[str, Any]:
    return await reviews.resolve(c.pool, payment_id, body.decision, body.note, who)


_POLICY_SLUGS = {400: "invalid-request", 404: "not-found", 409: "conflict"}


def install(app: FastAPI, container: Container) -> None:
    app.state.fraud_admin = container
    app.include_router(router)

    install_problem_handlers(app)

    @app.exception_handler(admin.PolicyError)
    async def _policy(request: Request, exc: admin.PolicyError) -> JSONResponse:
        extra: dict[str, Any] = {}
        if exc.field:
            extra["errors"] = [{"field": exc.field, "message": exc.message}]
        slug = _POLICY_SLUGS.get(exc.status, "invalid-request")
        return problem_response(request, exc.status, slug, exc.message, **extra)
