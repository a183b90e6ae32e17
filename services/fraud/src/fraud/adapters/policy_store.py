"""Postgres side of the managed policy: rules, lists, bands, audit, and the scorer's reads."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import asyncpg

from fraud.domain.expressions import InvalidExpression
from fraud.domain.policy import Bands, ListKind, Policy, Rule, RuleAction, compile_rule

log = logging.getLogger(__name__)
Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy


async def current_version(conn: Conn) -> int:
    return int(await conn.fetchval("SELECT version FROM fraud_policy_version WHERE id = 1"))


async def bump_version(conn: Conn) -> int:
    """Call in the transaction of every policy change; serialises concurrent changes."""
    return int(
        await conn.fetchval(
            "UPDATE fraud_policy_version SET version = version + 1 WHERE id = 1 RETURNING version"
        )
    )


async def load_policy(conn: Conn, default_bands: Bands) -> Policy:
    version = await current_version(conn)
    kinds = {
        r["name"]: ListKind(r["kind"])
        for r in await conn.fetch("SELECT name, kind FROM fraud_lists")
    }
    rules: list[Rule] = []
    for row in await conn.fetch(
        "SELECT name, expression, action, version FROM fraud_rules WHERE enabled ORDER BY name"
    ):
        try:
            rule = compile_rule(row["name"], row["expression"], row["action"], kinds.keys())
        except InvalidExpression as exc:  # validated when saved; a later code change broke it
            log.error("rule %s no longer compiles, skipped: %s", row["name"], exc)
            continue
        rules.append(Rule(rule.name, rule.expression, rule.action, row["version"]))
    bands = {
        r["merchant_id"]: Bands(r["review_at"], r["decline_at"])
        for r in await conn.fetch(
            "SELECT merchant_id, review_at, decline_at FROM fraud_merchant_bands"
        )
    }
    return Policy(version, tuple(rules), default_bands, bands, kinds)


async def memberships(conn: Conn, values: Iterable[str]) -> dict[str, set[str]]:
    """list name -> which of `values` it holds (one indexed query per batch)."""
    wanted = sorted(set(values))
    found: dict[str, set[str]] = defaultdict(set)
    if not wanted:
        return found
    for row in await conn.fetch(
        "SELECT list_name, value FROM fraud_list_entries WHERE value = ANY($1::text[])", wanted
    ):
        found[row["list_name"]].add(row["value"])
    return found


async def version_and_memberships(
    conn: Conn, values: Iterable[str]
) -> tuple[int, dict[str, set[str]]]:
    """The policy version and `memberships(values)` in one statement (the scorer's two reads
    per batch)."""
    found: dict[str, set[str]] = defaultdict(set)
    version = 0
    for row in await conn.fetch(
        "SELECT version, NULL::text AS list_name, NULL::text AS value "
        "FROM fraud_policy_version WHERE id = 1 "
        "UNION ALL SELECT NULL, list_name, value FROM fraud_list_entries "
        "WHERE value = ANY($1::text[])",
        sorted(set(values)),
    ):
        if row["version"] is not None:
            version = int(row["version"])
        else:
            found[row["list_name"]].add(row["value"])
    return version, found


async def audit(
    conn: Conn,
    version: int,
    entity: str,
    key: str,
    change: str,
    actor: str,
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
) -> None:
    await conn.execute(
        "INSERT INTO fraud_policy_audit (policy_version, entity, entity_key, change, actor, old, new)"
        " VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb)",
        version,
        entity,
        key,
        change,
        actor,
        _json(old),
        _json(new),
    )


def _json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, default=str, sort_keys=True)


def rule_dict(row: asyncpg.Record | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "name": row["name"],
        "expression": row["expression"],
        "action": RuleAction(row["action"]).value,
        "enabled": row["enabled"],
        "description": row["description"],
        "version": row["version"],
        "updated_by": row["updated_by"],
        "updated_at": row["updated_at"].isoformat(),
    }


def audit_dict(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "policy_version": row["policy_version"],
        "entity": row["entity"],
        "key": row["entity_key"],
        "change": row["change"],
        "actor": row["actor"],
        "at": row["at"].isoformat(),
        "old": json.loads(row["old"]) if row["old"] is not None else None,
        "new": json.loads(row["new"]) if row["new"] is not None else None,
    }


async def audit_rows(
    conn: Conn | asyncpg.Pool, entity: str, key: str | None
) -> list[asyncpg.Record]:
    """The audit trail of one kind of entity (of one of them when `key`), oldest first."""
    return await conn.fetch(
        "SELECT * FROM fraud_policy_audit WHERE entity = $1 AND ($2::text IS NULL OR entity_key = $2)"
        " ORDER BY id",
        entity,
        key,
    )
