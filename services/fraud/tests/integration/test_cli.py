"""`sanalpos fraud …` against a private PostgreSQL schema: same validation and audit as the API."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from fraud.bootstrap import MIGRATIONS, SERVICE
from fraud.entrypoints.cli import main
from sanalpos_common.db import create_pool, migrate
from sanalpos_common.settings import local_database_url

BASE = os.environ.get("FRAUD_DATABASE_URL", local_database_url("fraud"))


async def _schema(schema: str, create: bool) -> None:
    admin = await asyncpg.connect(BASE)
    try:
        if not create:
            await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
            return
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        pool = await create_pool(f"{BASE}?search_path={schema}", max_size=1)
        try:
            await migrate(pool, SERVICE, MIGRATIONS)
        finally:
            await pool.close()
    finally:
        await admin.close()


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    schema = f"fraud_cli_test_{uuid.uuid4().hex[:10]}"
    asyncio.run(_schema(schema, create=True))
    monkeypatch.setenv("FRAUD_DATABASE_URL", f"{BASE}?search_path={schema}")
    try:
        yield schema
    finally:
        asyncio.run(_schema(schema, create=False))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code = main(["--actor", "carol", *argv])
    captured = capsys.readouterr()
    return code, json.loads(captured.out if code == 0 else captured.err)


def test_rules_lists_bands_and_refusals(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, rule = run(
        capsys, "rules", "create", "cli-rule", "--action", "block", "--expr", "amount > 5"
    )
    assert (code, rule["version"], rule["updated_by"]) == (0, 1, "carol")
    code, error = run(capsys, "rules", "create", "bad", "--action", "block", "--expr", "nope > 1")
    assert (code, error["field"]) == (1, "expression")
    assert "unknown attribute: nope" in error["error"]
    assert run(capsys, "rules", "disable", "cli-rule")[0] == 0
    _, history = run(capsys, "rules", "history", "cli-rule")
    assert [(h["change"], h["actor"]) for h in history] == [
        ("create", "carol"),
        ("disable", "carol"),
    ]

    assert run(capsys, "lists", "add", "block_emails", "Bad@Example.COM")[1] == {"added": True}
    assert run(capsys, "lists", "add", "block_emails", "bad@example.com")[1] == {"added": False}
    _, entries = run(capsys, "lists", "entries", "block_emails")
    assert [e["value"] for e in entries] == ["bad@example.com"]
    assert run(capsys, "lists", "add", "block_countries", "Turkey")[0] == 1

    assert run(capsys, "bands", "set", "m1", "--review-at", "60", "--decline-at", "40")[0] == 1
    assert run(capsys, "bands", "set", "m1", "--review-at", "40", "--decline-at", "60")[0] == 0
    _, bands = run(capsys, "bands", "show", "m1")
    assert (bands["review_at"], bands["decline_at"], bands["default"]) == (40, 60, False)

    assert run(capsys, "reviews", "resolve", str(uuid.uuid4()), "approve")[0] == 1
    assert main(["rules", "frobnicate"]) == 2
