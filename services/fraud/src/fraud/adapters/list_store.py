"""fraud_lists and fraud_list_entries tables: allow/block lists and what they hold."""

from __future__ import annotations

import asyncpg

from fraud.adapters.policy_store import Conn


async def list_names(conn: Conn) -> list[str]:
    return [r["name"] for r in await conn.fetch("SELECT name FROM fraud_lists")]


async def list_kind(conn: Conn, list_name: str) -> str | None:
    kind: str | None = await conn.fetchval(
        "SELECT kind FROM fraud_lists WHERE name = $1", list_name
    )
    return kind


async def insert_list(conn: Conn, name: str, kind: str) -> bool:
    """False when a list of that name exists."""
    created = await conn.fetchval(
        "INSERT INTO fraud_lists (name, kind) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1",
        name,
        kind,
    )
    return created is not None


async def insert_entry(
    conn: Conn, list_name: str, value: str, actor: str, note: str | None
) -> bool:
    """False when the value was already on the list (it keeps its first note)."""
    added = await conn.fetchval(
        "INSERT INTO fraud_list_entries (list_name, value, added_by, note) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT DO NOTHING RETURNING 1",
        list_name,
        value,
        actor,
        note,
    )
    return added is not None


async def delete_entry(conn: Conn, list_name: str, value: str) -> asyncpg.Record | None:
    """The removed entry (value, note, added_by); None when it was not on the list."""
    return await conn.fetchrow(
        "DELETE FROM fraud_list_entries WHERE list_name = $1 AND value = $2 "
        "RETURNING value, note, added_by",
        list_name,
        value,
    )


async def lists_with_counts(conn: Conn | asyncpg.Pool) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT l.name, l.kind, l.standard, count(e.value) AS entries FROM fraud_lists l "
        "LEFT JOIN fraud_list_entries e ON e.list_name = l.name GROUP BY l.name ORDER BY l.name"
    )


async def entries(conn: Conn, list_name: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT value, note, added_by, added_at FROM fraud_list_entries WHERE list_name = $1 "
        "ORDER BY added_at, value",
        list_name,
    )
