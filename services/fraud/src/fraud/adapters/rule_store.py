"""fraud_rules table: the managed rules as the admin API and CLI change them."""

from __future__ import annotations

import asyncpg

from fraud.adapters.policy_store import Conn


async def insert_rule(
    conn: Conn, name: str, expression: str, action: str, description: str | None, actor: str
) -> asyncpg.Record | None:
    """The new row; None when a rule of that name exists (it is left as it was)."""
    return await conn.fetchrow(
        "INSERT INTO fraud_rules (name, expression, action, description, updated_by) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING RETURNING *",
        name,
        expression,
        action,
        description,
        actor,
    )


async def lock_rule(conn: Conn, name: str) -> asyncpg.Record | None:
    """The rule, row-locked until the transaction ends."""
    return await conn.fetchrow("SELECT * FROM fraud_rules WHERE name = $1 FOR UPDATE", name)


async def update_rule(
    conn: Conn,
    name: str,
    expression: str,
    action: str,
    description: str | None,
    enabled: bool | None,
    actor: str,
) -> asyncpg.Record | None:
    """New version of the rule; a None description or enabled keeps the current value."""
    return await conn.fetchrow(
        "UPDATE fraud_rules SET expression = $2, action = $3, "
        "description = COALESCE($4, description), enabled = COALESCE($5, enabled), "
        "version = version + 1, updated_by = $6, updated_at = now() WHERE name = $1 "
        "RETURNING *",
        name,
        expression,
        action,
        description,
        enabled,
        actor,
    )


async def rules(conn: Conn | asyncpg.Pool, include_disabled: bool) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM fraud_rules WHERE enabled OR $1 ORDER BY name", include_disabled
    )
