"""Changing the managed policy: every change is validated, versioned and audited.

Each function is one transaction: the change, the policy version bump and the audit row
(who, when, old, new) commit together. The scorer sees the new version on its next batch.
Used by the admin API and by the `sanalpos fraud` CLI alike.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

import asyncpg

from fraud.adapters import band_store, list_store, rule_store
from fraud.adapters import policy_store as store
from fraud.domain.expressions import InvalidExpression
from fraud.domain.policy import Bands, ListKind, RuleAction, compile_rule

RULE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LIST_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class PolicyError(Exception):
    status = 400

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message, self.field = message, field


class NotFound(PolicyError):
    status = 404


class Conflict(PolicyError):
    status = 409


class Invalid(PolicyError):
    status = 422


@dataclass(frozen=True)
class RuleChange:
    expression: str | None = None
    action: str | None = None
    description: str | None = None
    enabled: bool | None = None


async def _validate_rule(conn: Any, name: str, expression: str, action: str) -> None:
    try:
        RuleAction(action)
    except ValueError:
        raise Invalid(f"action must be one of {[a.value for a in RuleAction]}", "action") from None
    try:
        compile_rule(name, expression, action, await list_store.list_names(conn))
    except InvalidExpression as exc:
        raise Invalid(str(exc), "expression") from None


async def create_rule(
    pool: asyncpg.Pool, name: str, expression: str, action: str, description: str | None, actor: str
) -> dict[str, Any]:
    if not RULE_NAME.match(name):
        raise Invalid("a rule name is lower-case letters, digits, _ or -, up to 63", "name")
    async with pool.acquire() as conn, conn.transaction():
        await _validate_rule(conn, name, expression, action)
        row = await rule_store.insert_rule(conn, name, expression, action, description, actor)
        if row is None:
            raise Conflict(f"rule {name!r} exists; change it instead", "name")
        new = store.rule_dict(row)
        await store.audit(
            conn, await store.bump_version(conn), "rule", name, "create", actor, None, new
        )
        return new or {}


async def change_rule(
    pool: asyncpg.Pool, name: str, change: RuleChange, actor: str
) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        old_row = await rule_store.lock_rule(conn, name)
        if old_row is None:
            raise NotFound(f"no rule {name!r}")
        expression = change.expression if change.expression is not None else old_row["expression"]
        action = change.action if change.action is not None else old_row["action"]
        await _validate_rule(conn, name, expression, action)
        row = await rule_store.update_rule(
            conn, name, expression, action, change.description, change.enabled, actor
        )
        old, new = store.rule_dict(old_row), store.rule_dict(row)
        kind = _change_kind(change, old_row)
        await store.audit(conn, await store.bump_version(conn), "rule", name, kind, actor, old, new)
        return new or {}


def _change_kind(change: RuleChange, old: asyncpg.Record) -> str:
    if change.enabled is not None and change.enabled != old["enabled"]:
        only_toggle = change.expression is None and change.action is None
        if only_toggle:
            return "enable" if change.enabled else "disable"
    return "update"


async def list_rules(pool: asyncpg.Pool, include_disabled: bool = True) -> list[dict[str, Any]]:
    rows = await rule_store.rules(pool, include_disabled)
    return [d for r in rows if (d := store.rule_dict(r)) is not None]


async def history(pool: asyncpg.Pool, entity: str, key: str | None = None) -> list[dict[str, Any]]:
    rows = await store.audit_rows(pool, entity, key)
    return [store.audit_dict(r) for r in rows]


# ------------------------------------------------------------------------------ lists
def normalise_entry(kind: ListKind, value: str) -> str:
    """One spelling per value so matching is exact; refuses what cannot be of this kind."""
    value = value.strip()
    if kind is ListKind.EMAIL:
        if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", value):
            raise Invalid("not an email address", "value")
        return value.lower()
    if kind is ListKind.COUNTRY:
        if not re.match(r"^[A-Za-z]{2}$", value):
            raise Invalid("a country is an ISO 3166 alpha-2 code", "value")
        return value.upper()
    if kind is ListKind.BIN:
        if not re.match(r"^\d{6,8}$", value):
            raise Invalid("a BIN is 6 to 8 digits", "value")
        return value
    if kind is ListKind.IP:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise Invalid("not an IP address", "value") from None
    if not value or len(value) > 200:
        raise Invalid("a card fingerprint is 1-200 characters", "value")
    return value


async def _list_kind(conn: Any, list_name: str) -> ListKind:
    kind = await list_store.list_kind(conn, list_name)
    if kind is None:
        raise NotFound(f"no list {list_name!r}")
    return ListKind(kind)


async def create_list(pool: asyncpg.Pool, name: str, kind: str, actor: str) -> dict[str, Any]:
    if not LIST_NAME.match(name):
        raise Invalid("a list name is lower-case letters, digits or _, up to 63", "name")
    try:
        list_kind = ListKind(kind)
    except ValueError:
        raise Invalid(f"kind must be one of {[k.value for k in ListKind]}", "kind") from None
    async with pool.acquire() as conn, conn.transaction():
        if not await list_store.insert_list(conn, name, list_kind.value):
            raise Conflict(f"list {name!r} exists", "name")
        new = {"name": name, "kind": list_kind.value}
        await store.audit(
            conn, await store.bump_version(conn), "list", name, "create", actor, None, new
        )
        return new


async def add_entry(
    conn_or_pool: Any, list_name: str, value: str, actor: str, note: str | None = None
) -> bool:
    """True when added, False when it was already there (nothing changes, no audit row)."""
    if isinstance(conn_or_pool, asyncpg.Pool):
        async with conn_or_pool.acquire() as conn, conn.transaction():
            return await _add_entry(conn, list_name, value, actor, note)
    return await _add_entry(conn_or_pool, list_name, value, actor, note)


async def _add_entry(conn: Any, list_name: str, value: str, actor: str, note: str | None) -> bool:
    normalised = normalise_entry(await _list_kind(conn, list_name), value)
    if not await list_store.insert_entry(conn, list_name, normalised, actor, note):
        return False
    new = {"list": list_name, "value": normalised, "note": note}
    version = await store.bump_version(conn)
    await store.audit(
        conn, version, "list_entry", f"{list_name}:{normalised}", "add", actor, None, new
    )
    return True


async def remove_entry(pool: asyncpg.Pool, list_name: str, value: str, actor: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        normalised = normalise_entry(await _list_kind(conn, list_name), value)
        row = await list_store.delete_entry(conn, list_name, normalised)
        if row is None:
            raise NotFound(f"{normalised!r} is not on {list_name!r}")
        old = {"list": list_name, "value": normalised, "note": row["note"]}
        version = await store.bump_version(conn)
        key = f"{list_name}:{normalised}"
        await store.audit(conn, version, "list_entry", key, "remove", actor, old, None)


async def lists_overview(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    rows = await list_store.lists_with_counts(pool)
    return [dict(r) for r in rows]


async def list_entries(pool: asyncpg.Pool, list_name: str) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        await _list_kind(conn, list_name)
        rows = await list_store.entries(conn, list_name)
    return [{**dict(r), "added_at": r["added_at"].isoformat()} for r in rows]


# ------------------------------------------------------------------------------ bands
async def set_bands(
    pool: asyncpg.Pool, merchant_id: str, review_at: int, decline_at: int, actor: str
) -> dict[str, Any]:
    try:
        Bands(review_at, decline_at)
    except ValueError as exc:
        raise Invalid(str(exc), "review_at") from None
    async with pool.acquire() as conn, conn.transaction():
        old_row = await band_store.lock_bands(conn, merchant_id)
        await band_store.upsert_bands(conn, merchant_id, review_at, decline_at, actor)
        old = dict(old_row) if old_row else None
        new = {"review_at": review_at, "decline_at": decline_at}
        version = await store.bump_version(conn)
        await store.audit(conn, version, "bands", merchant_id, "set", actor, old, new)
        return {"merchant_id": merchant_id, **new}


async def get_bands(pool: asyncpg.Pool, merchant_id: str, default: Bands) -> dict[str, Any]:
    row = await band_store.bands(pool, merchant_id)
    bands = Bands(row["review_at"], row["decline_at"]) if row else default
    return {
        "merchant_id": merchant_id,
        "review_at": bands.review_at,
        "decline_at": bands.decline_at,
        "default": row is None,
    }
